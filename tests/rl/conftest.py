"""RL tests run their small tensors on one intra-op thread (the suite runs under
``pytest -n 2``)."""

import pytest
import torch

torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers xdist_group (the Ray tests' group) only when it is loaded: under
    # `pytest -p no:xdist` --strict-markers would refuse to collect test_rllib.py.
    config.addinivalue_line("markers", "xdist_group(name): tests xdist runs in one worker")

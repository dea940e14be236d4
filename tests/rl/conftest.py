"""RL tests run their small tensors on one intra-op thread (the suite runs under
``pytest -n 2``)."""

import torch

torch.set_num_threads(1)

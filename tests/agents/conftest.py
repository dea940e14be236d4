"""Agent tests run their small tensors on one intra-op thread: it is faster at these sizes, and
the suite runs under ``pytest -n 2``, where a second thread per worker only oversubscribes the
cores."""

import torch

torch.set_num_threads(1)

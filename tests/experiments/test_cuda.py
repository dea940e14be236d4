"""Criterion 9 of the experiments: a cell on CUDA gives the CPU's metrics within a stated
tolerance. It needs a CUDA GPU, so on machines without one it is reported as skipped, with the
reason; scripts/gpu_check.sh runs the same check (and throughput) on a GPU machine."""

import pytest
import torch

from driftrec.experiments.cell import run_cell
from driftrec.experiments.spec import load_spec
from driftrec.experiments.summary import build_tables

TOLERANCE = 0.02
"""float32 kernels differ between CPU and CUDA in their last bits; greedy slates then differ now
and then and trajectories drift apart slowly: metrics agree to about a hundredth."""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_a_cell_on_cuda_gives_the_cpu_metrics_within_tolerance(tiny):
    rows = []
    for gpus in (0, 1):
        spec = load_spec({**tiny, "seeds": [0], "resources": {"num_gpus": gpus}})
        cell = spec.cells()[0]
        rows.append(build_tables([run_cell(cell)], spec).cells.iloc[0])
    for metric in ("reward", "final_reward", "acc", "ndcg_at_k"):
        assert abs(rows[0][metric] - rows[1][metric]) <= TOLERANCE, metric

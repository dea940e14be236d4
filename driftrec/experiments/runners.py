"""Runners: the cells of a spec, in this process or on Ray (the one module that imports Ray).

Both runners run the same plain function, :func:`driftrec.experiments.cell.run_cell`, and write
each result the moment it arrives (atomically), so that an interrupted run loses nothing that
finished and a re-run skips it.

The Ray runner uses Ray tasks, one per cell, with ``max_retries`` (a cell whose worker process
dies is run again; a Python exception is a bug and stops the run). Ray Tune was measured as the
alternative (``benchmarks/ray_scaling.py``): its per-trial overhead (about a second on two CPUs)
and its own experiment directory buy nothing a grid of independent cells needs; resuming is done
here by skipping cells whose result file exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from driftrec.experiments.cell import CellResult, run_cell
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import Cell, ExperimentSpec, SpecError

__all__ = ["FAULT_ENV", "RUNNERS", "init_ray", "preflight", "run_cells"]

RUNNERS = ("local", "ray")

FAULT_ENV = "DRIFTREC_FAULT_KILL_ONCE"
"""Test hook, ``<spec name>@<directory>``: a Ray worker running a cell of that spec kills itself
(``os._exit``) the first time it meets the cell (a marker file per cell in the directory
records it), to test that dead workers' cells are retried."""


def preflight(spec: ExperimentSpec, runner: str, address: str | None = None) -> None:
    """Check, before anything is written, that ``runner`` can run ``spec``: a known runner,
    and the CPUs and GPUs each cell asks for (on Ray this starts or joins the cluster to ask
    it: a task asking for more than any node has would wait forever)."""
    if runner not in RUNNERS:
        raise SpecError(f"runner must be one of {list(RUNNERS)}, got {runner!r}")
    if runner == "local":
        _check_local_gpus(spec)
        return
    import ray

    init_ray(address)
    cpus = spec.resources.num_cpus
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    largest = max((resources.get("CPU", 0) for resources in nodes), default=0)
    if cpus > largest:
        raise SpecError(
            f"resources.num_cpus: each cell asks for {cpus:g} CPUs but the largest node of the "
            f"Ray cluster has {largest:g} (the cells would wait forever); lower it"
        )
    gpus = spec.resources.num_gpus
    have = ray.cluster_resources().get("GPU", 0)
    if gpus > 0 and have < gpus:
        raise SpecError(
            f"resources.num_gpus: each cell asks for {gpus} GPU but the Ray cluster has {have} "
            "(a task waiting for a GPU that does not exist would wait forever); set it to 0 "
            "or join a cluster with GPUs (--address)"
        )


def run_cells(
    spec: ExperimentSpec,
    out: ResultsDir,
    runner: str = "local",
    address: str | None = None,
    max_retries: int = 2,
    progress: bool = True,
) -> list[str]:
    """Run every cell of ``spec`` not yet in ``out``; return the ids run now.

    Args:
        spec: the experiment.
        out: where results go (already prepared for ``spec``).
        runner: ``"local"`` (this process, one cell after another) or ``"ray"``.
        address: the Ray cluster to join (``"127.0.0.1:6379"``); None starts Ray locally.
        max_retries: Ray retries of a cell whose worker died.
        progress: a progress bar on stderr.
    """
    preflight(spec, runner, address)
    done = out.finished()
    todo = [cell for cell in spec.cells() if cell.id not in done]
    if runner == "local":
        results: Iterable[tuple[Cell, CellResult]] = ((c, run_cell(c)) for c in todo)
    else:
        results = _ray_results(spec, todo, address, max_retries)
    bar = _progress(len(spec.cells()), len(done), progress)
    ran = []
    for cell, result in results:
        out.write_cell(cell.id, result)
        ran.append(cell.id)
        bar(cell.id)
    bar(None)
    return ran


def _progress(total: int, done: int, enabled: bool) -> Callable[[str | None], None]:
    if not enabled:
        return lambda _: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="cell", file=sys.stderr, dynamic_ncols=True)

    def update(cell_id: str | None) -> None:
        if cell_id is None:
            bar.close()
        else:
            bar.set_postfix_str(cell_id, refresh=False)
            bar.update(1)

    return update


def _check_local_gpus(spec: ExperimentSpec) -> None:
    if spec.resources.num_gpus > 0:
        import torch

        if not torch.cuda.is_available():
            raise SpecError(
                f"resources.num_gpus: {spec.resources.num_gpus} asked for, but this machine has "
                "no CUDA GPU; set it to 0 (the model then runs on the CPU)"
            )


# ---------------------------------------------------------------------- Ray


def _kill_once_for_test(cell: Cell) -> None:
    name, _, directory = os.environ.get(FAULT_ENV, "").partition("@")
    if not directory or name != cell.spec.name:
        return
    marker = Path(directory) / cell.id
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os._exit(1)


def _remote_cell(cell: Cell) -> CellResult:
    import ray

    _kill_once_for_test(cell)
    result = run_cell(cell)
    result.node = ray.get_runtime_context().get_node_id()
    return result


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start Ray on this machine (quietly, no dashboard);
    nothing if Ray is already initialised in this process."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, single-user cluster
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
    )


def _ray_results(
    spec: ExperimentSpec, todo: list[Cell], address: str | None, max_retries: int
) -> Iterable[tuple[Cell, CellResult]]:
    import ray

    task = ray.remote(_remote_cell).options(
        num_cpus=spec.resources.num_cpus, num_gpus=spec.resources.num_gpus, max_retries=max_retries
    )
    pending = {task.remote(cell): cell for cell in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        yield pending.pop(ready[0]), ray.get(ready[0])

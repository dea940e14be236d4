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

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Generator, Iterable
from pathlib import Path

from driftrec.experiments.cell import CellResult, run_cell
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import Cell, ExperimentSpec, SpecError
from driftrec.validation import one_line

__all__ = [
    "FAULT_ENV",
    "RUNNERS",
    "CellError",
    "RunnerError",
    "init_ray",
    "preflight",
    "ray_address",
    "run_cells",
]

RUNNERS = ("local", "ray")

FAULT_ENV = "DRIFTREC_FAULT_KILL_ONCE"
"""Test hook, ``<spec name>@<directory>``: a Ray worker running a cell of that spec kills itself
(``os._exit``) the first time it meets the cell (a marker file per cell in the directory
records it), to test that dead workers' cells are retried."""

CONNECT_TIMEOUT = 2.0
"""Seconds a Ray address has to accept a TCP connection before the run is refused (``ray.init``
itself retries for minutes)."""


class RunnerError(SpecError):
    """The runner cannot start: nothing answers at the Ray address, or joining the cluster
    failed. Raised before anything is written."""


class CellError(RuntimeError):
    """A cell failed: the message names it (scenario, agent, seed) and gives the original
    error's type and message (chained as ``__cause__``). Cells finished before it are kept."""

    def __init__(self, cell: Cell, error: BaseException | str) -> None:
        self.cell_id = cell.id
        what = one_line(error if isinstance(error, str) else f"{type(error).__name__}: {error}")
        super().__init__(
            f"cell {cell.id} (scenario {cell.scenario.key}, agent {cell.agent.key}, seed "
            f"{cell.seed}) failed: {what}"
        )


def preflight(spec: ExperimentSpec, runner: str, address: str | None = None) -> None:
    """Check, before anything is written, that ``runner`` can run ``spec``: a known runner,
    and the CPUs and GPUs each cell asks for (on Ray this starts or joins the cluster to ask
    it: a task asking for more than any one node has would wait forever)."""
    if runner not in RUNNERS:
        raise SpecError(f"runner must be one of {list(RUNNERS)}, got {runner!r}")
    if runner == "local":
        _check_local_gpus(spec)
        return
    import ray

    init_ray(address)
    cpus, gpus = spec.resources.num_cpus, spec.resources.num_gpus
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        return
    # A task's CPUs and GPUs must all be on one node: say what the largest node has.
    largest: dict[str, float] = max(
        nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={}
    )
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    total_gpus = sum(n.get("GPU", 0) for n in nodes)
    if gpus > 0 and total_gpus < gpus:
        raise SpecError(
            f"resources.num_gpus: each cell asks for {gpus:g} GPU but the Ray cluster has "
            f"{total_gpus:g} (a task waiting for a GPU that does not exist would wait forever); "
            "set it to 0 or join a cluster with GPUs (--address)"
        )
    if gpus > most_gpus:
        raise SpecError(
            f"resources.num_gpus: each cell asks for {gpus:g} GPUs on one node but the largest "
            f"node of the Ray cluster has {most_gpus:g} ({total_gpus:g} in all, over "
            f"{len(nodes)} nodes; a task's GPUs must all be on one node, so the cells would "
            f"wait forever); lower it to {most_gpus:g} or less"
        )
    if cpus > most_cpus:
        raise SpecError(
            f"resources.num_cpus: each cell asks for {cpus:g} CPUs but the largest node of the "
            f"Ray cluster has {most_cpus:g} (the cells would wait forever); lower it"
        )
    raise SpecError(
        f"resources: each cell asks for {cpus:g} CPUs and {gpus:g} GPUs on one node, but no node "
        f"of the Ray cluster has both (the largest has {largest.get('CPU', 0):g} CPUs and "
        f"{largest.get('GPU', 0):g} GPUs; the cells would wait forever); lower num_cpus or "
        "num_gpus"
    )


def run_cells(
    spec: ExperimentSpec,
    out: ResultsDir,
    runner: str = "local",
    address: str | None = None,
    max_retries: int = 2,
    progress: bool = True,
    checked: bool = False,
) -> list[str]:
    """Run every cell of ``spec`` not yet in ``out``; return the ids run now.

    Args:
        spec: the experiment.
        out: where results go (already prepared for ``spec``).
        runner: ``"local"`` (this process, one cell after another) or ``"ray"``.
        address: the Ray cluster to join (``"127.0.0.1:6379"``); None joins ``RAY_ADDRESS``
            if set, else starts Ray locally.
        max_retries: Ray retries of a cell whose worker died.
        progress: a progress bar on stderr.
        checked: :func:`preflight` has passed already (do not ask the runner again).

    Raises:
        CellError: a cell failed (naming it); the cells finished before it are written.
    """
    if not checked:
        preflight(spec, runner, address)
    done = out.finished()
    todo = [cell for cell in spec.cells() if cell.id not in done]
    if runner == "local":
        results: Generator[tuple[Cell, CellResult], None, None] = _local_results(todo)
    else:
        results = _ray_results(spec, todo, max_retries)
    bar = _progress(len(spec.cells()), len(done), progress)
    ran = []
    try:
        for cell, result in results:
            out.write_cell(cell.id, result)
            ran.append(cell.id)
            bar(cell.id)
    finally:
        bar(None)
        with contextlib.suppress(Exception):
            results.close()  # cancels the Ray tasks still pending
    return ran


def _local_results(todo: Iterable[Cell]) -> Generator[tuple[Cell, CellResult], None, None]:
    for cell in todo:
        try:
            result = run_cell(cell)
        except Exception as error:  # not KeyboardInterrupt
            raise CellError(cell, error) from error
        yield cell, result


def _progress(total: int, done: int, enabled: bool) -> Callable[[str | None], None]:
    if not enabled:
        return lambda _: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="cell", file=sys.stderr, dynamic_ncols=True)

    def update(cell_id: str | None) -> None:
        if cell_id is None:
            bar.close()
        else:
            bar.set_postfix_str(f"finished {cell_id}", refresh=False)  # not the running ones
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


def ray_address(address: str | None = None) -> tuple[str | None, str]:
    """The Ray cluster a run joins and where that came from: ``address`` (``"--address"``),
    else the ``RAY_ADDRESS`` environment variable (set by ``ray job submit``), else None (Ray
    starts on this machine)."""
    if address:
        return address, "--address"
    from_env = os.environ.get("RAY_ADDRESS", "").strip()
    return (from_env, "RAY_ADDRESS") if from_env else (None, "")


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`RunnerError` unless ``address`` (``HOST:PORT``, optionally ``ray://`` or
    ``http://``) accepts a TCP connection within ``timeout`` seconds (``auto`` and ``local``
    are left to Ray)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port_text = hostport.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RunnerError(
            f"Ray address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379, the port the "
            "cluster's head was started with: ray start --head --port=6379)"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout):
            pass
    except OSError:
        raise RunnerError(
            f"nothing answers at {hostport}: is the cluster's head running? (ray start --head "
            f"--port={port_text} on {host}, then give its address)"
        ) from None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (or at ``RAY_ADDRESS`` if set), or start Ray on this
    machine (quietly, no dashboard); nothing if Ray is already initialised in this process.

    Raises:
        RunnerError: nothing answers at the address within a couple of seconds, or joining
            the cluster failed (one line, with Ray's reason).
    """
    import ray

    if ray.is_initialized():
        return
    address, source = ray_address(address)
    if address:
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError...
            with contextlib.suppress(Exception):
                ray.shutdown()
            reason = one_line(error)
            raise RunnerError(
                f"cannot join the Ray cluster at {address} (from {source}): "
                f"{type(error).__name__}: {reason[:500]} (is it a Ray cluster of the same Ray "
                "version, and does this driver have its auth token? see docs/experiments.md, "
                "Runners)"
            ) from None
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
    spec: ExperimentSpec, todo: list[Cell], max_retries: int
) -> Generator[tuple[Cell, CellResult], None, None]:
    import ray
    from ray.exceptions import RayError, RayTaskError

    task = ray.remote(_remote_cell).options(
        num_cpus=spec.resources.num_cpus, num_gpus=spec.resources.num_gpus, max_retries=max_retries
    )
    pending = {task.remote(cell): cell for cell in todo}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayError as error:
                if isinstance(error, RayTaskError):  # the cell's own exception, in the worker
                    cause = error.cause if isinstance(error.cause, BaseException) else None
                    failure = CellError(cell, cause or _ray_error_text(error))
                else:  # its worker died max_retries + 1 times, or its node
                    failure = CellError(cell, _ray_error_text(error))
                # The cells that finished meanwhile are kept (written) before the error
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                for ref in done:
                    other = pending.pop(ref)
                    with contextlib.suppress(RayError):
                        yield other, ray.get(ref)
                raise failure from error
            yield cell, result
    finally:
        for ref in pending:  # a failed cell or an interrupt: the others stop too
            with contextlib.suppress(Exception):
                ray.cancel(ref)


def _ray_error_text(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"

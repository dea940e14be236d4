"""Run an experiment end to end: validate the spec, prepare its directory, run the cells that are
not finished (in this process or on Ray), and build the report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftrec.experiments.report import write_report
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.runners import preflight, run_cells
from driftrec.experiments.spec import ExperimentSpec, load_spec

__all__ = ["QUICKSTART", "check_experiment", "run_checked", "run_experiment"]

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
"""The shipped quickstart spec (the README's main job)."""


def check_experiment(
    spec: ExperimentSpec,
    out: str | Path | None = None,
    runner: str = "ray",
    address: str | None = None,
) -> ResultsDir:
    """Check, writing nothing, that ``spec`` (already checked against the registries) can run
    into ``out`` (default ``results/<name>``) on ``runner``: the directory holds no other
    spec's results, and the runner has what each cell asks for. Returns the directory."""
    directory = ResultsDir(Path("results") / spec.name if out is None else out)
    directory.check_compatible(spec)
    preflight(spec, runner, address)
    return directory


def run_checked(
    spec: ExperimentSpec,
    directory: ResultsDir,
    runner: str = "ray",
    address: str | None = None,
    progress: bool = True,
) -> Path:
    """Run the unfinished cells of ``spec`` (as :func:`check_experiment` passed it) into
    ``directory`` and build the report; return the report's path."""
    directory.prepare(spec)
    run_cells(spec, directory, runner=runner, address=address, progress=progress, checked=True)
    return write_report(directory.root)


def run_experiment(
    spec: ExperimentSpec | str | Path | Mapping[str, Any] = QUICKSTART,
    out: str | Path | None = None,
    runner: str = "ray",
    address: str | None = None,
    progress: bool = True,
) -> Path:
    """Run ``spec`` into ``out`` (default ``results/<name>``) and return the report's path.

    Everything that can be checked is checked before anything is written: the spec's fields
    and its scenario and agent names and parameters, the runner, and (for GPU cells) that the
    machine or cluster has GPUs. A directory that already holds this spec's results is
    resumed (finished cells are skipped); one that holds another spec's is refused.

    Raises:
        SpecError: the spec, the directory or the runner refused, before anything is written.
        CellError: a cell failed (the message names it; the cells finished before are kept).
    """
    if not isinstance(spec, ExperimentSpec):
        spec = load_spec(spec)
    else:
        spec.check_against_registries()
    directory = check_experiment(spec, out, runner, address)
    return run_checked(spec, directory, runner, address, progress)

"""Where an experiment's results live, and how they survive interruptions.

``results/<name>/`` holds the resolved spec (``spec.yaml``, with the spec's fingerprint), one file
per finished cell (``cells/<cell id>.pkl``, written atomically the moment the cell finishes), and
what the report builds from them: Parquet tables, PNG figures, ``report.html`` and
``summary.md``. Re-running the same spec into the same directory resumes: finished cells are
skipped. A different spec in an existing directory is refused, so results never mix.

Cell files carry the format of what a cell measures (``cells/FORMAT``, :data:`CELL_FORMAT`).
Cells written by an older driftrec (an older format: cells that measured less, or numbers the
world no longer produces) cannot be summarised with the rest: on resuming, they are moved
aside to ``cells.format-<n>/`` and run again.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

from driftrec.experiments.spec import ExperimentSpec, SpecError

__all__ = ["ResultsDir"]

SPEC_FILE = "spec.yaml"
CELLS = "cells"
FORMAT_FILE = "FORMAT"
CELL_FORMAT = 6
"""The format of cell files: 6 adds what the stream's optimiser steps wrote
(``optimiser_steps``, ``parameters_updated`` and ``parameters_updated_per_step``); 5 measures
drift from the clock requests first see it (``measured_events`` and ``regime_ends`` on the
batch grid; changes no request sees left out), evaluates at most once a batch, and reports the
stream's cost (the warm start apart as ``pretrain_*``, ``peak_stored_examples``, the cell's own
``peak_rss_mb``); 4 runs the RL agents
(SlateQ, top-k REINFORCE) on the no-drift twin under ``twin: auto`` as it runs the other
learners (format-3 cells of RL agents have no twin curves); 3 is the world of CHANGELOG's
issue-9 entry (another stream for batches of up to four requests, other last bits of every
reward), whose numbers a format-2 cell does not reproduce; 2 added session return and length
(``CellResult.sessions``); 1 (no ``FORMAT`` file) is everything before."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one,
    never a part (a temporary file in the same directory, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); results are shared as any file is (the umask)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class ResultsDir:
    """The directory of one experiment.

    Args:
        root: the directory (``results/<name>`` by default in the CLI).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def cells_dir(self) -> Path:
        return self.root / CELLS

    def cell_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.pkl"

    def check_compatible(self, spec: ExperimentSpec) -> str | None:
        """Raise :class:`SpecError` if the directory holds results of another spec (results of
        two specs never mix), or is a file; writes nothing. Returns the fingerprint found (None
        for a new directory)."""
        if self.root.exists() and not self.root.is_dir():
            raise SpecError(f"--out {self.root} exists and is not a directory")
        existing = self.read_spec_fingerprint()
        if existing is not None and existing != spec.fingerprint():
            raise SpecError(
                f"{self.root} holds results of a different spec (fingerprint {existing}, this "
                f"spec's is {spec.fingerprint()}): use another --out, or delete that directory "
                "to start over"
            )
        return existing

    def prepare(self, spec: ExperimentSpec) -> None:
        """Create the directory for ``spec``, or check that an existing one holds the same spec
        (raises :class:`SpecError` if not: results of two specs never mix)."""
        existing = self.check_compatible(spec)
        self._set_aside_old_cells()
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        (self.cells_dir / FORMAT_FILE).write_text(f"{CELL_FORMAT}\n")
        if existing is None:
            text = f"# fingerprint: {spec.fingerprint()}\n" + spec.to_yaml()
            atomic_write(self.root / SPEC_FILE, text.encode())

    def cell_format(self) -> int | None:
        """The format of the cell files here (None without cells; 1 for cells written before
        formats were recorded)."""
        if not self.cells_dir.is_dir():
            return None
        marker = self.cells_dir / FORMAT_FILE
        if marker.is_file():
            return int(marker.read_text().strip())
        return 1 if any(self.cells_dir.glob("*.pkl")) else None

    def _set_aside_old_cells(self) -> None:
        """Move cells of an older format to ``cells.format-<n>/`` (they will run again), with a
        warning that says so."""
        found = self.cell_format()
        if found is None or found == CELL_FORMAT:
            return
        aside = self.root / f"{CELLS}.format-{found}"
        if aside.exists():
            raise SpecError(
                f"{self.cells_dir} holds cells of an older driftrec (format {found}) and {aside} "
                "exists already: delete one of them to go on"
            )
        count = len(list(self.cells_dir.glob("*.pkl")))
        self.cells_dir.rename(aside)
        warnings.warn(
            f"{count} cell(s) in {self.root} were written by an older driftrec (cell format "
            f"{found}, now {CELL_FORMAT}: they measure less, or numbers this world no longer "
            f"produces): moved to {aside} and run again",
            UserWarning,
            stacklevel=3,
        )

    def read_spec_fingerprint(self) -> str | None:
        path = self.root / SPEC_FILE
        if not path.is_file():
            return None
        first = path.read_text().splitlines()[0]
        return first.split(":", 1)[1].strip() if first.startswith("# fingerprint:") else ""

    def read_spec(self) -> ExperimentSpec:
        """The spec the directory was made for."""
        path = self.root / SPEC_FILE
        if not path.is_file():
            raise SpecError(f"{self.root} has no {SPEC_FILE}: it is not an experiment directory")
        return ExperimentSpec.model_validate(yaml.safe_load(path.read_text()))

    def finished(self) -> set[str]:
        """Ids of the cells whose results are written."""
        if not self.cells_dir.is_dir():
            return set()
        return {p.stem for p in self.cells_dir.glob("*.pkl")}

    def write_cell(self, cell_id: str, result: Any) -> Path:
        path = self.cell_path(cell_id)
        atomic_write(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return path

    def read_cell(self, cell_id: str) -> Any:
        with self.cell_path(cell_id).open("rb") as f:
            return pickle.load(f)

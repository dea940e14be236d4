"""Where an experiment's results live, and how they survive interruptions.

``results/<name>/`` holds the resolved spec (``spec.yaml``, with the spec's fingerprint), one file
per finished cell (``cells/<cell id>.pkl``, written atomically the moment the cell finishes), and
what the report builds from them: Parquet tables, PNG figures, ``report.html`` and
``summary.md``. Re-running the same spec into the same directory resumes: finished cells are
skipped. A different spec in an existing directory is refused, naming the fields that differ, so
results never mix; ``resources`` may change (the numbers do not), but not from no GPU to some
or back. A directory whose
spec.yaml has no finished cell yet (a run that failed in its first cells) takes the new spec.
Cells without a spec.yaml are refused (whose they are is unknown).

Cell files carry the format of what a cell measures (``cells/FORMAT``, :data:`CELL_FORMAT`).
Cells written by an older driftrec (an older format: cells that measured less, or numbers the
world no longer produces) cannot be summarised with the rest: on resuming, they are moved
aside to ``cells.format-<n>/`` and run again. A cell file that cannot be read (empty or
truncated by a copy) is moved aside to ``cells.unreadable/`` and run again.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from driftrec.experiments.spec import ExperimentSpec, SpecError

__all__ = ["ResultsDir"]

SPEC_FILE = "spec.yaml"
CELLS = "cells"
FORMAT_FILE = "FORMAT"
UNREADABLE = "cells.unreadable"
IGNORED_FIELDS = ("resources.num_cpus", "resources.num_gpus")
"""Spec fields that do not change a cell's numbers: a directory may be resumed with them
changed (but for whether ``num_gpus`` is 0: a cell with a GPU puts its model on CUDA, whose
numbers differ from the CPU's in the last bits)."""
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
        two specs never mix; the message names the fields that differ), cells without a
        spec.yaml, or is a file; writes nothing. Returns the fingerprint found (None for a
        directory to (re)start: new, or a spec.yaml without any finished cell)."""
        if self.root.exists() and not self.root.is_dir():
            raise SpecError(f"--out {self.root} exists and is not a directory")
        existing = self.read_spec_fingerprint()
        cells = self.finished()
        if existing is None:
            if cells:
                raise SpecError(
                    f"{self.cells_dir} holds {len(cells)} cell file(s) but {self.root} has no "
                    f"{SPEC_FILE}: they may be another spec's results; use another --out, or "
                    f"delete {self.cells_dir} to start over"
                )
            return None
        if existing == spec.fingerprint() or not cells:
            return existing if cells else None
        differences = self._differences(spec)
        if differences:
            raise SpecError(
                f"{self.root} holds results of a different spec ({'; '.join(differences)}): "
                "use another --out, or delete that directory to start over"
            )
        return existing  # only resources differ: the numbers are the same

    def _differences(self, spec: ExperimentSpec) -> list[str]:
        """The fields in which ``spec`` differs from the stored one (:data:`IGNORED_FIELDS`
        apart), each as ``path: <there> there, <here> here``, down to the leaves (e.g.
        ``evaluation.window``, ``agents.1.params.lr``)."""
        stored, here = self.read_spec(), spec
        found = []
        if (stored.resources.num_gpus > 0) != (here.resources.num_gpus > 0):
            found.append(
                f"resources.num_gpus: {stored.resources.num_gpus} there, "
                f"{here.resources.num_gpus} here (a model on CUDA or on the CPU)"
            )
        there = _leaves(stored.model_dump(mode="json"))
        now = _leaves(here.model_dump(mode="json"))
        for key in [*now, *(key for key in there if key not in now)]:
            if key in IGNORED_FIELDS or there.get(key, _MISSING) == now.get(key, _MISSING):
                continue
            found.append(f"{key}: {_short(there.get(key))} there, {_short(now.get(key))} here")
        return found

    def prepare(self, spec: ExperimentSpec) -> None:
        """Create the directory for ``spec``, or check that an existing one holds the same spec
        (raises :class:`SpecError` if not: results of two specs never mix). A spec.yaml with
        no finished cell is replaced, with a warning; unreadable cell files are moved aside."""
        existing = self.check_compatible(spec)
        self._set_aside_old_cells()
        self._set_aside_unreadable_cells()
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        (self.cells_dir / FORMAT_FILE).write_text(f"{CELL_FORMAT}\n")
        if existing is None:
            path = self.root / SPEC_FILE
            if path.is_file() and self.read_spec_fingerprint() != spec.fingerprint():
                warnings.warn(
                    f"{path} was written by a run that finished no cell: replaced with this spec",
                    UserWarning,
                    stacklevel=3,
                )
            text = f"# fingerprint: {spec.fingerprint()}\n" + spec.to_yaml()
            atomic_write(path, text.encode())

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

    def _set_aside_unreadable_cells(self) -> None:
        """Move cell files that cannot be read (empty, truncated) to ``cells.unreadable/``
        (they will run again), with a warning naming each."""
        if not self.cells_dir.is_dir():
            return
        for path in sorted(self.cells_dir.glob("*.pkl")):
            try:
                self.read_cell(path.stem)
            except SpecError as error:
                aside = self.root / UNREADABLE
                aside.mkdir(exist_ok=True)
                target = aside / path.name
                n = 1
                while target.exists():
                    target, n = aside / f"{path.stem}.{n}.pkl", n + 1
                path.rename(target)
                warnings.warn(
                    f"{path} cannot be read ({error.__cause__ or error}): moved to {target} and "
                    "its cell runs again",
                    UserWarning,
                    stacklevel=3,
                )

    def read_spec_fingerprint(self) -> str | None:
        path = self.root / SPEC_FILE
        if not path.is_file():
            return None
        lines = path.read_text(errors="replace").splitlines()
        first = lines[0] if lines else ""
        return first.split(":", 1)[1].strip() if first.startswith("# fingerprint:") else ""

    def read_spec(self) -> ExperimentSpec:
        """The spec the directory was made for (a :class:`SpecError` naming the file if it is
        missing or damaged)."""
        path = self.root / SPEC_FILE
        if not path.is_file():
            raise SpecError(f"{self.root} has no {SPEC_FILE}: it is not an experiment directory")
        try:
            data = yaml.safe_load(path.read_text())
            return ExperimentSpec.model_validate(data)
        except (yaml.YAMLError, UnicodeDecodeError, ValidationError) as error:
            if isinstance(error, ValidationError):
                item = error.errors()[0]
                where = ".".join(str(part) for part in item["loc"]) or "(spec)"
                more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
                reason = f"{where}: {item['msg']}{more}"
            else:
                reason = " ".join(str(error).split())
            raise SpecError(
                f"{path} is damaged ({reason}): restore it (it must be the spec this directory's "
                "cells were run with), or run the spec again into a new --out"
            ) from error

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
        """The result of cell ``cell_id`` (a :class:`SpecError` naming the file if it cannot
        be read: ``driftrec run`` moves such a file aside and runs its cell again)."""
        path = self.cell_path(cell_id)
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except (EOFError, pickle.UnpicklingError) as error:  # empty or truncated
            raise SpecError(
                f"cell file {path} cannot be read ({type(error).__name__}: {error}; empty or "
                "truncated?): run the spec again with `driftrec run` into this directory, which "
                "moves it aside and runs that cell again"
            ) from error


_MISSING = object()


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of nested dicts and lists by dotted path (``agents.1.params.lr``)."""
    if isinstance(value, dict) and value:
        items: Any = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out |= _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    return out


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."

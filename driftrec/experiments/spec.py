"""Experiment specs: a YAML file becomes a validated grid of (scenario x agent x seed) cells.

Every field is checked before anything runs or is written: types and ranges by pydantic, and
scenario and agent names and parameters against the registries (a scenario is resolved against
the world settings; an agent is built once against the spec's spaces). An error names the field,
the bad value and what is allowed.

Example:
    >>> spec = ExperimentSpec.model_validate({
    ...     "name": "tiny", "horizon": 4_000, "num_envs": 100, "seeds": [0],
    ...     "world": {"num_users": 300, "num_items": 300, "num_candidates": 20,
    ...               "slate_size": 4},
    ...     "scenarios": [{"name": "sudden", "params": {"at": 2_000}}],
    ...     "agents": [{"name": "online"}, {"name": "random"}],
    ...     "evaluation": {"window": 1_000, "every": 1_000, "probe_size": 50}})
    >>> [cell.id for cell in spec.cells()]
    ['sudden__online__s0', 'sudden__random__s0']
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftrec.validation import MAX_SIZE, MAX_TIME, build_failure

__all__ = [
    "AgentSpec",
    "Cell",
    "EvaluationSpec",
    "ExperimentSpec",
    "ResourcesSpec",
    "ScenarioSpec",
    "SpecError",
    "WarmStartSpec",
    "import_modules",
    "load_spec",
]

_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

MAX_SEED = 2**63 - 1
"""Seeds are stored as int64 (in the cell files and the report's tables)."""


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays (from a parameter grid built in Python) turned
    into Python values, recursively, so that the spec serialises (its fingerprint, spec.yaml)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


class _FreeForm:
    """Free-form fields (world settings, parameters, model and exploration specs) accept NumPy
    values, stored as plain Python values."""

    @field_validator("params", "world", "model", "exploration", mode="before", check_fields=False)
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        return _plain(value)


class SpecError(ValueError):
    """A bad experiment spec: the message names each bad field, its value and what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ScenarioSpec(_FreeForm, _Model):
    """One scenario of the grid."""

    name: str
    """A scenario preset (``driftrec list``)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The preset's parameters (times in requests)."""
    label: str | None = None
    """Name in tables and figures (default: ``name``); unique within the spec."""

    @property
    def key(self) -> str:
        return self.label or self.name


class AgentSpec(_FreeForm, _Model):
    """One agent of the grid."""

    name: str
    """A baseline or strategy preset (``driftrec list``)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The preset's and the learner's parameters."""
    model: str | dict[str, Any] = "mf"
    """Model name, or ``{name: ..., **params}``."""
    exploration: str | dict[str, Any] = "greedy"
    """Exploration name, or ``{name: ..., **params}``."""
    label: str | None = None
    """Name in tables and figures (default: ``name``); unique within the spec."""

    @property
    def key(self) -> str:
        return self.label or self.name


class WarmStartSpec(_Model):
    """The starting point every agent of a cell shares: pretraining on logged requests drawn
    from the first regime, before the stream (strategies then differ only in how they update)."""

    requests: int = Field(ge=1, le=MAX_SIZE)
    """Logged requests to pretrain on."""
    policy: Literal["uniform", "softmax"] = "uniform"
    """Logging policy: uniformly random slates, or Plackett-Luce over the true utilities."""


class EvaluationSpec(_Model):
    """How cells are measured (docs/metrics.md)."""

    window: int = Field(5_000, ge=1, le=MAX_TIME)
    """W: the window of recovery time and dip, in requests (a multiple of ``num_envs`` is
    best: the clock's resolution is one batch)."""
    eps: float = Field(0.05, ge=0.0, lt=1.0, allow_inf_nan=False)
    """Recovery tolerance: back to (1 - eps) of the pre-shift (or twin) level."""
    every: int = Field(10_000, ge=1, le=MAX_TIME)
    """Probe cadence: greedy slates are scored on every regime's probe set this often (and at
    the end of every regime), between batches: each multiple of ``every`` is rounded up to the
    batch grid, so it must be at least ``num_envs`` (at most one evaluation per batch)."""
    probe_size: int = Field(500, ge=10, le=MAX_SIZE)
    """Requests per probe set."""
    regret_horizon: int | None = Field(None, ge=1, le=MAX_TIME)
    """H of adaptation regret (default: up to the next event or the horizon)."""
    twin: bool | Literal["auto"] = "auto"
    """Also run each learning agent on the no-drift twin world (``auto``: when the scenario
    schedules a change within the horizon)."""
    resolution: int | None = Field(None, ge=1, le=MAX_TIME)
    """Bin width of the recorded curves in requests (default: ``num_envs``)."""


class ResourcesSpec(_Model):
    """What each cell asks of a Ray cluster."""

    num_cpus: float = Field(1.0, gt=0, allow_inf_nan=False)
    num_gpus: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Fractions share a GPU; a cell with a GPU puts its model on CUDA (the world stays NumPy)."""


class ExperimentSpec(_FreeForm, _Model):
    """A grid of (scenario x agent x seed) cells and how to run and measure them."""

    name: str
    """Results go to ``results/<name>/``."""
    imports: list[str] = Field(default_factory=list)
    """Python modules to import before the spec is checked and in every process that runs a
    cell (Ray workers too): where your own scenarios, agents, strategies or models are
    registered. Each must be importable where cells run: from the working directory or
    ``PYTHONPATH`` (a local Ray cluster's workers share both); on a remote cluster, installed
    on its nodes."""
    horizon: int = Field(ge=1, le=MAX_TIME)
    """Requests served per cell."""
    num_envs: int = Field(256, ge=1, le=MAX_SIZE)
    """Concurrent sessions per cell (the batch size of the environment)."""
    seeds: list[int] = Field(min_length=1)
    world: dict[str, Any] = Field(default_factory=dict)
    """World settings shared by every cell (``WorldConfig`` fields)."""
    scenarios: list[ScenarioSpec] = Field(min_length=1)
    agents: list[AgentSpec] = Field(min_length=1)
    warm_start: WarmStartSpec | None = None
    evaluation: EvaluationSpec = EvaluationSpec()
    resources: ResourcesSpec = ResourcesSpec()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError("must be letters, digits, '_', '.' or '-' (it names a directory)")
        return value

    @field_validator("imports")
    @classmethod
    def _imports(cls, value: list[str]) -> list[str]:
        problem = module_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def import_modules(self) -> None:
        """Import the spec's ``imports`` (their registrations run); a :class:`SpecError` names
        one that cannot be imported (:func:`import_modules`)."""
        import_modules(self.imports)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if any(not 0 <= s <= MAX_SEED for s in value) or len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct integers in [0, 2**63 - 1], got {value}")
        return value

    @model_validator(mode="after")
    def _labels(self) -> ExperimentSpec:
        for what, entries in (("scenarios", self.scenarios), ("agents", self.agents)):
            keys = [e.key for e in entries]
            bad = [k for k in keys if not _LABEL.match(k)]
            if bad:
                raise ValueError(f"{what}: labels must be letters, digits, '_', '.' or '-': {bad}")
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                raise ValueError(f"{what}: {repeated} appear twice; give them distinct labels")
        # A cell's id names its result file: labels with '__' in them could make two cells
        # share one ('s' with 'a__b' and 's__a' with 'b').
        seed = self.seeds[0]
        ids: dict[str, Cell] = {}
        for cell in (Cell(self, s, a, seed) for s in self.scenarios for a in self.agents):
            other = ids.setdefault(cell.id, cell)
            if other is not cell:
                raise ValueError(
                    f"scenario {other.scenario.key!r} with agent {other.agent.key!r} and scenario "
                    f"{cell.scenario.key!r} with agent {cell.agent.key!r} would share one result "
                    f"file ({cell.id.removesuffix(f'__s{seed}')}__s<seed>.pkl); use labels "
                    "without '__'"
                )
        if self.horizon < self.num_envs:
            raise ValueError(
                f"horizon ({self.horizon}) must be at least num_envs ({self.num_envs}): a cell "
                "serves whole batches of num_envs requests"
            )
        every = self.evaluation.every
        if every < self.num_envs:
            raise ValueError(
                f"evaluation.every ({every}) must be at least num_envs ({self.num_envs}): the "
                "agent is scored on the probes between batches of num_envs requests, at most "
                f"once a batch; set evaluation.every to {self.num_envs} (every batch) or more, "
                "or lower num_envs"
            )
        return self

    # ------------------------------------------------------------------ grid

    def cells(self) -> list[Cell]:
        """The grid, scenario-major: every (scenario, agent, seed)."""
        return [
            Cell(self, scenario, agent, seed)
            for scenario in self.scenarios
            for agent in self.agents
            for seed in self.seeds
        ]

    @property
    def resolution(self) -> int:
        return self.evaluation.resolution or self.num_envs

    def fingerprint(self) -> str:
        """A hash of everything that determines the results (the spec, canonical JSON; no
        ``imports`` is left out, so specs written before the field keep their fingerprint)."""
        data = self.model_dump(mode="json")
        if not data["imports"]:
            del data["imports"]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    # ------------------------------------------------------------------ deep checks

    def check_against_registries(self) -> None:
        """Resolve every scenario against the world settings and build every agent once, so
        that a bad name or parameter fails now, naming it (raises :class:`SpecError`); refuse
        arrays a cell could not allocate, and warn about evaluation settings that would measure
        nothing or nonsense (``driftrec.experiments.spec_checks``)."""
        from driftrec.envs import RecDriftVectorEnv
        from driftrec.experiments import spec_checks as checks
        from driftrec.simulators.scenarios import resolve_world

        self.import_modules()
        problems = checks.world_key_problems(self)  # once, not once per scenario
        if problems:
            raise SpecError("bad experiment spec:\n  " + "\n  ".join(problems))
        built: list[int] = []  # scenarios whose environment builds (checked, not drawn)
        too_big: dict[str, str] = {}
        measured = False  # some scenario has a change to measure
        for i, scenario in enumerate(self.scenarios):
            where = f"scenarios.{i} ({scenario.key})"
            try:  # nothing is drawn or allocated before the sizes are known to fit
                world_spec = resolve_world(scenario.name, **self.world, **scenario.params)
                bounds = world_spec.regime_boundaries(self.horizon)
                regimes = 1 + sum(0 < b < self.horizon for b in bounds)  # probe sets
                found = checks.memory_problems(self, where, world_spec.config, regimes)
                too_big = {**found, **too_big}  # one line a field
                if not found:
                    RecDriftVectorEnv(self.num_envs, scenario.name, **self.world, **scenario.params)
                    built.append(i)
            except Exception as error:  # a user's scenario or process failing its own way too
                problems.append(build_failure(where, error, "lower num_envs or the world's sizes"))
                continue
            measured |= checks.scenario_warnings(self, i, world_spec, regimes)
        problems += too_big.values()
        problems += checks.agent_setting_problems(self)
        checks.evaluation_warnings(self, measured)
        if built:
            problems += checks.agent_problems(self, self.scenarios[built[0]])
        if problems:
            raise SpecError("bad experiment spec:\n  " + "\n  ".join(problems))


def module_name_problem(names: list[str]) -> str | None:
    """Why ``names`` are not all dotted Python module names, or None."""
    bad = [name for name in names if not _MODULE.match(name)]
    return f"imports must be dotted Python module names, got {bad}" if bad else None


def import_modules(names: list[str], where: str = "bad experiment spec:\n  imports.{i}") -> None:
    """Import the modules ``names`` (a spec's ``imports``, or ``driftrec list --imports``):
    their registrations run. The working directory is searched first, as ``python -m`` and a
    local Ray cluster's workers do (the ``driftrec`` command's own path lacks it).

    Raises:
        SpecError: ``"<where>: cannot import ..."`` for the first that cannot be imported
            (``where`` formatted with its index ``i``).
    """
    if names and not {"", os.getcwd()} & set(sys.path):
        sys.path.insert(0, os.getcwd())
    for i, name in enumerate(names):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise SpecError(
                f"{where.format(i=i)}: cannot import {name!r}: {error} (it must be importable "
                "from the working directory or PYTHONPATH)"
            ) from None
        except Exception as error:  # the module itself fails (a syntax error, a bad register)
            raise SpecError(
                f"{where.format(i=i)}: importing {name!r} raised {type(error).__name__}: {error}"
            ) from error


@dataclass(frozen=True)
class Cell:
    """One (scenario, agent, seed) rollout of an experiment."""

    spec: ExperimentSpec
    scenario: ScenarioSpec
    agent: AgentSpec
    seed: int

    @property
    def id(self) -> str:
        return f"{self.scenario.key}__{self.agent.key}__s{self.seed}"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(spec)"
        value = item.get("input")
        shown = "" if isinstance(value, Mapping) else f" (got {value!r})"
        lines.append(f"{where}: {item['msg']}{shown}")
    return "bad experiment spec:\n  " + "\n  ".join(lines)


def load_spec(source: str | Path | Mapping[str, Any], *, deep: bool = True) -> ExperimentSpec:
    """Read and validate a spec from a YAML file, a YAML string or a mapping.

    Args:
        source: a path to a YAML file (any existing file; a missing one is an error if its
            name ends in ``.yaml`` / ``.yml``), YAML text, or an already parsed mapping.
        deep: also check scenario and agent names and parameters against the registries.

    Raises:
        SpecError: naming every bad field, its value and what is allowed.
    """
    where = "the spec"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        text = str(source)
        path = Path(text)
        one_line = "\n" not in text
        if one_line and (path.is_file() or path.suffix.lower() in (".yaml", ".yml")):
            if not path.is_file():
                raise SpecError(f"spec file {text!r} does not exist")
            where = f"spec file {text!r}"
        try:
            if where == "the spec":
                data = yaml.safe_load(text)
            else:
                with path.open() as stream:  # a syntax error names the file, not "<string>"
                    data = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise SpecError(f"{where} is not valid YAML: {error}") from error
        if one_line and where == "the spec" and isinstance(data, str):  # a path to nothing
            raise SpecError(f"spec file {text!r} does not exist (nor is it a YAML mapping)")
    if data is None:
        raise SpecError(f"{where} is empty: a spec is a YAML mapping of fields")
    if not isinstance(data, Mapping):
        raise SpecError(f"a spec is a YAML mapping of fields, got {type(data).__name__}")
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_describe(error)) from None
    if deep:
        spec.check_against_registries()
    return spec

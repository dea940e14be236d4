"""The checks of an experiment spec that need the registries or the resolved world
(``ExperimentSpec.check_against_registries``): the ``world`` mapping's keys, whether the
arrays a cell allocates (a batch of observations, the probe sets, the warm start's logged
requests) fit in this machine's memory, settings an agent does not take, and the evaluation
settings that would measure nothing or nonsense (warnings, docs/metrics.md).

Each function returns problems as ``"field.path: what is wrong and what to do"`` lines, or
warns (a :class:`UserWarning` per problem, naming the field).
"""

from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from driftrec.validation import build_failure, did_you_mean, machine_memory

if TYPE_CHECKING:
    from driftrec.experiments.spec import ExperimentSpec, ScenarioSpec
    from driftrec.simulators import WorldConfig
    from driftrec.simulators.scenarios import WorldSpec

__all__ = [
    "ENV_OPTIONS",
    "MANY_REGIMES",
    "agent_call_problem",
    "agent_problems",
    "agent_setting_problems",
    "evaluation_warnings",
    "first_update",
    "memory_problems",
    "request_bytes",
    "scenario_warnings",
    "unread_setting_problems",
    "world_key_problems",
]

PROTOCOL = "driftrec.agents.protocol.Agent"
"""Where the methods an agent needs are documented, for the messages."""

DRY_BATCH = 8
"""Requests in the observation batch an agent answers once when the spec is checked."""

ENV_OPTIONS = ("twin", "autoreset_mode", "preset", "render_mode")
"""Environment options a cell sets itself: not world settings (one in ``world`` would clash)."""

MANY_REGIMES = 200
"""More regimes than this within a cell's horizon draws a warning when the spec is checked."""

BATCH_COPIES = 4
"""A batch of observations is held about this many times over while a cell builds and steps its
environment (the batched space's lower and upper bounds, the observation, the agent's copy)."""


def request_bytes(config: WorldConfig) -> int:
    """Bytes one request takes in a batch, a probe set or logged data, roughly: its observation
    (candidate ids, features and topics, user id and features, history) plus its candidates'
    utilities and values (float64) and a slate's positions, clicks and propensities."""
    from driftrec.envs.spaces import observation_space

    space = observation_space(config)
    observation = 0
    for box in space.spaces.values():
        observation += int(np.prod(box.shape or ())) * np.dtype(box.dtype).itemsize
    return observation + 16 * config.num_candidates + 24 * config.slate_size


def world_key_problems(spec: ExperimentSpec) -> list[str]:
    """``world`` keys that are neither world settings nor a parameter of one of the spec's
    scenarios (which ``world`` may also set), each with the closest world setting."""
    from driftrec.simulators import WorldConfig
    from driftrec.simulators.scenarios import scenario_parameters

    settings = WorldConfig.field_names()
    scenario_keys: set[str] = set()
    for scenario in spec.scenarios:
        try:
            scenario_keys |= set(scenario_parameters(scenario.name))
        except (KeyError, TypeError, ValueError):  # an unknown scenario: reported on its own
            pass
    problems = []
    for key in spec.world:
        if key in ENV_OPTIONS:
            problems.append(
                f"world.{key}: not a world setting but an environment option, which every cell "
                "sets itself; remove it (evaluation.twin says whether the no-drift twin runs)"
            )
        elif key not in settings and key not in scenario_keys:
            guess = did_you_mean(str(key), settings)
            hint = guess or f"; world settings are {sorted(settings)}"
            problems.append(f"world.{key}: unknown world setting{hint}")
    return problems


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def memory_problems(spec: ExperimentSpec, where: str, config: WorldConfig, regimes: int) -> dict:
    """The arrays of a cell of scenario ``where`` (its world ``config``, ``regimes`` regimes
    within the horizon) that exceed this machine's memory, by field: a batch of ``num_envs``
    observations, the probe sets (one of ``probe_size`` requests per regime), the warm start's
    logged requests. Empty where the machine's memory is unknown."""
    total = machine_memory()
    if total is None:
        return {}
    per = request_bytes(config)
    asks = {  # field: (bytes per unit, units, what they are)
        "num_envs": (BATCH_COPIES * per, spec.num_envs, "concurrent sessions (one batch)"),
        "evaluation.probe_size": (
            regimes * per,
            spec.evaluation.probe_size,
            f"requests per probe set ({regimes:,} regime(s), a probe set each)",
        ),
    }
    if spec.warm_start is not None:
        asks["warm_start.requests"] = (per, spec.warm_start.requests, "logged requests")
    problems = {}
    for field, (unit, count, what) in asks.items():
        if unit * count > total:
            problems[field] = (
                f"{field}: {count:,} {what} on {where}'s world ({per:,} bytes a request) need "
                f"about {_gib(unit * count)}, more than this machine's {_gib(total)}: at most "
                f"{total // unit:,} fit; lower {field} (or shrink the world: num_candidates, "
                "item_feature_dim, history_length)"
            )
    return problems


FOR_LEARNERS = ("exploration", "model")
"""Agent fields that only learning agents take (the baselines have no model and do not explore)."""


def agent_setting_problems(spec: ExperimentSpec) -> list[str]:
    """An explicit ``model`` or ``exploration`` given to a built-in baseline, which has neither
    (it would be ignored, and spec.yaml would record it)."""
    from driftrec.agents import BASELINES

    problems = []
    defaults = {field: type(spec.agents[0]).model_fields[field].default for field in FOR_LEARNERS}
    for i, agent in enumerate(spec.agents):
        # other than the default, not merely written (a results directory's spec.yaml has both)
        given = [field for field in FOR_LEARNERS if getattr(agent, field) != defaults[field]]
        if agent.name in BASELINES and given:
            problems.append(
                f"agents.{i} ({agent.key}): {' and '.join(given)} given, but {agent.name!r} "
                f"has no model and does not explore; remove {' and '.join(given)} (learning "
                "agents take them)"
            )
    return problems


def agent_problems(spec: ExperimentSpec, scenario: ScenarioSpec) -> list[str]:
    """Build every agent once on a small environment of ``scenario`` (a batch of
    ``DRY_BATCH`` requests, reset), check that it has ``act`` and ``observe``, and call its
    ``act`` (and ``greedy`` and ``scores`` if it has them) once on the reset observation
    batch; warn about an agent that would never update within the horizon. The
    environment and the agents are thrown away, and every global random stream (Python's,
    NumPy's, torch's) is restored after, so that the cells draw what they would without the
    check."""
    import random

    import torch

    from driftrec.agents import BASELINES
    from driftrec.agents.registry import make_agent_recording
    from driftrec.envs import RecDriftVectorEnv

    # a user's agent may draw from the legacy global streams: they are put back after
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=[]):
            env = RecDriftVectorEnv(
                min(spec.num_envs, DRY_BATCH),
                scenario.name,
                **spec.world,
                **scenario.params,
            )
            try:  # a user's retriever's first batch is checked here, a user's own bug too
                obs, _ = env.reset(seed=0)  # agents such as the frozen oracle read the world
            except Exception as error:
                where = f"scenarios.{spec.scenarios.index(scenario)} ({scenario.key})"
                return [build_failure(where, error, "lower the world's sizes")]
            slate_size = env.config.slate_size
            problems = []
            for i, agent in enumerate(spec.agents):
                where = f"agents.{i} ({agent.key})"
                try:
                    built, settings = make_agent_recording(
                        agent.name,
                        env,
                        model=agent.model,
                        exploration=agent.exploration,
                        seed=0,
                        **agent.params,
                    )
                except Exception as error:  # a user's builder's own bug too, in one line
                    problems.append(build_failure(where, error, "lower its sizes (model, buffers)"))
                    continue
                problem = agent_call_problem(built, obs, slate_size)
                if problem is not None:
                    problems.append(f"{where}: {problem}")
                    continue
                if agent.name not in BASELINES:  # those are refused with their own line
                    problems += unread_setting_problems(spec, i, built, settings)
                _warn_first_update(spec, i, built)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
    return problems


def _warn_first_update(spec: ExperimentSpec, i: int, built: Any) -> None:
    first = first_update(built)
    if first is not None and first >= spec.horizon:
        warnings.warn(
            f"agents.{i} ({spec.agents[i].key}): its first update comes after {first:,} "
            f"requests, not within the horizon of {spec.horizon:,}: it never updates "
            "in a cell (lower its every / train_on / warmup / micro_batch, or use "
            "train_on: 0 for a model that is never updated on purpose)",
            UserWarning,
            stacklevel=4,
        )


def agent_call_problem(agent: Any, obs: Any, slate_size: int) -> str | None:
    """What is wrong with ``agent`` (just built, thrown away after) as a cell would call it:
    ``act`` or ``observe`` missing, or ``act`` (and ``greedy`` and ``scores`` where it has
    them) called once on the observation batch ``obs`` (of a reset environment) raising or
    answering other than the protocol says: (B, k) integer positions into the B rows of
    ``candidate_ids`` for ``act`` and ``greedy``, (B, C) finite real scores for ``scores``.
    The calls may change the agent (an exploration draws), so it must not be used again."""
    missing = [m for m in ("act", "observe") if not callable(getattr(agent, m, None))]
    if missing:
        return (
            f"a {type(agent).__name__} has no callable {' or '.join(missing)}: every agent "
            f"needs act(obs) and observe(transition) ({PROTOCOL})"
        )
    batch, candidates = np.shape(obs["candidate_ids"])
    methods = ["act"] + [m for m in ("greedy", "scores") if getattr(agent, m, None) is not None]
    for method in methods:
        call = getattr(agent, method)
        if not callable(call):
            return f"its {method} is a {type(call).__name__}, not a method ({PROTOCOL})"
        try:
            answer = np.asarray(call(obs))
        except Exception as error:  # a user's agent: its bug, named, not a traceback
            return (
                f"{method}(obs) raised {type(error).__name__}: {error} (called once on a reset "
                f"observation batch of {batch} requests)"
            )
        if method == "scores":
            problem = _scores_problem(answer, batch, candidates)
        else:
            problem = _slates_problem(answer, batch, slate_size, candidates)
        if problem is not None:
            return f"{method}(obs) on a reset observation batch {problem} ({PROTOCOL})"
    return None


def _slates_problem(answer: np.ndarray, batch: int, k: int, candidates: int) -> str | None:
    expected = f"(B, k) = ({batch}, {k}) integer positions into candidate_ids"
    if answer.shape != (batch, k):
        return f"returned shape {answer.shape}, expected {expected}"
    if answer.dtype.kind not in "iu":
        return f"returned {answer.dtype} values, expected {expected}"
    low, high = int(answer.min()), int(answer.max())
    if low < 0 or high >= candidates:
        return (
            f"returned positions from {low} to {high}, expected positions in [0, "
            f"{candidates}) (C = {candidates} candidates a request)"
        )
    return None


def _scores_problem(answer: np.ndarray, batch: int, candidates: int) -> str | None:
    expected = f"(B, C) = ({batch}, {candidates}) finite real scores, one per candidate"
    if answer.shape != (batch, candidates):
        return f"returned shape {answer.shape}, expected {expected}"
    if answer.dtype.kind not in "fiu":
        return f"returned {answer.dtype} values, expected {expected}"
    if not np.isfinite(answer).all():
        return (
            f"returned {int((~np.isfinite(answer)).sum())} non-finite values (NaN or inf) of "
            f"{answer.size}, before the agent learned anything; expected {expected}: check its "
            "model's initial parameters and its scores method"
        )
    return None


def unread_setting_problems(spec: ExperimentSpec, i: int, agent: Any, settings: Any) -> list[str]:
    """An explicit ``model`` or ``exploration`` given to agent ``i`` of the spec (not a
    baseline, built as ``agent`` from ``settings``, which record what was read) that its
    builder never read, during the build or the calls of the check: the agent ignores it.
    Refused, or warned about where the agent kept the settings (it may read them later)."""
    entry = spec.agents[i]
    defaults = {field: type(entry).model_fields[field].default for field in FOR_LEARNERS}
    unread = [
        field
        for field in FOR_LEARNERS
        if getattr(entry, field) != defaults[field] and field not in settings.read
    ]
    if not unread:
        return []
    given = " and ".join(unread)
    reads = " and ".join(f"settings.{field}" for field in unread)
    where = f"agents.{i} ({entry.key})"
    kept = any(value is settings for value in getattr(agent, "__dict__", {}).values())
    if kept:  # it may read them when it acts or learns: it cannot be told now
        warnings.warn(
            f"{where}: {given} given, but agent {entry.name!r} did not read {reads} when it "
            "was built (it keeps the settings, so it may read them later); check that it uses "
            f"{given}",
            UserWarning,
            stacklevel=4,
        )
        return []
    return [
        f"{where}: {given} given, but agent {entry.name!r}'s builder never reads {reads} "
        f"(the AgentSettings it is passed), so it would ignore {given}; remove {given}, or "
        f"have the builder use {reads}"
    ]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def evaluation_warnings(spec: ExperimentSpec, measured: bool) -> None:
    """Warn about a horizon off the batch grid, and evaluation settings that contradict the
    horizon or the batch grid (those of the recovery window only where some scenario has a
    change to measure: ``measured``)."""
    ev, horizon, batch, resolution = spec.evaluation, spec.horizon, spec.num_envs, spec.resolution
    if horizon % batch:
        low = horizon - horizon % batch
        _warn(
            f"horizon ({horizon:,}) is not a multiple of num_envs ({batch:,}): a cell serves "
            f"whole batches, {low:,} requests; set horizon to {low} or {low + batch} to say so"
        )
    if measured and ev.window >= horizon:
        _warn(
            f"evaluation.window ({ev.window:,}) is not shorter than the horizon ({horizon:,}): "
            "no event can have both a pre-event window [t - W, t) and a window after it, so no "
            "recovery time or dip can be measured; lower evaluation.window (docs/metrics.md)"
        )
    if measured and ev.window < resolution:
        _warn(
            f"evaluation.window ({ev.window:,}) is shorter than the curves' bin width "
            f"(evaluation.resolution, {resolution:,}): each window mean reads part of one bin, "
            "so recovery is measured at the bin width, not W; raise evaluation.window to a "
            "multiple of the resolution or lower evaluation.resolution"
        )
    if ev.resolution is not None and ev.resolution % batch:
        _warn(
            f"evaluation.resolution ({ev.resolution:,}) is not a multiple of num_envs "
            f"({batch:,}): a batch's requests share one clock for the world's state, so bins "
            "inside a batch only split it; use a multiple of num_envs"
        )
    if measured and ev.resolution is not None and ev.resolution > ev.window:
        _warn(
            f"evaluation.resolution ({ev.resolution:,}) is larger than evaluation.window "
            f"({ev.window:,}): recovery time and dip are measured no finer than a bin; lower "
            "evaluation.resolution to at most the window"
        )


def scenario_warnings(spec: ExperimentSpec, i: int, world_spec: WorldSpec, regimes: int) -> bool:
    """Warn about scenario ``i``'s ``regimes`` within the horizon and its scheduled changes:
    too many regimes, none seen within the horizon, two changes closer than the window, or the
    last within a window of the horizon (docs/metrics.md's pitfalls). Whether it has a change
    to measure within the horizon."""
    from driftrec.experiments.cell import measured_changes
    from driftrec.simulators.drift.base import DriftProcess

    where, horizon = f"scenarios.{i} ({spec.scenarios[i].key})", spec.horizon
    window = spec.evaluation.window
    if regimes > MANY_REGIMES:
        _warn(
            f"{where}: {regimes:,} regimes within the horizon of {horizon:,} requests; each "
            f"gets a probe set of {spec.evaluation.probe_size} requests and an evaluation at "
            "its end, so cells will be slow and the per-regime figures crowded (a longer "
            "period or regime_every keeps them readable)"
        )
    changes = measured_changes(world_spec, horizon, spec.num_envs)  # what a cell measures
    schedules = any(type(p).boundaries is not DriftProcess.boundaries for p in world_spec.processes)
    if schedules and not changes:
        _warn(
            f"{where}: its drift is scheduled, but no change is seen within the horizon of "
            f"{horizon:,} requests (on the batch grid of {spec.num_envs:,}): nothing is measured "
            "and the report has no recovery columns; move the change before the horizon or "
            "lengthen the horizon"
        )
    gaps = [(a, b) for a, b in itertools.pairwise(changes) if b - a < window]
    if gaps:
        a, b = gaps[0]
        _warn(
            f"{where}: {len(gaps)} of its scheduled changes come less than evaluation.window "
            f"({window:,}) after the previous one (first: {a:,} and {b:,}, as seen on the batch "
            "grid): each is measured against the previous one's degraded level (docs/metrics.md, "
            "pitfalls); lower evaluation.window below the gap or space the changes, and read "
            "the twin columns"
        )
    if changes and changes[-1] + window > horizon:
        _warn(
            f"{where}: its change at {changes[-1]:,} leaves less than evaluation.window "
            f"({window:,}) before the horizon: no agent, the oracle included, can be seen back "
            "within it, so it is censored for all; end the horizon a window after it"
        )
    return bool(changes)


def first_update(agent: Any) -> int | None:
    """The number of requests after which a rule-based learning agent first updates, when
    every rule fires on a fixed schedule (rules are checked once per micro-batch); None for an
    agent with a data-driven trigger (a drift alarm), without rules, or not rule-based."""
    from driftrec.agents.triggers import EveryN, EveryStep, Never, Schedule
    from driftrec.experiments.cell import effective_clock  # rounds up to a grid

    strategy, learner = getattr(agent, "strategy", None), getattr(agent, "learner", None)
    rules = getattr(strategy, "rules", ())
    if learner is None or not rules:
        return None
    micro = learner.micro_batch
    firsts = []
    for rule in rules:
        trigger = rule.trigger
        if isinstance(trigger, Never):
            continue
        if isinstance(trigger, EveryStep):
            first = micro
        elif isinstance(trigger, EveryN):
            first = trigger.n
        elif isinstance(trigger, Schedule):
            first = min(trigger.at)
        else:
            return None
        firsts.append(effective_clock(first, micro))  # the micro-batch that reaches it
    return min(firsts, default=None)

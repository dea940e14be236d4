"""One cell of an experiment: an (scenario, agent, seed) rollout, measured. A plain function with
no Ray in it; the runners call it in this process or in a Ray worker.

A cell draws the world from its seed, gives every agent the same start (the spec's warm start:
pretraining on logged requests of the first regime), then serves ``horizon`` requests in batches
of ``num_envs``, recording windowed curves (expected, oracle, normalised reward, regret,
clicks), scoring the agent's greedy slates on every regime's probe set at the evaluation cadence
and at the end of every regime, and timing what acting and learning cost. For scheduled drift it
also runs the same agent, same seed, on the no-drift twin world (curves only), so that recovery
can be measured against what the agent would have done without the drift.

A model that diverges (its scores become NaN or inf) does not stop the cell: from the first
evaluation that sees it, its ranking metrics are NaN, ``CellResult.diverged_at`` records the
clock, and a ``RuntimeWarning`` names the cell (a diverging update rule is a result of a grid).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from driftrec.experiments.divergence import warn_diverged
from driftrec.experiments.memory import peak_rss_mb, reset_peak_rss
from driftrec.experiments.metrics import Curve, CurveRecorder, SessionRecorder, ranking_metrics
from driftrec.experiments.spec import Cell, WarmStartSpec

__all__ = [
    "COUNTERS",
    "RANKING_KEYS",
    "CellResult",
    "effective_clock",
    "measured_changes",
    "run_cell",
]

RANKING_KEYS = ("auc", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k")

COUNTERS = (
    "gradient_steps",
    "examples_trained",
    "updates",
    "optimiser_steps",
    "parameters_updated",
    "drift_alarms",
)
"""Learning counters of ``agent.cost()`` that a cell reports for the stream alone: what the
warm start's pretraining added is taken off (and reported as ``pretrain_<counter>``)."""


def effective_clock(t: int, batch: int) -> int:
    """The first clock whose request sees a change scheduled at ``t``: ``t`` rounded up to the
    batch grid (the world fires what was scheduled inside a batch after serving it).

    Example:
        >>> [effective_clock(t, 100) for t in (1000, 1001, 1050, 1100)]
        [1000, 1100, 1100, 1100]
    """
    return -(-int(t) // batch) * batch


@dataclass
class CellResult:
    """What one cell measured (everything a report needs; metrics are computed from it).

    Clocks: the world serves a batch of ``num_envs`` requests at clocks ``c .. c+num_envs-1``
    against its state at ``c``, then fires the drift scheduled in ``(c, c+num_envs]``
    (``driftrec.simulators.world``): a change scheduled at ``t`` is first seen at
    :func:`effective_clock` ``(t)``, ``t`` rounded up to the batch grid. The clocks of changes
    here (``regime_ends``, ``measured_events``) are effective clocks, and a change whose
    effective clock is at or after the horizon (seen by no request) is left out.

    Attributes:
        cell_id, scenario, agent, seed: which cell.
        horizon: requests served (a whole number of batches).
        curves: windowed curves of the drifting world (``CurveRecorder`` keys).
        twin_curves: the same on the no-drift twin, or None.
        events: the drift events that fired, as dicts (t, kind, magnitude, similarity), ``t``
            the clock the process scheduled the event at (not rounded to the batch grid).
        regime_ends: (m,) effective clock at which each regime ends (the last: the horizon),
            non-decreasing; only regimes that start before the horizon count (two changes
            inside one batch leave a regime that ends where it starts).
        measured_events: (n,) sorted distinct effective clocks from which recovery is
            measured: those of the scheduled changes that start a regime, and of the ends of
            spread-out changes (``gradual_end``, ``cohort_shift_end``), where the full drift
            has arrived; each before the horizon.
        eval_t: (E,) strictly increasing clocks of the probe evaluations (the agent as it is
            before serving the request at that clock), on the batch grid: the cadence rounded
            up to the grid, each regime's end and the horizon.
        probe: (E, m) P[e, j], mean normalised reward of the agent's greedy slates on regime
            j's probe set at evaluation e (NaN for agents without greedy slates). Regime j's
            probe is drawn from the world's state at the last request before its scheduled end.
        probe_random: (m,) b_j, the random policy's normalised reward on probe j.
        ranking: ranking metrics of the agent's scores on the probe of the regime in force at
            each evaluation, by key (:data:`RANKING_KEYS`): (E,) each.
        cost: what the stream cost the agent (not the twin's run): ``act_seconds`` and
            ``learn_seconds`` (in ``act``, ``observe``) and the :data:`COUNTERS` of
            ``agent.cost()`` over the stream, ``parameters_updated_per_step`` (their ratio, of
            the scalar parameters an optimiser step writes); the warm start's share apart
            (``pretrain_seconds``, ``pretrain_gradient_steps``, ``pretrain_examples_trained``);
            ``peak_stored_examples`` (the most ``stored_examples``, read after each batch);
            ``peak_rss_mb``, the peak resident memory of the process from the cell's start to
            the stream's end, MiB (Linux: the peak is reset at the start, then read; it counts
            the interpreter, libraries and what earlier cells of the process still hold; NaN
            where it cannot be reset, as on macOS: a process-wide peak only ever rises from
            cell to cell). Other keys of ``agent.cost()`` as at the end, lists summed.
        sessions: ``session_return`` (mean observed reward per completed user session),
            ``session_length`` and ``sessions`` (completed), from
            :class:`~driftrec.experiments.metrics.SessionRecorder`: the long-term counterpart
            of per-request regret.
        seconds: wall time of the cell.
        node: the Ray node that ran it (None in-process).
        diverged_at: the clock of the first probe evaluation at which the agent's scores were
            not all finite (its model diverged after the evaluation before it), or None. The
            ranking metrics of that evaluation and of every later one with non-finite scores
            are NaN; curves and probe rewards are of the slates it served. A class default, so
            that cell files written before the field existed load with None.
    """

    cell_id: str
    scenario: str
    agent: str
    seed: int
    horizon: int
    curves: dict[str, Curve]
    twin_curves: dict[str, Curve] | None
    events: list[dict[str, Any]]
    regime_ends: np.ndarray
    measured_events: np.ndarray
    eval_t: np.ndarray
    probe: np.ndarray
    probe_random: np.ndarray
    ranking: dict[str, np.ndarray]
    cost: dict[str, float]
    sessions: dict[str, float]
    seconds: float
    node: str | None = None
    diverged_at: int | None = None


def _make_env(cell: Cell, twin: bool = False) -> Any:
    from driftrec.envs import RecDriftVectorEnv

    spec = cell.spec
    return RecDriftVectorEnv(
        spec.num_envs,
        cell.scenario.name,
        autoreset_mode=AutoresetMode.SAME_STEP,
        twin=twin,
        **spec.world,
        **cell.scenario.params,
    )


def _make_agent(cell: Cell, env: Any, device: str) -> Any:
    """The cell's agent, built on ``env`` with the cell's seed and ``device`` (every builder
    gets them in its ``AgentSettings``: a learner puts its model there, a user's builder may
    read ``settings.device``, a baseline has no model to put anywhere)."""
    from driftrec.agents import make_agent

    agent = cell.agent
    return make_agent(
        agent.name,
        env,
        model=agent.model,
        exploration=agent.exploration,
        seed=cell.seed,
        device=device,
        **agent.params,
    )


def _device(cell: Cell) -> str:
    if cell.spec.resources.num_gpus > 0:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def _regimes(env: Any, horizon: int, batch: int) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The regimes that start before the horizon (on the batch grid): (their effective ends
    (m,), the clock to draw each one's probe at (m,)), and the effective clocks of the
    scheduled changes before the horizon."""
    bounds = [b for b in env.world_spec.regime_boundaries(horizon) if 0 < b < horizon]
    served = [effective_clock(b, batch) for b in bounds if effective_clock(b, batch) < horizon]
    # A regime's probe shows its state just before its next change, served or not
    probe_at = [end - 1 for end in [*bounds, horizon][: len(served) + 1]]
    changes = measured_changes(env.world_spec, horizon, batch)
    ends = np.array([*served, horizon], dtype=np.int64)
    return ends, probe_at, np.array(changes, dtype=np.int64)


def measured_changes(world_spec: Any, horizon: int, batch: int) -> list[int]:
    """The effective clocks (:func:`effective_clock`) of ``world_spec``'s scheduled changes that
    requests of a ``horizon``-request cell in batches of ``batch`` see, sorted: what the cell
    measures recovery from."""
    scheduled = {effective_clock(b, batch) for b in world_spec.scheduled_changes(horizon)}
    return sorted(c for c in scheduled if 0 < c < horizon)


def _eval_clocks(horizon: int, every: int, batch: int, regime_ends: np.ndarray) -> list[int]:
    """Clocks (on the batch grid, distinct) at which the agent is scored on the probes: every
    ``every`` requests rounded up to the grid, the end of each regime, and the end."""
    clocks = {effective_clock(c, batch) for c in range(0, horizon, every)} | {horizon}
    clocks |= {int(end) for end in regime_ends}
    return sorted(c for c in clocks if 0 <= c <= horizon)


def _start(cell: Cell, twin: bool, device: str) -> tuple[Any, Any, Any]:
    """The environment, reset (the world drawn once, from the cell's seed), its first
    observation, and the agent built on it (a frozen oracle freezes this world)."""
    env = _make_env(cell, twin)
    obs, _ = env.reset(seed=cell.seed)
    return env, obs, _make_agent(cell, env, device)


def agent_warm_start(cell: Cell, agent: Any) -> WarmStartSpec | None:
    """The spec's warm start if ``agent`` pretrains on it before the stream (a report reads it
    back as ``pretrain_seconds > 0``), else None."""
    return cell.spec.warm_start if hasattr(agent, "pretrain") else None


def _rollout(
    cell: Cell,
    env: Any,
    obs: Any,
    agent: Any,
    steps: int,
    on_eval: Any = None,
    eval_clocks: list[int] = (),  # type: ignore[assignment]
) -> tuple[dict[str, Curve], list[Any], dict[str, float], dict[str, float]]:
    """Serve ``steps`` batches from the reset ``env`` (first observation ``obs``), after the
    warm start: the curves, the drift events, the cost (``CellResult.cost`` but for the peak
    memory) and the session figures. ``on_eval(clock)`` runs at most once a batch, before
    the first batch at or after each of the sorted ``eval_clocks`` (and at the end for any
    left)."""
    from driftrec.agents import Transition

    spec = cell.spec
    pretrain_s = 0.0
    warm_start = agent_warm_start(cell, agent)
    if warm_start is not None:
        logged = env.log_interactions(warm_start.requests, warm_start.policy)
        start = time.perf_counter()
        agent.pretrain(logged)
        pretrain_s = time.perf_counter() - start
    warm = _learning_cost(agent)  # the stream's counters start here
    peak_stored = warm.get("stored_examples", 0.0)
    recorder = CurveRecorder(spec.resolution)
    sessions = SessionRecorder(spec.num_envs)
    events: list[Any] = []
    act_s = learn_s = 0.0
    pending = list(eval_clocks)
    for _ in range(steps):
        clock = env.clock
        if pending and pending[0] <= clock:
            while pending and pending[0] <= clock:  # one evaluation for every clock it covers
                pending.pop(0)
            if on_eval is not None:
                on_eval(clock)
        start = time.perf_counter()
        action = agent.act(obs)
        act_s += time.perf_counter() - start
        next_obs, reward, terminated, truncated, info = env.step(action)
        start = time.perf_counter()
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        learn_s += time.perf_counter() - start
        peak_stored = max(peak_stored, _learning_cost(agent).get("stored_examples", 0.0))
        recorder.update(clock, info["expected_reward"], info["oracle_expected_reward"], reward)
        sessions.update(reward, terminated, info.get("served"))
        events.extend(info["drift_events"][0])
        obs = next_obs
    if on_eval is not None and pending:
        on_eval(env.clock)
    cost = {"act_seconds": act_s, "learn_seconds": learn_s, "pretrain_seconds": pretrain_s}
    cost |= _stream_cost(warm, _learning_cost(agent))
    cost["peak_stored_examples"] = peak_stored
    return recorder.result(), events, cost, sessions.result()


def run_cell(cell: Cell) -> CellResult:
    """Run one cell and measure it (see the module docstring)."""
    import torch

    cell.spec.import_modules()  # a Ray worker registers the user's scenarios and agents too
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same numbers in-process and in a Ray worker (which has one)
    try:
        return _run_cell(cell)
    finally:
        torch.set_num_threads(threads)


def _run_cell(cell: Cell) -> CellResult:
    spec = cell.spec
    began = time.perf_counter()
    peak_reset = reset_peak_rss()
    device = _device(cell)
    env, obs, agent = _start(cell, False, device)
    steps = spec.horizon // spec.num_envs
    horizon = steps * spec.num_envs
    regime_ends, probe_at, scheduled = _regimes(env, horizon, spec.num_envs)
    probes = []
    future = env.ground_truth_snapshot()
    for clock in probe_at:
        future.advance(max(clock, future.clock))
        probes.append(future.probe_set(spec.evaluation.probe_size))
    baseline = np.array(
        [np.mean(p.random_expected_reward / p.oracle_expected_reward) for p in probes]
    )
    k = env.config.slate_size
    eval_clocks = _eval_clocks(horizon, spec.evaluation.every, spec.num_envs, regime_ends)
    probe_rows: list[list[float]] = []
    ranking_rows: list[dict[str, float]] = []
    eval_t: list[int] = []
    greedy = getattr(agent, "greedy", None)
    scores = getattr(agent, "scores", None)
    diverged_at: int | None = None
    pretrained = agent_warm_start(cell, agent) is not None

    def evaluate(clock: int) -> None:
        nonlocal diverged_at
        eval_t.append(clock)
        if greedy is None:
            probe_rows.append([np.nan] * len(probes))
        else:
            probe_rows.append([p.normalised_reward(greedy(p.observation)) for p in probes])
        if scores is None:
            ranking_rows.append(dict.fromkeys(RANKING_KEYS, np.nan))
            return
        regime = min(int(np.searchsorted(regime_ends, clock, side="right")), len(probes) - 1)
        current = probes[regime]
        agent_scores = scores(current.observation)
        if np.isfinite(agent_scores).all():
            ranking_rows.append(ranking_metrics(agent_scores, current.click_probability(), k))
            return
        # A diverged update rule is a result of the grid, not a crash: no ranking to measure
        ranking_rows.append(dict.fromkeys(RANKING_KEYS, np.nan))
        if diverged_at is None:
            diverged_at = clock
            warn_diverged(cell, clock, pretrained)

    curves, events, cost, sessions = _rollout(cell, env, obs, agent, steps, evaluate, eval_clocks)
    cost["peak_rss_mb"] = peak_rss_mb(peak_reset)

    twin_curves = None
    if _wants_twin(cell, scheduled, agent):
        twin_curves, _, twin_cost, _ = _rollout(cell, *_start(cell, True, device), steps)
        if "drift_alarms" in twin_cost:  # an alarm where nothing drifts is the agent's noise
            cost["twin_drift_alarms"] = twin_cost["drift_alarms"]

    return CellResult(
        cell_id=cell.id,
        scenario=cell.scenario.key,
        agent=cell.agent.key,
        seed=cell.seed,
        horizon=horizon,
        curves=curves,
        twin_curves=twin_curves,
        events=[_event(e) for e in events],
        regime_ends=regime_ends,
        measured_events=_measured(events, scheduled, horizon, spec.num_envs),
        eval_t=np.array(eval_t, dtype=np.int64),
        probe=np.array(probe_rows, dtype=np.float64).reshape(len(eval_t), len(probes)),
        probe_random=baseline,
        ranking={key: np.array([r[key] for r in ranking_rows]) for key in RANKING_KEYS},
        cost=cost,
        sessions=sessions,
        seconds=time.perf_counter() - began,
        diverged_at=diverged_at,
    )


def _measured(events: list[Any], scheduled: np.ndarray, horizon: int, batch: int) -> np.ndarray:
    """``CellResult.measured_events``: the effective clocks of the scheduled changes
    (``scheduled``, already effective) and of the ends of spread-out changes, before the
    horizon."""
    ends = {effective_clock(e.t, batch) for e in events if e.kind.endswith("_end") and e.t > 0}
    ends = {t for t in ends if t < horizon}
    return np.array(sorted(set(scheduled.tolist()) | ends), dtype=np.int64)


def _wants_twin(cell: Cell, scheduled: np.ndarray, agent: Any) -> bool:
    twin = cell.spec.evaluation.twin
    if twin == "auto":  # a change some request sees; the agent says whether it learns
        return bool(len(scheduled)) and bool(getattr(agent, "learns", False))
    return bool(twin)


def _event(event: Any) -> dict[str, Any]:
    return {
        "t": int(event.t),
        "kind": str(event.kind),
        "magnitude": float(event.magnitude),
        "similarity": None if event.similarity is None else float(event.similarity),
    }


def _learning_cost(agent: Any) -> dict[str, float]:
    """``agent.cost()`` as floats (lists summed, other values left out)."""
    get = getattr(agent, "cost", None)
    if get is None:
        return {"gradient_steps": 0.0, "examples_trained": 0.0, "stored_examples": 0.0}
    raw = get()
    out = {}
    for key, value in raw.items():
        if isinstance(value, (int, float, np.integer, np.floating)):
            out[key] = float(value)
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, (int, float, np.integer, np.floating)) for v in value)
        ):
            out[key] = float(sum(value))
    return out


def _stream_cost(warm: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """The learning cost of the stream: the :data:`COUNTERS` at the ``end`` less their value
    after the warm start (``warm``, reported as ``pretrain_<counter>`` for steps and
    examples), and ``parameters_updated_per_step`` (nan without a step); the other values as
    at the end (``stored_examples`` left to the peak)."""
    out = {}
    for key, value in end.items():
        if key in COUNTERS:
            out[key] = value - warm.get(key, 0.0)
        elif key != "stored_examples":
            out[key] = value
    if "optimiser_steps" in out:
        steps = out["optimiser_steps"]
        out["parameters_updated_per_step"] = (
            out["parameters_updated"] / steps if steps else math.nan
        )
    for key in ("gradient_steps", "examples_trained"):
        out[f"pretrain_{key}"] = warm.get(key, 0.0)
    return out

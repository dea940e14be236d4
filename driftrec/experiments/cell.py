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

import resource
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from driftrec.experiments.metrics import Curve, CurveRecorder, SessionRecorder, ranking_metrics
from driftrec.experiments.spec import Cell

__all__ = ["RANKING_KEYS", "CellResult", "run_cell"]

RANKING_KEYS = ("auc", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k")


@dataclass
class CellResult:
    """What one cell measured (everything a report needs; metrics are computed from it).

    Attributes:
        cell_id, scenario, agent, seed: which cell.
        horizon: requests served (a whole number of batches).
        curves: windowed curves of the drifting world (``CurveRecorder`` keys).
        twin_curves: the same on the no-drift twin, or None.
        events: the drift events that fired, as dicts (t, kind, magnitude, similarity).
        regime_ends: (m,) clock at which each regime ends (the last: the horizon).
        measured_events: clocks after which recovery is measured: the scheduled changes that
            start a regime, and the ends of spread-out changes (``gradual_end``,
            ``cohort_shift_end``), where the full drift has arrived.
        eval_t: (E,) clocks of the probe evaluations.
        probe: (E, m) P[e, j], mean normalised reward of the agent's greedy slates on regime
            j's probe set at evaluation e (NaN for agents without greedy slates).
        probe_random: (m,) b_j, the random policy's normalised reward on probe j.
        ranking: ranking metrics of the agent's scores on the probe of the regime in force at
            each evaluation, by key (:data:`RANKING_KEYS`): (E,) each.
        cost: act and learn seconds, learning counters, peak resident memory.
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
    from driftrec.agents import make_agent

    agent = cell.agent
    kwargs: dict[str, Any] = {"model": agent.model, "exploration": agent.exploration}
    if _is_learner(agent.name):
        kwargs["device"] = device
    return make_agent(agent.name, env, seed=cell.seed, **kwargs, **agent.params)


def _is_learner(name: str) -> bool:
    """A built-in agent with a model (a continual-learning strategy or an RL agent): it is
    built with the cell's ``device``. (Whether an agent gets the twin, it says itself:
    ``learns``.)"""
    from driftrec.agents import RL_AGENTS, STRATEGIES

    return name in STRATEGIES or name in RL_AGENTS


def _device(cell: Cell) -> str:
    if cell.spec.resources.num_gpus > 0:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def _regimes(env: Any, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(regime ends (m,), scheduled changes that start a regime) within the horizon."""
    bounds = [b for b in env.world_spec.regime_boundaries(horizon) if 0 < b < horizon]
    scheduled = [b for b in env.world_spec.scheduled_changes(horizon) if 0 < b < horizon]
    return np.array([*bounds, horizon], dtype=np.int64), np.array(scheduled, dtype=np.int64)


def _eval_clocks(horizon: int, every: int, batch: int, regime_ends: np.ndarray) -> list[int]:
    """Clocks (on the batch grid) at which the agent is scored on the probes: every ``every``
    requests, the last step before each regime ends, and the end."""
    clocks = set(range(0, horizon, every)) | {horizon}
    clocks |= {int(end) // batch * batch for end in regime_ends}
    return sorted(c for c in clocks if 0 <= c <= horizon)


def _start(cell: Cell, twin: bool, device: str) -> tuple[Any, Any, Any]:
    """The environment, reset (the world drawn once, from the cell's seed), its first
    observation, and the agent built on it (a frozen oracle freezes this world)."""
    env = _make_env(cell, twin)
    obs, _ = env.reset(seed=cell.seed)
    return env, obs, _make_agent(cell, env, device)


def _rollout(
    cell: Cell,
    env: Any,
    obs: Any,
    agent: Any,
    steps: int,
    on_eval: Any = None,
    eval_clocks: list[int] = (),  # type: ignore[assignment]
) -> tuple[dict[str, Curve], list[Any], dict[str, float], dict[str, float]]:
    """Serve ``steps`` batches from the reset ``env`` (first observation ``obs``): the curves,
    the drift events, the act / learn seconds and the session figures."""
    from driftrec.agents import Transition

    spec = cell.spec
    if spec.warm_start is not None and hasattr(agent, "pretrain"):
        agent.pretrain(env.log_interactions(spec.warm_start.requests, spec.warm_start.policy))
    recorder = CurveRecorder(spec.resolution)
    sessions = SessionRecorder(spec.num_envs)
    events: list[Any] = []
    act_s = learn_s = 0.0
    pending = list(eval_clocks)
    for _ in range(steps):
        clock = env.clock
        while pending and pending[0] <= clock:
            if on_eval is not None:
                on_eval(clock)
            pending.pop(0)
        start = time.perf_counter()
        action = agent.act(obs)
        act_s += time.perf_counter() - start
        next_obs, reward, terminated, truncated, info = env.step(action)
        start = time.perf_counter()
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        learn_s += time.perf_counter() - start
        recorder.update(clock, info["expected_reward"], info["oracle_expected_reward"], reward)
        sessions.update(reward, terminated, info.get("served"))
        events.extend(info["drift_events"][0])
        obs = next_obs
    if on_eval is not None and pending:
        on_eval(env.clock)
    timing = {"act_seconds": act_s, "learn_seconds": learn_s}
    return recorder.result(), events, timing, sessions.result()


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
    device = _device(cell)
    env, obs, agent = _start(cell, False, device)
    steps = spec.horizon // spec.num_envs
    horizon = steps * spec.num_envs
    regime_ends, scheduled = _regimes(env, horizon)
    probes = []
    future = env.ground_truth_snapshot()
    for end in regime_ends:
        future.advance(max(int(end) - 1, future.clock))
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
            _warn_diverged(cell, clock)

    curves, events, timing, sessions = _rollout(cell, env, obs, agent, steps, evaluate, eval_clocks)
    cost = {**timing, **_learning_cost(agent)}
    cost["peak_rss_mb"] = _peak_rss_mb()

    twin_curves = None
    if _wants_twin(cell, scheduled, agent):
        twin_curves, _, _, _ = _rollout(cell, *_start(cell, True, device), steps)

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
        measured_events=_measured(events, scheduled, horizon),
        eval_t=np.array(eval_t, dtype=np.int64),
        probe=np.array(probe_rows, dtype=np.float64).reshape(len(eval_t), len(probes)),
        probe_random=baseline,
        ranking={key: np.array([r[key] for r in ranking_rows]) for key in RANKING_KEYS},
        cost=cost,
        sessions=sessions,
        seconds=time.perf_counter() - began,
        diverged_at=diverged_at,
    )


def _warn_diverged(cell: Cell, clock: int) -> None:
    warm = clock == 0 and cell.spec.warm_start is not None
    when = "during the warm start" if warm else "first seen at this probe evaluation"
    warnings.warn(
        f"cell {cell.id}: agent {cell.agent.key}'s scores became non-finite at t={clock:,} "
        f"({when}): its model diverged. The cell goes on (its ranking metrics are NaN from "
        "then on, its rewards those of the slates it serves) and the report lists it; lower "
        "its learning rate (lr) for a stable run",
        RuntimeWarning,
        stacklevel=2,
    )


def _measured(events: list[Any], scheduled: np.ndarray, horizon: int) -> np.ndarray:
    ends = {int(e.t) for e in events if e.kind.endswith("_end") and 0 < e.t < horizon}
    return np.array(sorted(set(scheduled.tolist()) | ends), dtype=np.int64)


def _wants_twin(cell: Cell, scheduled: np.ndarray, agent: Any) -> bool:
    twin = cell.spec.evaluation.twin
    if twin == "auto":  # the agent says whether it learns as it serves
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


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)

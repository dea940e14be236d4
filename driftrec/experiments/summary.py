"""From cell results to tidy tables: curves, probes, events, per-event recovery, per-cell metrics
and the per-(scenario, agent) summary over seeds (mean and a 95% interval), all pandas
DataFrames written as Parquet. Every number comes from ``driftrec.experiments.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftrec.agents.registry import BASELINES
from driftrec.experiments.cell import RANKING_KEYS, CellResult
from driftrec.experiments.metrics import (
    Curve,
    acc,
    bwt,
    forgetting,
    fwt,
    plasticity_gap,
    recoveries,
    regime_matrix,
)
from driftrec.experiments.spec import ExperimentSpec

__all__ = ["Tables", "build_tables", "t_interval"]

KEYS = ["scenario", "agent", "seed"]


@dataclass
class Tables:
    """The tidy tables of an experiment (one row per observation; see docs/metrics.md)."""

    curves: pd.DataFrame
    """A row per (cell, world or twin, bin): normalised, expected, oracle, regret, clicks."""
    probes: pd.DataFrame
    """A row per (cell, evaluation, regime probe): P[e, j] and the random baseline b_j."""
    events: pd.DataFrame
    """A row per (cell, drift event that fired)."""
    recovery: pd.DataFrame
    """A row per (cell, measured event): ``outcome`` ("recovered", "censored" or
    "unmeasurable": within W of the start, no pre-event level), recovery time (nan unless
    recovered), dip, adaptation regret, against the pre-change level and, where the twin ran,
    against the twin (``twin_*``)."""
    cells: pd.DataFrame
    """A row per cell: reward, forgetting metrics, ranking metrics, cost, and ``diverged_at``
    (the clock from which the agent's scores were non-finite, or <NA>)."""
    summary: pd.DataFrame
    """A row per (scenario, agent): each metric's mean over seeds and its 95% half-width
    (event metrics averaged over each seed's events first); ``diverged``: how many of its
    seeds' models diverged (``"1/3"``); ``censored`` / ``twin_censored``: censored of
    measurable events; ``unmeasurable``: events without a pre-event window, of all events."""
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    """A row per (scenario, agent other than the scenario's leader): the agent's metric minus
    the leader's (the learner with the highest mean reward), seed by seed on the same worlds,
    then the mean and 95% half-width of those differences (:data:`PAIRED_METRICS`);
    ``seeds``: the seeds both ran; ``verdict``: how the reward compares."""


def _ids(result: CellResult) -> dict[str, Any]:
    """Which cell a row belongs to: its :data:`KEYS`."""
    return {key: getattr(result, key) for key in KEYS}


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% half-width of a Student t interval over ``values`` (NaNs dropped; the
    half-width is NaN with fewer than two values)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def _curve_rows(result: CellResult, which: str, curves: dict[str, Curve]) -> pd.DataFrame:
    rho = curves["normalised"]
    frame = pd.DataFrame(
        {"t": rho.edges[:-1], "t_end": rho.edges[1:], **{k: c.values for k, c in curves.items()}}
    )
    frame.insert(0, "world", which)
    for i, key in enumerate(KEYS):
        frame.insert(i, key, getattr(result, key))
    return frame


def _recovery_rows(result: CellResult, spec: ExperimentSpec) -> list[dict[str, Any]]:
    """A row per measured event: an event in the first W requests (no pre-event window) too,
    its pre-event metrics nan and its ``outcome`` "unmeasurable", so that it is not lost."""
    ev = spec.evaluation
    rho, regret = result.curves["normalised"], result.curves["regret"]
    events = result.measured_events.tolist()
    if not events:
        return []
    common: dict[str, Any] = {
        "horizon": result.horizon,
        "regret": regret,
        "regret_horizon": ev.regret_horizon,
    }
    plain = recoveries(rho, events, ev.window, ev.eps, early="nan", **common)
    twin = [None] * len(events)
    if result.twin_curves is not None:
        twin = recoveries(  # type: ignore[assignment]
            rho,
            events,
            ev.window,
            ev.eps,
            reference=result.twin_curves["normalised"],
            reference_regret=result.twin_curves["regret"],
            **common,
        )
    rows = []
    for r, w in zip(plain, twin, strict=True):
        kind, magnitude = _kind(result, r.event_t, spec.num_envs)
        row = {
            **_ids(result),
            "event_t": r.event_t,
            "kind": kind,
            "magnitude": magnitude,
            "censor_t": r.censor_t,
            "outcome": r.outcome,
            "pre": r.pre,
            "recovery_time": math.nan if r.time is None else r.time,
            "censored": r.censored,
            "dip": r.dip,
            "adaptation_regret": r.regret,
        }
        if w is not None:
            row |= {
                "twin_outcome": w.outcome,
                "twin_recovery_time": math.nan if w.time is None else w.time,
                "twin_censored": w.censored,
                "twin_dip": w.dip,
                "twin_excess_regret": w.regret,
            }
        rows.append(row)
    return rows


def _kind(result: CellResult, clock: int, batch: int) -> tuple[str, float]:
    """The kind and magnitude of the drift event measured at ``clock``: the first event that
    fired at it, else the last within the batch before it (a measured clock is an event's
    rounded up to the batch grid), else ``("", nan)``."""
    at = [e for e in result.events if e["t"] == clock]
    if not at:
        at = [e for e in result.events if clock - batch < e["t"] < clock][-1:]
    return (at[0]["kind"], at[0]["magnitude"]) if at else ("", math.nan)


def _cell_row(result: CellResult, spec: ExperimentSpec) -> dict[str, Any]:
    rho = result.curves["normalised"]
    window = min(spec.evaluation.window, result.horizon)
    row: dict[str, Any] = _ids(result)
    row["reward"] = rho.mean(rho.start, rho.end)
    row["final_reward"] = rho.mean(rho.end - window, rho.end)
    regret = result.curves["regret"]
    row["regret"] = regret.mean(regret.start, regret.end)
    row["session_return"] = result.sessions["session_return"]
    row["session_length"] = result.sessions["session_length"]
    if result.twin_curves is not None:
        twin = result.twin_curves["normalised"]
        row["twin_reward"] = twin.mean(twin.start, twin.end)
    if np.isfinite(result.probe).all() and len(result.eval_t):
        R = regime_matrix(result.probe, result.eval_t, result.regime_ends)
        row |= {
            "acc": acc(R),
            "bwt": bwt(R),
            "fwt": fwt(R, result.probe_random),
            "forgetting": forgetting(R),
            "plasticity_gap": float(np.mean(plasticity_gap(R))),
        }
        row |= {key: float(result.ranking[key][-1]) for key in RANKING_KEYS}
    else:
        row |= dict.fromkeys(("acc", "bwt", "fwt", "forgetting", "plasticity_gap"), math.nan)
        row |= dict.fromkeys(RANKING_KEYS, math.nan)
    row |= {f"cost_{key}": value for key, value in result.cost.items()}
    row["seconds"] = result.seconds
    row["node"] = result.node  # the Ray node that ran the cell (None in-process)
    row["diverged_at"] = result.diverged_at
    return row


def _event_summary(events: pd.DataFrame, prefix: str) -> dict[str, Any]:
    """Recovery time, dip, adaptation regret and the censored count of one (scenario, agent)
    by one criterion (``prefix`` "" or "twin_"), from its rows of the recovery table.

    Seeds are the independent replicates, not events (a seed's events share its model and
    world): each metric is first averaged over a seed's events, then the mean and t-interval
    run over seeds. A seed's recovery time is its mean over the events it recovered from (a
    seed that recovered from none has none), its dip the mean over its measurable events, its
    adaptation regret the mean over all its events. The counts pool events: ``censored`` is
    censored / measurable events, ``unmeasurable`` unmeasurable / all events."""
    outcome = events[f"{prefix}outcome"]
    measurable = events[outcome != "unmeasurable"]
    regret = "adaptation_regret" if not prefix else "twin_excess_regret"
    row: dict[str, Any] = {}
    for metric, rows in (
        (f"{prefix}recovery_time", measurable),
        (f"{prefix}dip", measurable),
        (regret, events),
    ):
        per_seed = rows.groupby("seed", sort=False)[metric].mean()  # skips a seed's nans
        row[metric], row[f"{metric}_ci"] = t_interval(per_seed.tolist())
    row[f"{prefix}censored"] = f"{int((outcome == 'censored').sum())}/{len(measurable)}"
    if not prefix:
        row["unmeasurable"] = f"{len(events) - len(measurable)}/{len(events)}"
    return row


def _summary(cells: pd.DataFrame, recovery: pd.DataFrame) -> pd.DataFrame:
    rows = []
    metrics = [c for c in cells.columns if c not in (*KEYS, "diverged_at", "node")]
    for (scenario, agent), group in cells.groupby(["scenario", "agent"], sort=False):
        row: dict[str, Any] = {"scenario": scenario, "agent": agent, "seeds": len(group)}
        # A mean over seeds leaves a diverged seed's NaN ranking metrics out: this says so
        row["diverged"] = f"{int(group.diverged_at.notna().sum())}/{len(group)}"
        for metric in metrics:
            row[metric], row[f"{metric}_ci"] = t_interval(group[metric].tolist())
        if "outcome" in recovery:
            events = recovery[(recovery.scenario == scenario) & (recovery.agent == agent)]
            for prefix in ("", "twin_"):
                if f"{prefix}outcome" in events and events[f"{prefix}outcome"].notna().any():
                    row |= _event_summary(events[events[f"{prefix}outcome"].notna()], prefix)
        rows.append(row)
    return pd.DataFrame(rows)


PAIRED_METRICS = ("reward", "final_reward", "forgetting")
"""The metrics of the paired table: differences seed by seed against the scenario's leader."""


def _paired(cells: pd.DataFrame, baselines: set[str]) -> pd.DataFrame:
    """Each agent against its scenario's leader, seed by seed (see :attr:`Tables.paired`).
    The agents of a scenario serve the same seeded worlds, so the seed-to-seed spread that
    widens each agent's own interval cancels in their difference."""
    rows = []
    for scenario, group in cells.groupby("scenario", sort=False):
        # The leader: among the learners that ran the most seeds (a partial report's agents
        # may have run different ones), the highest mean reward over the seeds they share.
        seeds = group.groupby("agent", sort=False)["seed"].agg(set)
        learners = seeds[[a not in baselines for a in seeds.index]]
        if learners.empty or len(seeds) < 2:
            continue
        full = learners[learners.map(len) == learners.map(len).max()]
        shared = group[group.agent.isin(full.index) & group.seed.isin(set.intersection(*full))]
        if shared.empty:  # learners with disjoint seeds: no pairing to rank them by
            shared = group[group.agent.isin(full.index)]
        leader = str(shared.groupby("agent", sort=False)["reward"].mean().idxmax())
        base = group[group.agent == leader].set_index("seed")
        for agent, other in group.groupby("agent", sort=False):
            if agent == leader:
                continue
            row: dict[str, Any] = {"scenario": scenario, "agent": agent, "versus": leader}
            diff = other.set_index("seed")[list(PAIRED_METRICS)] - base[list(PAIRED_METRICS)]
            row["seeds"] = int(diff["reward"].notna().sum())
            for metric in PAIRED_METRICS:
                row[metric], row[f"{metric}_ci"] = t_interval(diff[metric].tolist())
            mean, half = row["reward"], row["reward_ci"]
            row["verdict"] = (
                "no common seed" if not row["seeds"]
                else "one seed" if not math.isfinite(half)
                else "within noise" if abs(mean) <= half
                else "better" if mean > 0
                else "worse"
            )  # fmt: skip
            rows.append(row)
    columns = ["scenario", "agent", "versus", "seeds", "verdict"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def build_tables(results: Iterable[CellResult], spec: ExperimentSpec) -> Tables:
    """Every table of an experiment from its cell results."""
    order = {c.id: i for i, c in enumerate(spec.cells())}
    results = sorted(results, key=lambda r: (order.get(r.cell_id, len(order)), r.cell_id))
    curves, probes, events, recovery_rows, cell_rows = [], [], [], [], []
    for r in results:
        curves.append(_curve_rows(r, "world", r.curves))
        if r.twin_curves is not None:
            curves.append(_curve_rows(r, "twin", r.twin_curves))
        E, m = r.probe.shape
        probes.append(
            pd.DataFrame(
                {
                    **{key: [getattr(r, key)] * (E * m) for key in KEYS},
                    "eval_t": np.repeat(r.eval_t, m),
                    "regime": np.tile(np.arange(m), E),
                    "normalised_reward": r.probe.reshape(-1),
                    "random": np.tile(r.probe_random, E),
                }
            )
        )
        for e in r.events:
            events.append({**_ids(r), **e})
        recovery_rows.extend(_recovery_rows(r, spec))
        cell_rows.append(_cell_row(r, spec))
    cells = pd.DataFrame(cell_rows)
    cells["diverged_at"] = cells["diverged_at"].astype("Int64")  # a clock, or <NA>
    recovery = pd.DataFrame(recovery_rows, columns=None if recovery_rows else [*KEYS, "event_t"])
    return Tables(
        curves=pd.concat(curves, ignore_index=True),
        probes=pd.concat(probes, ignore_index=True),
        events=pd.DataFrame(events, columns=None if events else [*KEYS, "t", "kind"]),
        recovery=recovery,
        cells=cells,
        summary=_summary(cells, recovery),
        paired=_paired(cells, {a.key for a in spec.agents if a.name in BASELINES}),
    )

"""The report's figures (PNG), drawn from an experiment's tidy tables: the reward curves, recovery
and dip after each drift event, the probe matrices, stability against plasticity, and quality
against cost."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftrec.experiments.summary import Tables, t_interval

__all__ = ["FIGURES", "FRONT_LEGEND", "write_figures"]

FIGURES = ("reward", "recovery", "probes", "stability_plasticity", "cost")

FRONT_LEGEND = "ringed, dashed: Pareto front"


def write_figures(tables: Tables, directory: Path, window: int) -> dict[str, Path]:
    """Draw every figure of :data:`FIGURES` into ``directory``; ``window`` is the recovery
    window W (the earliest possible recovery time, marked on the recovery axes)."""
    paths = {name: directory / f"{name}.png" for name in FIGURES}
    _reward_figure(tables, paths["reward"])
    _recovery_figure(tables, paths["recovery"], window)
    _probe_figure(tables, paths["probes"])
    _stability_figure(tables, paths["stability_plasticity"], window)
    _cost_figure(tables, paths["cost"])
    return paths


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _colors(agents: list[str] | Tables) -> dict[str, Any]:
    """A colour per agent (of ``agents``, or of the tables' cells, in their order)."""
    if isinstance(agents, Tables):
        agents = list(dict.fromkeys(agents.cells.agent))
    cmap = _plt().get_cmap("tab10")
    return {a: cmap(i % 10) for i, a in enumerate(agents)}


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _panels(plt: Any, count: int, size: tuple[float, float]) -> tuple[Any, list[Any]]:
    """A figure of ``count`` panels, two per row, each ``size`` inches; spare panels hidden."""
    cols = min(max(count, 1), 2)
    rows = math.ceil(max(count, 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, list(axes.ravel()[:count])


def _label_panel(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    """Title, axis labels, legend and at most five ticks per axis for one scatter panel."""
    _few_ticks(ax)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=7)


def _few_ticks(ax: Any) -> None:
    """At most five ticks per axis, so that long tick labels do not run into each other."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))


def _window_line(ax: Any, window: int) -> None:
    """Mark W, the earliest recovery time (the first window wholly after the event), with an
    entry in the legend; requests on the axis get thousands separators."""
    ax.axhline(window, color="0.45", lw=1.0, ls=":", zorder=0,
               label=f"W = {window:,}: back within the first window")  # fmt: skip
    _thousands(ax.yaxis)


def _thousands(axis: Any) -> None:
    """Thousands separators on an axis of requests."""
    from matplotlib.ticker import StrMethodFormatter

    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _half_width(table: pd.DataFrame) -> pd.Series:
    """95% Student t half-width of each row's mean over its columns (seeds); 0 for one seed,
    which has no interval."""
    n = table.shape[1]
    if n < 2:
        return pd.Series(0.0, index=table.index)
    return stats.t.ppf(0.975, n - 1) * table.std(axis=1) / math.sqrt(n)


def _reward_figure(tables: Tables, path: Path) -> None:
    """Normalised reward over the clock per scenario: each agent's mean over seeds (curves
    smoothed over 5 bins) with its 95% t-interval band, the no-drift twin dashed, drift dotted."""
    plt = _plt()
    curves = tables.curves
    scenarios = list(dict.fromkeys(curves.scenario))
    agents = list(dict.fromkeys(curves.agent))
    colors = _colors(agents)
    fig, axes = plt.subplots(len(scenarios), 1, figsize=(9, 2.8 * len(scenarios)), squeeze=False)
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        for agent in agents:
            for world, style in (("world", "-"), ("twin", "--")):
                rows = curves[(curves.scenario == scenario) & (curves.agent == agent)]
                rows = rows[rows.world == world]
                if rows.empty:
                    continue
                table = rows.pivot_table(index="t", columns="seed", values="normalised")
                smooth = table.rolling(5, min_periods=1, center=True).mean()
                mean, half = smooth.mean(axis=1), _half_width(smooth)
                label = agent if world == "world" else None
                ax.plot(mean.index, mean, style, color=colors[agent], lw=1.4, label=label)
                if world == "world":
                    ax.fill_between(
                        mean.index, mean - half, mean + half, color=colors[agent], alpha=0.15
                    )
        events = tables.events[tables.events.scenario == scenario]
        for t in sorted(set(events.t)):
            ax.axvline(t, color="0.4", lw=0.8, ls=":")
        seeds = curves[curves.scenario == scenario].seed.nunique()
        band = "band: 95% interval over seeds" if seeds > 1 else "one seed: no interval"
        ax.set_title(
            f"{scenario}: normalised reward ({band}; dashed: no-drift twin; dotted: drift)",
            fontsize=10,
        )
        ax.set_ylabel("expected / oracle")
        ax.set_ylim(*_reward_limits(curves.normalised[curves.scenario == scenario]))
        _thousands(ax.xaxis)
    axes[-1, 0].set_xlabel("world clock (requests)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, ncol=min(len(agents), 8), fontsize=8, loc="upper center",
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    fig.savefig(path)
    plt.close(fig)


def _reward_limits(values: pd.Series) -> tuple[float, float]:
    """The normalised-reward axis: the curves' range widened to tenths, within [0, 1.02] (a
    change of a few hundredths must show; 0..1 squeezed every curve into a band)."""
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if finite.empty:
        return 0.0, 1.02
    low = max(0.0, math.floor(finite.min() * 10 + 1e-9) / 10)
    return low, min(1.02, max(low + 0.1, math.ceil(finite.max() * 10 - 1e-9) / 10))


def _mean_and_half(values: pd.Series) -> tuple[float, float]:
    """The mean of ``values`` (nan if none) and its 95% half-width (0 for fewer than two)."""
    values = values.dropna()
    if values.empty:
        return math.nan, 0.0
    mean, half = t_interval(values.tolist())
    return mean, half if math.isfinite(half) else 0.0


def _recovery_figure(tables: Tables, path: Path, window: int) -> None:
    """Recovery time (above) and dip (below) per drift event and agent, means over seeds with
    95% intervals. A bar hatched and faded is censored in some seeds: a censored seed counts at
    its censoring distance, so the bar is a lower bound. Unmeasurable seeds (an event in the
    first W requests: no pre-event level) have no recovery time and no dip, and are left out."""
    plt = _plt()
    rec = tables.recovery
    groups = list(dict.fromkeys(zip(rec.scenario, rec.event_t, strict=True))) if len(rec) else []
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 1.1 * len(groups) + 2.0) + 1.8, 6.4))
    if not groups:
        for ax in axes:
            ax.text(0.5, 0.5, "no scheduled drift event", ha="center", transform=ax.transAxes)
        _save(plt, fig, path)
        return
    agents = list(dict.fromkeys(rec.agent))
    colors = _colors(tables)
    width = 0.8 / len(agents)
    for j, agent in enumerate(agents):
        times, dips, censored = [], [], []
        for scenario, t in groups:
            sel = rec[(rec.scenario == scenario) & (rec.event_t == t) & (rec.agent == agent)]
            cut = sel.outcome.eq("censored")
            times.append(_mean_and_half(sel.recovery_time.where(~cut, sel.censor_t - t)))
            censored.append(bool(cut.any()))
            dips.append(_mean_and_half(sel.dip))
        x = np.arange(len(groups)) + j * width
        for ax, values, floor in ((axes[0], times, window), (axes[1], dips, -math.inf)):
            mean, half = np.array(values).T
            # Recovery takes at least W: a wide interval of few seeds is not drawn below it.
            below = np.clip(np.minimum(half, mean - floor), 0, None)
            bars = ax.bar(x, mean, width, yerr=np.nan_to_num([below, half]),
                          color=colors[agent], label=agent,
                          error_kw={"elinewidth": 0.8, "ecolor": "0.3"})  # fmt: skip
            if ax is axes[0]:
                for bar, hatch in zip(bars, censored, strict=True):
                    if hatch:
                        bar.set_hatch("///")
                        bar.set_alpha(0.5)
    labels = []
    for scenario, t in groups:
        outcome = rec.outcome[(rec.scenario == scenario) & (rec.event_t == t)]
        # An event within W of the horizon is censored for every agent, the oracle too.
        unmeasured = "\n(censored for all)" if outcome.eq("censored").all() else ""
        labels.append(f"{scenario}\nt={t:,}{unmeasured}")
    titles = (
        "recovery time after each drift event\n(hatched: censored in some seeds, counted at "
        "the censoring point: a lower bound)",
        "dip: pre-event level minus the lowest window after it",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, labels, fontsize=7)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("requests")
    _window_line(axes[0], window)
    axes[0].set_ylim(bottom=0)
    axes[1].axhline(0, color="0.5", lw=0.8)
    axes[1].set_ylabel("normalised reward")
    # Beside the panels, not on them: with many agents a legend inside covered the bars. One
    # plain patch per agent (a bar's own handle shows its first group's hatching).
    from matplotlib.patches import Patch

    handles, names = axes[0].get_legend_handles_labels()
    plain = [
        Patch(color=colors[n]) if n in colors else h for h, n in zip(handles, names, strict=True)
    ]
    axes[0].legend(plain, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(plt, fig, path)


def _probe_limits(values: np.ndarray) -> tuple[float, float]:
    """Colour limits shared by every probe matrix: the data's range widened to a multiple of
    0.05 (differences of a few hundredths must show), within [0, 1]."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    # Steps of 0.05, counted with a little slack: 0.6 / 0.05 is 11.999...
    low = max(0.0, math.floor(finite.min() / 0.05 + 1e-9) * 0.05)
    high = min(1.0, math.ceil(finite.max() / 0.05 - 1e-9) * 0.05)
    return (low, high) if high > low else (max(0.0, low - 0.05), min(1.0, high + 0.05))


def _probe_figure(tables: Tables, path: Path) -> None:
    plt = _plt()
    probes = tables.probes.dropna(subset=["normalised_reward"])
    scenarios = list(dict.fromkeys(tables.cells.scenario))
    agents = [a for a in dict.fromkeys(tables.cells.agent) if a in set(probes.agent)]
    if not agents:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no probed agent", ha="center")
        _save(plt, fig, path)
        return
    vmin, vmax = _probe_limits(probes.normalised_reward.to_numpy(dtype=float))
    fig, axes = plt.subplots(
        len(scenarios), len(agents), figsize=(1.9 * len(agents) + 1.6, 1.9 * len(scenarios) + 0.6),
        squeeze=False,
    )  # fmt: skip
    image = None
    for i, scenario in enumerate(scenarios):
        for j, agent in enumerate(agents):
            ax = axes[i, j]
            sel = probes[(probes.scenario == scenario) & (probes.agent == agent)]
            matrix = sel.groupby(["eval_t", "regime"]).normalised_reward.mean().unstack()
            image = ax.imshow(matrix.to_numpy(), aspect="auto", vmin=vmin, vmax=vmax,
                              cmap="viridis")  # fmt: skip
            ax.set_xticks(range(matrix.shape[1]))
            rows = [0, len(matrix) - 1] if len(matrix) > 1 else [0]
            ax.set_yticks(rows, [f"{matrix.index[r]:,}" for r in rows] if j == 0 else [],
                          fontsize=6)  # fmt: skip
            if i == 0:
                ax.set_title(agent, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{scenario}\nevaluated at t", fontsize=8)
            if i == len(scenarios) - 1:
                ax.set_xlabel("probe regime", fontsize=8)
    fig.suptitle(
        "P[e, j]: normalised reward of the greedy slates on regime j's probe (1 = oracle), "
        "at each evaluation (rows, top to bottom)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="normalised reward")
    fig.savefig(path)
    plt.close(fig)


def _pareto(points: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both coordinates (lower is better)."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


def _plot_front(ax: Any, points: np.ndarray, higher_y_is_better: bool = False) -> Any:
    """Ring the Pareto front of ``points`` (n, 2; lower x is better, and lower y unless
    ``higher_y_is_better``) and join it with a dashed line; a front of one point (an agent
    better than all others on both) is its ring alone. Returns the line."""
    sign = np.array([1.0, -1.0 if higher_y_is_better else 1.0])
    front = points[_pareto(points * sign)]
    front = front[np.argsort(front[:, 0])]
    (line,) = ax.plot(
        front[:, 0], front[:, 1], "k--", lw=1, marker="o", ms=11, mfc="none", mec="k", zorder=3
    )
    return line


def _censoring(recovery: pd.DataFrame, scenario: str, agent: str) -> tuple[int, int, float]:
    """Of an agent's measured drift events (all seeds): how many were censored, how many were
    measured (recovered or censored), and the mean requests from a censored event to its
    censoring point (the next event or the end; a lower bound on its recovery time)."""
    if recovery.empty or "outcome" not in recovery:
        return 0, 0, math.nan
    sel = recovery[(recovery.scenario == scenario) & (recovery.agent == agent)]
    cut = sel.outcome.eq("censored")
    measured = int(sel.outcome.ne("unmeasurable").sum())
    distance = float((sel.censor_t - sel.event_t)[cut].mean()) if cut.any() else math.nan
    return int(cut.sum()), measured, distance


def _stability_figure(tables: Tables, path: Path, window: int | None = None) -> None:
    """Forgetting against recovery time, one panel per scenario, agents as points and the
    Pareto front among them (lower is better on both). The front is drawn among the agents
    that recovered from every event: one censored in some events is a hollow circle at its
    mean over the events it recovered from, and one that recovered from none a hollow triangle
    at its censoring distance."""
    plt = _plt()
    summary = tables.summary
    colors = _colors(tables)
    points: dict[str, list[tuple[str, float, float, str]]] = {}
    if "recovery_time" in summary:
        for _, row in summary.dropna(subset=["forgetting"]).iterrows():
            cut, measured, distance = _censoring(tables.recovery, row.scenario, row.agent)
            time, label = row.recovery_time, row.agent
            if not math.isfinite(time):
                time, label = distance, f"{row.agent}: never recovered (censored)"
            elif cut:
                label = f"{row.agent} (censored {cut}/{measured})"
            if math.isfinite(time):
                points.setdefault(row.scenario, []).append((row.agent, row.forgetting, time, label))
    scenarios = list(points) or ["(none)"]
    fig, axes = _panels(plt, len(scenarios), (5.2, 3.6))
    for ax, scenario in zip(axes, scenarios, strict=True):
        if scenario not in points:  # e.g. a grid without scheduled drift: nothing to plot
            ax.text(0.5, 0.5, "needs probed agents and drift events", ha="center",
                    transform=ax.transAxes)  # fmt: skip
            continue
        front = []
        for agent, forgetting, time, label in points[scenario]:
            if label == agent:
                ax.scatter(forgetting, time, color=colors[agent], s=45, label=label)
                front.append((forgetting, time))
            else:
                ax.scatter(forgetting, time, marker="^" if "never" in label else "o", s=60,
                           facecolors="none", edgecolors=colors[agent], linewidths=1.5,
                           label=label)  # fmt: skip
        if front:
            _plot_front(ax, np.array(front, dtype=float))
        if window is not None:
            _window_line(ax, window)
        title = f"{scenario} ({FRONT_LEGEND}; hollow: censored)"
        _label_panel(ax, title, "forgetting on probes (lower is better)", "recovery time, requests")
    fig.suptitle("stability vs plasticity", fontsize=10)
    _save(plt, fig, path)


def _cost_half_widths(cells: pd.DataFrame, summary: pd.DataFrame) -> pd.Series:
    """Per summary row, the 95% half-width over seeds of the seconds acting and learning per
    cell (0 where there is none: one seed, or no timing)."""
    if "cost_learn_seconds" not in cells or "cost_act_seconds" not in cells:
        return pd.Series(0.0, index=summary.index)
    seconds = cells.cost_learn_seconds + cells.cost_act_seconds
    half = {
        key: t_interval(group.tolist())[1]
        for key, group in seconds.groupby([cells.scenario, cells.agent], sort=False)
    }
    values = [
        half.get((s, a), math.nan) for s, a in zip(summary.scenario, summary.agent, strict=True)
    ]
    return pd.Series(values, index=summary.index).fillna(0.0)


def _cost_figure(tables: Tables, path: Path) -> None:
    """Mean normalised reward against seconds acting and learning per cell, one panel per
    scenario, agents as points with 95% intervals over seeds both ways (wall time moves with
    the machine's load: the horizontal bar says by how much), and the Pareto front (cheaper and
    better)."""
    plt = _plt()
    summary = tables.summary
    colors = _colors(tables)
    zero = pd.Series(0.0, index=summary.index)
    cost = summary.get("cost_learn_seconds", zero) + summary.get("cost_act_seconds", zero)
    reward_ci = summary.get("reward_ci", zero).fillna(0.0)
    cost_ci = _cost_half_widths(tables.cells, summary)
    scenarios = list(dict.fromkeys(summary.scenario))
    fig, axes = _panels(plt, len(scenarios), (5.2, 3.6))
    for ax, scenario in zip(axes, scenarios, strict=True):
        sel = summary.scenario == scenario
        for i in summary.index[sel]:
            xerr = [[min(cost_ci[i], cost[i])], [cost_ci[i]]]  # no seconds below zero
            ax.errorbar(cost[i], summary.reward[i], yerr=reward_ci[i], xerr=xerr, fmt="o",
                        ms=6, color=colors[summary.agent[i]], label=summary.agent[i])  # fmt: skip
        points = np.column_stack([cost[sel], summary.reward[sel]]).astype(float)
        finite = np.isfinite(points).all(axis=1)
        if finite.any():
            _plot_front(ax, points[finite], higher_y_is_better=True)
        _label_panel(ax, f"{scenario} ({FRONT_LEGEND})", "seconds acting + learning per cell",
                     "mean normalised reward")  # fmt: skip
    fig.suptitle("quality vs cost (higher and further left is better)", fontsize=10)
    _save(plt, fig, path)

"""The report of an experiment: Parquet tables, PNG figures, a self-contained HTML page (figures
embedded) and a Markdown summary, answering "which update strategy adapts fastest, forgets
least, at what cost"."""

from __future__ import annotations

import base64
import html
import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from driftrec.experiments.cell import CellResult
from driftrec.experiments.results import ResultsDir, atomic_write
from driftrec.experiments.summary import Tables, build_tables

__all__ = ["FIGURES", "write_report"]

FIGURES = ("reward", "recovery", "probes", "stability_plasticity", "cost")

SUMMARY_COLUMNS = [
    # (column, header, format, meaning)
    ("reward", "reward", ".3f", "mean normalised reward over the run"),
    ("final_reward", "final", ".3f", "mean normalised reward over the last window"),
    ("regret", "regret", ".4f", "mean per-request regret against the myopic oracle"),
    (
        "session_return",
        "session return",
        ".2f",
        "mean reward per completed user session (long-term value; regret cannot see it)",
    ),
    (
        "recovery_time",
        "recovery",
        ",.0f",
        "requests until back to (1 - eps) of the pre-change level",
    ),
    ("censored", "censored", "", "events that never recovered before the next one / the end"),
    (
        "diverged",
        "diverged",
        "",
        "seeds whose model diverged (non-finite scores; their ranking metrics are left out of "
        "the means); shown when any did",
    ),
    (
        "twin_recovery_time",
        "recovery (twin)",
        ",.0f",
        "requests until within eps of the no-drift twin",
    ),
    ("twin_censored", "censored (twin)", "", "as above, against the twin"),
    ("dip", "dip", ".3f", "pre-change level minus the lowest window after it"),
    ("forgetting", "forgetting", ".3f", "mean drop from the best to the final probe score"),
    ("bwt", "BWT", ".3f", "backward transfer on the probes"),
    ("acc", "ACC", ".3f", "final mean probe score over regimes"),
    (
        "ndcg_at_k",
        "NDCG@k",
        ".3f",
        "ranking quality on the last probe (relevance = click probability)",
    ),
    ("cost_learn_seconds", "learn s", ".2f", "seconds spent learning"),
    ("cost_gradient_steps", "grad steps", ",.0f", "gradient steps"),
]


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


def _reward_figure(tables: Tables, path: Path) -> None:
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
                mean, sd = smooth.mean(axis=1), smooth.std(axis=1).fillna(0)
                half = 1.96 * sd / math.sqrt(max(table.shape[1], 1))
                label = agent if world == "world" else None
                ax.plot(mean.index, mean, style, color=colors[agent], lw=1.4, label=label)
                if world == "world":
                    ax.fill_between(
                        mean.index, mean - half, mean + half, color=colors[agent], alpha=0.15
                    )
        events = tables.events[tables.events.scenario == scenario]
        for t in sorted(set(events.t)):
            ax.axvline(t, color="0.4", lw=0.8, ls=":")
        ax.set_title(
            f"{scenario}: normalised reward (dashed: no-drift twin; dotted: drift)", fontsize=10
        )
        ax.set_ylabel("expected / oracle")
        ax.set_ylim(0, 1.02)
    axes[-1, 0].set_xlabel("world clock (requests)")
    axes[0, 0].legend(ncol=min(len(agents), 6), fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _recovery_figure(tables: Tables, path: Path) -> None:
    plt = _plt()
    rec = tables.recovery
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    if rec.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no scheduled drift event", ha="center", transform=ax.transAxes)
    else:
        agents = list(dict.fromkeys(rec.agent))
        colors = _colors(tables)
        groups = list(dict.fromkeys(zip(rec.scenario, rec.event_t, strict=True)))
        width = 0.8 / max(len(agents), 1)
        for j, agent in enumerate(agents):
            times, dips, hatch = [], [], []
            for scenario, t in groups:
                sel = rec[(rec.scenario == scenario) & (rec.event_t == t) & (rec.agent == agent)]
                done = sel[~sel.censored.astype(bool)]
                times.append(done.recovery_time.mean() if len(done) else sel.censor_t.max() - t)
                hatch.append(len(done) < len(sel))
                dips.append(sel.dip.mean())
            x = np.arange(len(groups)) + j * width
            bars = axes[0].bar(x, times, width, color=colors[agent], label=agent)
            for bar, censored in zip(bars, hatch, strict=True):
                if censored:
                    bar.set_hatch("///")
                    bar.set_alpha(0.5)
            axes[1].bar(x, dips, width, color=colors[agent])
        labels = [f"{s}\nt={t:,}" for s, t in groups]
        for ax, title in zip(
            axes, ("recovery time (hatched: censored in some seeds)", "dip"), strict=True
        ):
            ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, labels, fontsize=7)
            ax.set_title(title, fontsize=10)
        axes[0].set_ylabel("requests")
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _probe_figure(tables: Tables, path: Path) -> None:
    plt = _plt()
    probes = tables.probes.dropna(subset=["normalised_reward"])
    scenarios = list(dict.fromkeys(tables.cells.scenario))
    agents = [a for a in dict.fromkeys(tables.cells.agent) if a in set(probes.agent)]
    if not agents:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no probed agent", ha="center")
        fig.savefig(path)
        plt.close(fig)
        return
    fig, axes = plt.subplots(
        len(scenarios), len(agents), figsize=(1.9 * len(agents) + 1, 1.9 * len(scenarios) + 0.5),
        squeeze=False,
    )  # fmt: skip
    for i, scenario in enumerate(scenarios):
        for j, agent in enumerate(agents):
            ax = axes[i, j]
            sel = probes[(probes.scenario == scenario) & (probes.agent == agent)]
            matrix = sel.groupby(["eval_t", "regime"]).normalised_reward.mean().unstack()
            ax.imshow(matrix.to_numpy(), aspect="auto", vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(matrix.shape[1]))
            ax.set_yticks([])
            if i == 0:
                ax.set_title(agent, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{scenario}\nevaluation ->", fontsize=8)
            if i == len(scenarios) - 1:
                ax.set_xlabel("probe regime", fontsize=8)
    fig.suptitle(
        "P[e, j]: greedy slates on regime j's probe over time (yellow = oracle)", fontsize=10
    )
    fig.tight_layout()
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


FRONT_LEGEND = "ringed, dashed: Pareto front"


def _plot_front(ax: Any, points: np.ndarray) -> Any:
    """Ring the Pareto front of ``points`` (n, 2) and join it with a dashed line; a front of
    one point (an agent better than all others on both) is its ring alone. Returns the line."""
    front = points[_pareto(points)]
    front = front[np.argsort(front[:, 0])]
    (line,) = ax.plot(
        front[:, 0], front[:, 1], "k--", lw=1, marker="o", ms=11, mfc="none", mec="k", zorder=3
    )
    return line


def _stability_figure(tables: Tables, path: Path) -> None:
    """Forgetting against recovery time, one panel per scenario, agents as points and the
    Pareto front among them (lower is better on both)."""
    plt = _plt()
    summary = tables.summary
    colors = _colors(tables)
    data = (
        summary.dropna(subset=["forgetting", "recovery_time"])
        if "recovery_time" in summary
        else summary.iloc[:0]
    )
    scenarios = list(dict.fromkeys(data.scenario)) or ["(none)"]
    cols = min(len(scenarios), 2)
    rows = math.ceil(len(scenarios) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, scenario in zip(axes.ravel(), scenarios, strict=False):
        sel = data[data.scenario == scenario]
        if sel.empty:  # e.g. a grid without scheduled drift: no recovery time to plot
            ax.text(0.5, 0.5, "needs probed agents and drift events", ha="center",
                    transform=ax.transAxes)  # fmt: skip
            continue
        for _, row in sel.iterrows():
            ax.scatter(row.forgetting, row.recovery_time, color=colors[row.agent], s=45,
                       label=row.agent)  # fmt: skip
        _plot_front(ax, sel[["forgetting", "recovery_time"]].to_numpy())
        ax.set_title(f"{scenario} ({FRONT_LEGEND})", fontsize=9)
        ax.set_xlabel("forgetting on probes (lower is better)", fontsize=8)
        ax.set_ylabel("recovery time, requests", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(scenarios) :]:
        ax.set_visible(False)
    fig.suptitle("stability vs plasticity", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cost_figure(tables: Tables, path: Path) -> None:
    plt = _plt()
    summary = tables.summary
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = _colors(tables)
    cost = summary.get("cost_learn_seconds", pd.Series(0.0, index=summary.index)) + summary.get(
        "cost_act_seconds", pd.Series(0.0, index=summary.index)
    )
    for (_, row), seconds in zip(summary.iterrows(), cost, strict=True):
        ax.scatter(seconds, row.reward, color=colors[row.agent], s=40)
        ax.annotate(f"{row.agent} ({row.scenario})", (seconds, row.reward), fontsize=7)
    ax.set_xlabel("seconds acting + learning per cell")
    ax.set_ylabel("mean normalised reward")
    ax.set_title("quality vs cost", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Any, spec: str, ci: Any = None) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = format(value, spec)
    if ci is not None and isinstance(ci, float) and math.isfinite(ci):
        text += f" ± {format(ci, spec)}"
    return text


def _summary_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    columns = [
        (key, label, spec)
        for key, label, spec, _ in SUMMARY_COLUMNS
        if key in summary and (key != "diverged" or _any_diverged(summary))
    ]
    header = ["scenario", "agent", *[label for _, label, _ in columns]]
    rows = []
    for _, row in summary.iterrows():
        cells = [row.scenario, row.agent]
        for key, _, spec in columns:
            cells.append(_fmt(row.get(key), spec, row.get(f"{key}_ci")))
        rows.append(cells)
    return header, rows


def _any_diverged(summary: pd.DataFrame) -> bool:
    return any(not str(count).startswith("0/") for count in summary["diverged"])


DIVERGED_HEADER = ["cell", "scenario", "agent", "seed", "diverged at t"]


def _diverged(results: list[CellResult]) -> list[list[str]]:
    """A row per cell whose model diverged (:data:`DIVERGED_HEADER`), in the spec's order."""
    return [
        [r.cell_id, r.scenario, r.agent, str(r.seed), f"{r.diverged_at:,}"]
        for r in results
        if r.diverged_at is not None
    ]


def _diverged_text(count: int, total: int) -> str:
    return (
        f"{count} of {total} cells diverged: the agent's scores were non-finite (NaN or inf) "
        "at the clock given (the first probe evaluation that saw it), so its update rule is "
        "unstable at these settings (most often, a learning rate too high). Their rewards are "
        "those of the slates the diverged model served; their ranking metrics are NaN from "
        "then on and are left out of the means over seeds (the diverged column counts them)."
    )


class _Page(NamedTuple):
    """What the Markdown and the HTML report show, in that order."""

    title: str
    header: list[str]
    rows: list[list[str]]
    figures: dict[str, Path]
    diverged: list[list[str]]
    """Rows of :data:`DIVERGED_HEADER`, one per diverged cell."""
    total: int
    """Cells summarised."""


def _markdown(page: _Page) -> str:
    title, header, rows, figures, diverged, total = page
    lines = [f"# {title}", ""]
    if diverged:
        lines += [f"> **Warning:** {_diverged_text(len(diverged), total)}", ""]
        lines += ["| " + " | ".join(DIVERGED_HEADER) + " |", "|" + "---|" * len(DIVERGED_HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in diverged]
        lines += [""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Means over seeds ± 95% t-interval half-widths; recovery times over the events"]
    lines += ["that recovered (the censored count says how many did not). See docs/metrics.md.", ""]
    lines += [f"![{name}](figures/{path.name})" for name, path in figures.items()]
    return "\n".join(lines) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    table = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    table += "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table>{table}</table>"


def _html(page: _Page) -> str:
    title, header, rows, figures, diverged, total = page
    warning = ""
    if diverged:
        warning = (
            f'<div class="diverged"><p><b>Warning:</b> '
            f"{html.escape(_diverged_text(len(diverged), total))}</p>"
            f"{_html_table(DIVERGED_HEADER, diverged)}</div>"
        )
    legend = "".join(
        f"<li><b>{html.escape(label)}</b>: {html.escape(text)}</li>"
        for _, label, _, text in SUMMARY_COLUMNS
    )
    images = "".join(
        f'<h2>{html.escape(name.replace("_", " "))}</h2><img alt="{name}" '
        f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'
        for name, path in figures.items()
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 7px;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
        ".diverged{border:2px solid #c0392b;background:#fdecea;padding:0 1em 1em;"
        "margin-bottom:1.5em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{warning}"
        f"{_html_table(header, rows)}<p>Means over seeds ± 95% t-interval half-widths.</p>"
        f"<ul>{legend}</ul>{images}</body></html>"
    )


def write_report(directory: str | Path) -> Path:
    """Build every table, figure and the report of the experiment in ``directory`` from its
    finished cells; return the path of ``report.html``."""
    results_dir = ResultsDir(directory)
    spec = results_dir.read_spec()
    finished = results_dir.finished()
    results = [results_dir.read_cell(c.id) for c in spec.cells() if c.id in finished]
    if not results:
        raise FileNotFoundError(f"{directory} has no finished cell yet: run the experiment first")
    tables = build_tables(results, spec)
    root = results_dir.root
    for name in ("curves", "probes", "events", "recovery", "cells", "summary"):
        getattr(tables, name).to_parquet(root / f"{name}.parquet", index=False)
    figures_dir = root / "figures"
    figures_dir.mkdir(exist_ok=True)
    figures = {name: figures_dir / f"{name}.png" for name in FIGURES}
    _reward_figure(tables, figures["reward"])
    _recovery_figure(tables, figures["recovery"])
    _probe_figure(tables, figures["probes"])
    _stability_figure(tables, figures["stability_plasticity"])
    _cost_figure(tables, figures["cost"])
    title = f"driftrec experiment: {spec.name} ({len(results)}/{len(spec.cells())} cells)"
    header, rows = _summary_rows(tables.summary)
    diverged = _diverged(results)
    page = _Page(title, header, rows, figures, diverged, len(results))
    atomic_write(root / "summary.md", _markdown(page).encode())
    report = root / "report.html"
    atomic_write(report, _html(page).encode())
    if diverged:
        # Said again here: a Ray worker's own warning does not reach this process
        cells = ", ".join(f"{r[0]} (t={r[4]})" for r in diverged)
        warnings.warn(
            f"{_diverged_text(len(diverged), len(results))} Cells: {cells}. See {report}",
            RuntimeWarning,
            stacklevel=2,
        )
    return report

"""The report of an experiment: Parquet tables, PNG figures, a self-contained HTML page (figures
embedded) and a Markdown summary, answering "which update strategy adapts fastest, forgets
least, at what cost"."""

from __future__ import annotations

import base64
import contextlib
import html
import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from driftrec.experiments.cell import CellResult
from driftrec.experiments.divergence import divergence_cause, has_lr
from driftrec.experiments.figures import FIGURES, write_figures
from driftrec.experiments.results import ResultsDir, atomic_write
from driftrec.experiments.spec import ExperimentSpec, SpecError
from driftrec.experiments.summary import build_tables

__all__ = ["FIGURES", "write_report"]

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
        "requests until back to (1 - eps) of the pre-change level: each seed's mean over the "
        "events it recovered from, then the mean over seeds",
    ),
    (
        "censored",
        "censored",
        "",
        "events that never recovered before the next one / the end, of the measurable events "
        "of all seeds (an event in the first W requests has no pre-change level: unmeasurable)",
    ),
    (
        "unmeasurable",
        "unmeasurable",
        "",
        "events in the first W requests: no pre-change level, so no recovery or dip against it "
        "(the twin columns still measure them); shown when any",
    ),
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
        "requests until within eps of the no-drift twin (averaged as recovery)",
    ),
    ("twin_censored", "censored (twin)", "", "as above, against the twin"),
    (
        "dip",
        "dip",
        ".3f",
        "pre-change level minus the lowest window after it: each seed's mean over its "
        "measurable events, then the mean over seeds",
    ),
    (
        "adaptation_regret",
        "adapt. regret",
        ",.0f",
        "regret summed from each change to the next one (or the end): each seed's mean over "
        "its events, then the mean over seeds",
    ),
    (
        "twin_excess_regret",
        "excess regret (twin)",
        ",.0f",
        "that regret less the no-drift twin's over the same requests: what the drift cost",
    ),
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
    (
        "cost_parameters_updated_per_step",
        "params/step",
        ",.0f",
        "scalar parameters an update step writes",
    ),
]


def _fmt(value: Any, spec: str, ci: Any = None) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = format(value, spec)
    if ci is not None and isinstance(ci, float) and math.isfinite(ci):
        text += f" ± {format(ci, spec)}"
    return text


SEEDS_COLUMN = ("seeds", "seeds", "d", "seeds the row averages (shown when a row lacks some)")


def _summary_rows(
    summary: pd.DataFrame, seeds: int
) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """The table's header and rows, and the (header, meaning) of each shown column; a
    ``seeds`` column when some row averages fewer than the spec's ``seeds`` (partial
    results)."""
    shown = [
        column
        for column in SUMMARY_COLUMNS
        if column[0] in summary and (column[0] not in SHOWN_WHEN_ANY or _any(summary[column[0]]))
    ]
    if "seeds" in summary and (summary["seeds"] < seeds).any():
        shown.insert(0, SEEDS_COLUMN)
    header = ["scenario", "agent", *[label for _, label, _, _ in shown]]
    rows = []
    for _, row in summary.iterrows():
        cells = [row.scenario, row.agent]
        for key, _, spec, _ in shown:
            cells.append(_fmt(row.get(key), spec, row.get(f"{key}_ci")))
        rows.append(cells)
    return header, rows, [(label, text) for _, label, _, text in shown]


SHOWN_WHEN_ANY = ("unmeasurable", "diverged")
"""Count columns ("k/n") the table shows only when some row counts one."""


def _any(counts: pd.Series) -> bool:
    return any(not str(count).startswith("0/") for count in counts)


DIVERGED_HEADER = ["cell", "scenario", "agent", "seed", "diverged at t"]


def _diverged(results: list[CellResult]) -> list[list[str]]:
    """A row per cell whose model diverged (:data:`DIVERGED_HEADER`), in the spec's order."""
    return [
        [r.cell_id, r.scenario, r.agent, str(r.seed), f"{r.diverged_at:,}"]
        for r in results
        if r.diverged_at is not None
    ]


def diverged_from_start(result: CellResult, spec: ExperimentSpec) -> bool:
    """Whether ``result``'s scores were not finite from the start: at t=0, before any update
    (no warm start, or an agent that did not pretrain: the cell timed no pretraining)."""
    pretrained = spec.warm_start is not None and result.cost.get("pretrain_seconds", 0.0) > 0
    return result.diverged_at == 0 and not pretrained


def _diverged_text(results: list[CellResult], spec: ExperimentSpec) -> str:
    """The warning above the report's list of diverged cells: how many, and for each kind of
    cause among them (from the start; as it learned, with or without a learning rate) what it
    says and what to check."""
    diverged = [r for r in results if r.diverged_at is not None]
    agents = {a.key: a.name for a in spec.agents}
    causes: dict[str, list[str]] = {}
    for r in diverged:
        start = diverged_from_start(r, spec)
        cause = divergence_cause(start, not start and has_lr(agents.get(r.agent, r.agent)))
        causes.setdefault(cause, []).append(r.agent)
    said = " ".join(
        f"{'Agent' if len(set(names)) == 1 else 'Agents'} {', '.join(sorted(set(names)))}: {cause}."
        for cause, names in causes.items()
    )
    return (
        f"{len(diverged)} of {len(results)} cells diverged: the agent's scores were non-finite "
        f"(NaN or inf) at the clock given (the first probe evaluation that saw it). {said} "
        "Their rewards are those of the slates the diverged model served; their ranking "
        "metrics are NaN from then on and are left out of the means over seeds (the diverged "
        "column counts them)."
    )


FOOTER = (
    "Means over seeds ± 95% t-interval half-widths (seeds are the replicates). Recovery and "
    "dip are first averaged over each seed's drift events, recovery times over the events that "
    "recovered (the censored count says how many did not: censored of measurable events, all "
    "seeds pooled). See docs/metrics.md."
)
"""Under the summary table, in the Markdown and the HTML report alike."""


PAIRED_HEADER = [
    "scenario", "agent", "versus", "seeds", "Δ reward", "Δ final", "Δ forgetting", "reward"
]  # fmt: skip
PAIRED_TEXT = (
    "Each agent minus its scenario's leader (the learner with the highest mean reward), seed "
    "by seed: the agents of a scenario serve the same seeded worlds, so the spread between "
    "seeds, which widens each row's own interval above, cancels in their difference. Mean "
    "± 95% t-interval half-width of the differences; the last column says whether the reward "
    "difference is within noise (the interval holds 0). Forgetting: lower is better."
)


def _paired_rows(paired: pd.DataFrame) -> list[list[str]]:
    """The rows of :data:`PAIRED_HEADER` from the paired table."""
    rows = []
    for _, row in paired.iterrows():
        cells = [row.scenario, row.agent, row.versus, str(row.seeds)]
        for metric in ("reward", "final_reward", "forgetting"):
            # A signed difference, its half-width unsigned.
            mean, half = _fmt(row.get(metric), "+.4f"), _fmt(row.get(f"{metric}_ci"), ".4f")
            cells.append(mean if half == "—" or mean == "—" else f"{mean} ± {half}")
        rows.append([*cells, row.verdict])
    return rows


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
    legend: list[tuple[str, str]]
    """(header, meaning) of each column the table shows."""
    warning: str = ""
    """What the diverged cells say (:func:`_diverged_text`), where some diverged."""
    paired: list[list[str]] = []
    """Rows of :data:`PAIRED_HEADER` (:func:`_paired_rows`), where a scenario has two agents."""


def _markdown(page: _Page) -> str:
    title, header, rows, figures, diverged, _, legend, *_ = page
    lines = [f"# {title}", ""]
    if diverged:
        lines += [f"> **Warning:** {page.warning}", ""]
        lines += ["| " + " | ".join(DIVERGED_HEADER) + " |", "|" + "---|" * len(DIVERGED_HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in diverged]
        lines += [""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", FOOTER, ""]
    lines += [f"- **{label}**: {text}" for label, text in legend] + [""]
    if page.paired:
        lines += ["## Paired differences", "", PAIRED_TEXT, ""]
        lines += ["| " + " | ".join(PAIRED_HEADER) + " |", "|" + "---|" * len(PAIRED_HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in page.paired] + [""]
    lines += [f"![{name}](figures/{path.name})" for name, path in figures.items()]
    return "\n".join(lines) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    table = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    table += "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table>{table}</table>"


def _html(page: _Page) -> str:
    title, header, rows, figures, diverged, _, legend, *_ = page
    warning = ""
    if diverged:
        warning = (
            f'<div class="diverged"><p><b>Warning:</b> '
            f"{html.escape(page.warning)}</p>"
            f"{_html_table(DIVERGED_HEADER, diverged)}</div>"
        )
    items = "".join(
        f"<li><b>{html.escape(label)}</b>: {html.escape(text)}</li>" for label, text in legend
    )
    paired = ""
    if page.paired:
        paired = (
            f"<h2>Paired differences</h2><p>{html.escape(PAIRED_TEXT)}</p>"
            f"{_html_table(PAIRED_HEADER, page.paired)}"
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
        f"{_html_table(header, rows)}<p>{html.escape(FOOTER)}</p>"
        f"<ul>{items}</ul>{paired}{images}</body></html>"
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
    for name in ("curves", "probes", "events", "recovery", "cells", "summary", "paired"):
        getattr(tables, name).to_parquet(root / f"{name}.parquet", index=False)
    figures_dir = root / "figures"
    figures_dir.mkdir(exist_ok=True)
    figures = write_figures(tables, figures_dir, spec.evaluation.window)
    title = f"driftrec experiment: {spec.name} ({len(results)}/{len(spec.cells())} cells)"
    header, rows, legend = _summary_rows(tables.summary, len(spec.seeds))
    diverged = _diverged(results)
    warning = ""
    if diverged:
        with contextlib.suppress(SpecError):  # the agents' settings (lr) where importable
            spec.import_modules()
        warning = _diverged_text(results, spec)
    paired = _paired_rows(tables.paired)
    page = _Page(title, header, rows, figures, diverged, len(results), legend, warning, paired)
    atomic_write(root / "summary.md", _markdown(page).encode())
    report = root / "report.html"
    atomic_write(report, _html(page).encode())
    if diverged:
        # Said again here: a Ray worker's own warning does not reach this process
        cells = ", ".join(f"{r[0]} (t={r[4]})" for r in diverged)
        warnings.warn(
            f"{warning} Cells: {cells}. See {report}",
            RuntimeWarning,
            stacklevel=2,
        )
    return report

"""The report's figures show what a reader needs to compare strategies: censored agents stay on
the plot, intervals respect what a metric can be, colours have a scale, fronts are right."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from driftrec.experiments.figures import (
    _cost_figure,
    _probe_figure,
    _probe_limits,
    _recovery_figure,
    _stability_figure,
)
from driftrec.experiments.summary import Tables

EMPTY = pd.DataFrame()


@pytest.fixture()
def drawn(monkeypatch) -> list[Figure]:
    """The figures a drawing function saved (captured, not written)."""
    figures: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: figures.append(self))
    return figures


def _tables(summary: pd.DataFrame, recovery: pd.DataFrame = EMPTY, **kw: pd.DataFrame) -> Tables:
    cells = kw.get("cells", summary[["scenario", "agent"]])
    return Tables(EMPTY, kw.get("probes", EMPTY), EMPTY, recovery, cells, summary)


def test_an_agent_that_never_recovered_is_drawn_at_its_censoring_distance_off_the_front(
    tmp_path, drawn
):
    summary = pd.DataFrame(
        {
            "scenario": ["sudden"] * 3,
            "agent": ["static", "online", "replay"],
            "forgetting": [0.0, 0.03, 0.01],
            "recovery_time": [math.nan, 9_000.0, 12_000.0],  # static: every seed censored
        }
    )
    recovery = pd.DataFrame(
        {
            "scenario": ["sudden"] * 2,
            "agent": ["static"] * 2,
            "event_t": [30_000, 30_000],
            "censor_t": [60_000, 50_000],
            "recovery_time": [math.nan, math.nan],
            "censored": [True, True],
            "outcome": ["censored", "censored"],
        }
    )
    _stability_figure(_tables(summary, recovery), tmp_path / "s.png", window=5_000)
    (ax,) = drawn[0].axes
    censored = [c for c in ax.collections if "never recovered" in c.get_label()]
    assert [c.get_label() for c in censored] == ["static: never recovered (censored)"]
    assert censored[0].get_offsets().tolist() == [[0.0, 25_000.0]]  # mean of 30,000 and 20,000
    (front,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert front.get_xydata().tolist() == [[0.01, 12_000.0], [0.03, 9_000.0]]
    (w,) = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert w.get_ydata()[0] == 5_000 and "W = 5,000" in w.get_label()


def test_recovery_intervals_are_not_drawn_below_the_window(tmp_path, drawn):
    recovery = pd.DataFrame(
        {
            "scenario": ["sudden"] * 3,
            "agent": ["online"] * 3,
            "seed": [0, 1, 2],
            "event_t": [30_000] * 3,
            "censor_t": [60_000] * 3,
            "recovery_time": [5_000.0, 5_000.0, 20_000.0],  # a wide interval around 10,000
            "censored": [False] * 3,
            "outcome": ["recovered"] * 3,
            "dip": [0.1, -0.2, 0.0],
        }
    )
    tables = _tables(recovery[["scenario", "agent"]].iloc[:1], recovery)
    _recovery_figure(tables, tmp_path / "r.png", window=5_000)
    times, dips = drawn[0].axes
    (bar,) = times.patches
    assert bar.get_height() == pytest.approx(10_000.0)
    (caps,) = [c for c in times.collections if c.get_segments()]
    (low, high) = caps.get_segments()[0][:, 1]
    assert low == pytest.approx(5_000.0) and high > 20_000.0  # clipped below, not above
    (dip_caps,) = [c for c in dips.collections if c.get_segments()]
    assert dip_caps.get_segments()[0][0, 1] < -0.2  # a dip may be negative: not clipped


def test_probe_colours_span_the_data_with_a_scale(tmp_path, drawn):
    probes = pd.DataFrame(
        {
            "scenario": ["sudden"] * 4,
            "agent": ["online"] * 4,
            "seed": [0] * 4,
            "eval_t": [5_000, 5_000, 10_000, 10_000],
            "regime": [0, 1, 0, 1],
            "normalised_reward": [0.62, 0.51, 0.66, 0.58],
        }
    )
    cells = pd.DataFrame({"scenario": ["sudden"], "agent": ["online"]})
    _probe_figure(_tables(cells, probes=probes, cells=cells), tmp_path / "p.png")
    panel, colorbar = drawn[0].axes
    (image,) = panel.get_images()
    assert image.get_clim() == pytest.approx((0.5, 0.7))  # not 0..1: differences must show
    assert colorbar.get_ylabel() == "normalised reward"
    assert [t.get_text() for t in panel.get_yticklabels()] == ["5,000", "10,000"]


@pytest.mark.parametrize(
    ("values", "limits"),
    [([0.62, 0.51], (0.5, 0.65)), ([0.6, 0.6], (0.55, 0.65)), ([0.0, 1.0], (0.0, 1.0))],
)
def test_probe_colour_limits(values, limits):
    assert _probe_limits(np.array([*values, np.nan])) == pytest.approx(limits)


def test_cost_figure_has_a_panel_per_scenario_and_rings_the_cheaper_and_better(tmp_path, drawn):
    summary = pd.DataFrame(
        {
            "scenario": ["sudden"] * 3 + ["gradual"] * 2,
            "agent": ["static", "online", "ewc", "static", "online"],
            "reward": [0.5, 0.6, 0.58, 0.5, 0.6],
            "reward_ci": [0.01, 0.02, math.nan, 0.01, 0.01],
            "cost_learn_seconds": [0.0, 1.0, 2.0, 0.0, 1.0],
            "cost_act_seconds": [0.2, 0.2, 0.2, 0.2, 0.2],
        }
    )
    _cost_figure(_tables(summary), tmp_path / "c.png")
    sudden, gradual = drawn[0].axes
    assert sudden.get_title().startswith("sudden") and gradual.get_title().startswith("gradual")
    (front,) = [line for line in sudden.get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_allclose(front.get_xydata(), [[0.2, 0.5], [1.2, 0.6]])  # not ewc


def test_cost_points_carry_the_seconds_spread_over_seeds_never_below_zero(tmp_path, drawn):
    # online's three cells took 1, 2 and 3 s acting + learning: mean 2, s = 1, a 95% half-width
    # of t(0.975, 2) / sqrt(3) = 2.48 s, drawn to 0 on the left (no seconds below zero)
    cells = pd.DataFrame(
        {
            "scenario": ["sudden"] * 3,
            "agent": ["online"] * 3,
            "cost_learn_seconds": [0.5, 1.5, 2.5],
            "cost_act_seconds": [0.5, 0.5, 0.5],
        }
    )
    summary = pd.DataFrame(
        {
            "scenario": ["sudden"],
            "agent": ["online"],
            "reward": [0.6],
            "reward_ci": [0.01],
            "cost_learn_seconds": [1.5],
            "cost_act_seconds": [0.5],
        }
    )
    _cost_figure(_tables(summary, cells=cells), tmp_path / "c.png")
    (ax,) = drawn[0].axes
    half = (0.95 / math.sqrt(2 * 0.975 * 0.025)) / math.sqrt(3)
    segments = [seg for c in ax.collections for seg in c.get_segments()]
    (segment,) = [seg for seg in segments if seg[0, 1] == seg[1, 1]]  # the horizontal bar
    np.testing.assert_allclose(segment[:, 0], [0.0, 2.0 + half])


def test_an_agent_censored_in_some_events_is_hollow_and_off_the_front(tmp_path, drawn):
    summary = pd.DataFrame(
        {
            "scenario": ["recurring"] * 2,
            "agent": ["static", "online"],
            "forgetting": [0.0, 0.02],
            "recovery_time": [5_000.0, 9_000.0],  # static: the one event it recovered from
        }
    )
    recovery = pd.DataFrame(
        {
            "scenario": ["recurring"] * 4,
            "agent": ["static", "static", "online", "online"],
            "event_t": [20_000, 40_000, 20_000, 40_000],
            "censor_t": [40_000, 60_000, 40_000, 60_000],
            "recovery_time": [math.nan, 5_000.0, 9_000.0, 9_000.0],
            "censored": [True, False, False, False],
            "outcome": ["censored", "recovered", "recovered", "recovered"],
        }
    )
    _stability_figure(_tables(summary, recovery), tmp_path / "s.png", window=5_000)
    (ax,) = drawn[0].axes
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["static (censored 1/2)", "online"]
    (front,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert front.get_xydata().tolist() == [[0.02, 9_000.0]]  # static's 5,000 is not a win


def test_a_recovery_bar_censored_in_some_seeds_is_a_lower_bound(tmp_path, drawn):
    recovery = pd.DataFrame(
        {
            "scenario": ["sudden"] * 2,
            "agent": ["online"] * 2,
            "seed": [0, 1],
            "event_t": [30_000] * 2,
            "censor_t": [60_000] * 2,
            "recovery_time": [6_000.0, math.nan],
            "censored": [False, True],
            "outcome": ["recovered", "censored"],
            "dip": [0.1, 0.2],
        }
    )
    tables = _tables(recovery[["scenario", "agent"]].iloc[:1], recovery)
    _recovery_figure(tables, tmp_path / "r.png", window=5_000)
    (bar,) = drawn[0].axes[0].patches
    assert bar.get_height() == pytest.approx((6_000 + 30_000) / 2)  # not 6,000: looked fast
    assert bar.get_hatch() == "///"


def test_the_reward_band_is_a_t_interval_over_seeds(tmp_path, drawn):
    from driftrec.experiments.figures import _reward_figure

    rows = [
        {
            "scenario": "sudden",
            "agent": "online",
            "seed": s,
            "world": "world",
            "t": t,
            "normalised": v,
        }
        for s, values in enumerate(([0.5, 0.5], [0.7, 0.7]))
        for t, v in zip((0, 100), values, strict=True)
    ]
    curves = pd.DataFrame(rows)
    events = pd.DataFrame({"scenario": ["sudden"], "t": [50]})
    cells = pd.DataFrame({"scenario": ["sudden"], "agent": ["online"]})
    _reward_figure(Tables(curves, EMPTY, events, EMPTY, cells, EMPTY), tmp_path / "w.png")
    (ax,) = drawn[0].axes
    (band,) = ax.collections
    lows = band.get_paths()[0].vertices[:, 1]
    half = 12.706 * np.std([0.5, 0.7], ddof=1) / math.sqrt(2)  # t(0.975, 1) = 12.706
    assert lows.min() == pytest.approx(0.6 - half, rel=1e-4)  # 1.96 sd / sqrt(n) was 6.5x narrower
    assert "95% interval over seeds" in ax.get_title()
    assert ax.get_ylim() == pytest.approx((0.5, 0.7))


@pytest.mark.parametrize(("counts", "shown"), [(["0/3", "0/3"], False), (["0/3", "1/3"], True)])
def test_the_table_shows_unmeasurable_events_when_there_are_any(counts, shown):
    from driftrec.experiments.report import _summary_rows

    summary = pd.DataFrame(
        {
            "scenario": ["sudden", "early"],
            "agent": ["online", "online"],
            "censored": ["0/3", "0/2"],
            "unmeasurable": counts,
            "diverged": ["0/3", "0/3"],
        }
    )
    header, rows, legend = _summary_rows(summary, 3)
    assert ("unmeasurable" in header) is shown
    assert "diverged" not in header
    assert [label for label, _ in legend] == header[2:]  # a legend entry per shown column
    if shown:
        assert rows[1][header.index("unmeasurable")] == "1/3"


@pytest.mark.parametrize(("seeds", "shown"), [([3, 3], False), ([3, 2], True)])
def test_a_partial_report_says_how_many_seeds_each_row_averages(seeds, shown):
    """13/16 cells: a row over 2 of 3 seeds looked like the others but for a missing ±."""
    from driftrec.experiments.report import _summary_rows

    summary = pd.DataFrame(
        {"scenario": ["sudden", "sudden"], "agent": ["online", "replay"], "seeds": seeds}
    )
    header, rows, _ = _summary_rows(summary, 3)
    assert ("seeds" in header) is shown
    if shown:
        assert [row[header.index("seeds")] for row in rows] == ["3", "2"]

"""A diverging agent is a result of the grid, not a crash: its cell finishes with NaN ranking
metrics from the clock its scores went non-finite, says so (a warning and the report), and
leaves every other cell as it would have been. Also: the stability-vs-plasticity panels draw a
Pareto front of one point."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_spec import tiny_spec

from driftrec.experiments.cell import RANKING_KEYS, run_cell
from driftrec.experiments.experiment import run_experiment
from driftrec.experiments.figures import FRONT_LEGEND, _stability_figure
from driftrec.experiments.report import _summary_rows
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import ExperimentSpec
from driftrec.experiments.summary import Tables, build_tables

pytestmark = pytest.mark.xdist_group("divergence")  # the module fixture runs once

STABLE = [{"name": "random"}, {"name": "online", "model": "mf"}]
# SGD at the largest learning rate accepted (10) sends the two-tower model's weights to inf
# within a few hundred requests (measured: its scores are finite at t=500 and NaN at t=1,000,
# the next probe evaluation); MF at the same rate, or with Adam, stays finite
DIVERGING = {
    "name": "online",
    "label": "online-sgd10",
    "model": "two_tower",
    "params": {"lr": 10.0, "optimiser": "sgd"},
}
DIVERGED_ID = "sudden__online-sgd10__s0"


def _spec(agents: list[dict]) -> dict:
    return tiny_spec(agents, name="diverging")


@pytest.fixture(scope="module")
def diverged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The report of a grid with one diverging agent, and the runtime warnings it raised."""
    out = tmp_path_factory.mktemp("diverged") / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_experiment(_spec([*STABLE, DIVERGING]), out, runner="local", progress=False)
    return report, [str(w.message) for w in caught if w.category is RuntimeWarning]


def test_the_grid_finishes_and_the_diverged_cell_records_when(diverged):
    report, _ = diverged
    directory = ResultsDir(report.parent)
    assert directory.finished() == {"sudden__random__s0", "sudden__online__s0", DIVERGED_ID}
    result = directory.read_cell(DIVERGED_ID)
    assert result.diverged_at == 1_000
    after = result.eval_t >= 1_000
    for key in RANKING_KEYS:
        assert np.isnan(result.ranking[key][after]).all(), key
        assert np.isfinite(result.ranking[key][~after]).all(), key
    # what the diverged model served is measured as served
    assert np.isfinite(result.curves["normalised"].values).all()
    assert np.isfinite(result.probe).all()


def test_the_cell_warns_once_naming_the_cell_agent_and_clock(diverged):
    _, messages = diverged
    from_cell = [m for m in messages if m.startswith(f"cell {DIVERGED_ID}:")]
    assert len(from_cell) == 1
    assert "agent online-sgd10's scores became non-finite at t=1,000" in from_cell[0]
    assert "lower its learning rate" in from_cell[0]
    # the report says it again (a Ray worker's warning does not reach the driver)
    assert any(m.startswith("1 of 3 cells diverged") and DIVERGED_ID in m for m in messages)


def test_the_other_cells_are_what_they_are_without_the_diverging_agent(diverged):
    report, _ = diverged
    directory = ResultsDir(report.parent)
    for cell in ExperimentSpec.model_validate(_spec(STABLE)).cells():
        alone, beside = run_cell(cell), directory.read_cell(cell.id)
        assert beside.diverged_at is None
        for key, curve in alone.curves.items():
            np.testing.assert_array_equal(beside.curves[key].values, curve.values, err_msg=key)
        np.testing.assert_array_equal(beside.probe, alone.probe)
        for key in RANKING_KEYS:
            np.testing.assert_array_equal(beside.ranking[key], alone.ranking[key], err_msg=key)
    learner = directory.read_cell("sudden__online__s0")
    assert all(np.isfinite(learner.ranking[key]).all() for key in RANKING_KEYS)


def test_the_report_lists_the_diverged_cell(diverged):
    report, _ = diverged
    root = report.parent
    markdown = (root / "summary.md").read_text()
    assert "**Warning:** 1 of 3 cells diverged" in markdown
    assert f"| {DIVERGED_ID} | sudden | online-sgd10 | 0 | 1,000 |" in markdown
    page = report.read_text()
    assert 'class="diverged"' in page and f"<td>{DIVERGED_ID}</td><td>sudden</td>" in page
    cells = pd.read_parquet(root / "cells.parquet").set_index("agent")
    assert cells.loc["online-sgd10", "diverged_at"] == 1_000
    assert cells.loc[["random", "online"], "diverged_at"].isna().all()
    assert math.isnan(cells.loc["online-sgd10", "ndcg_at_k"])  # the last probe's
    summary = pd.read_parquet(root / "summary.parquet").set_index("agent")
    assert summary.diverged.to_dict() == {"random": "0/1", "online": "0/1", "online-sgd10": "1/1"}
    assert math.isnan(summary.loc["online-sgd10", "ndcg_at_k"])
    assert np.isfinite(summary.loc["online-sgd10", "reward"])


def test_a_report_without_diverged_cells_has_no_warning_nor_column(diverged, tmp_path):
    report, _ = diverged
    results = [ResultsDir(report.parent).read_cell("sudden__online__s0")]
    tables = build_tables(results, ExperimentSpec.model_validate(_spec(STABLE)))
    assert tables.summary.diverged.tolist() == ["0/1"]
    header, _, _ = _summary_rows(tables.summary, 1)
    assert "diverged" not in header


def test_a_cell_file_written_before_diverged_at_existed_loads_with_none(diverged, tmp_path):
    report, _ = diverged
    result = ResultsDir(report.parent).read_cell("sudden__online__s0")
    del result.__dict__["diverged_at"]  # what a cell written before the field looked like
    old = pickle.loads(pickle.dumps(result))
    assert "diverged_at" not in old.__dict__ and old.diverged_at is None
    spec = ExperimentSpec.model_validate(_spec(STABLE))
    assert build_tables([old], spec).cells.diverged_at.isna().all()


def test_a_pareto_front_of_one_point_is_drawn(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    summary = pd.DataFrame(
        {
            "scenario": ["sudden"] * 3,
            "agent": ["replay", "online", "static"],
            "forgetting": [0.01, 0.05, 0.09],  # replay beats both others on both axes
            "recovery_time": [400.0, 900.0, 1_500.0],
        }
    )
    empty = pd.DataFrame()
    tables = Tables(empty, empty, empty, empty, summary[["agent"]], summary)
    drawn: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: drawn.append(self))
    _stability_figure(tables, tmp_path / "stability.png")
    (ax,) = drawn[0].axes
    assert FRONT_LEGEND in ax.get_title()
    (front,) = ax.get_lines()
    assert front.get_xydata().tolist() == [[0.01, 400.0]]
    assert front.get_marker() == "o" and front.get_markersize() > 0  # visible without a segment

"""The stability-vs-plasticity panels draw a Pareto front of one point."""

from __future__ import annotations

import pandas as pd

from driftrec.experiments.report import FRONT_LEGEND, _stability_figure
from driftrec.experiments.summary import Tables


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

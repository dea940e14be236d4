"""The demo (the README's main job for now) runs end to end and shows the drift."""

import re

import numpy as np
import pytest

from driftrec.experiments.cli import main
from driftrec.experiments.demo import POLICIES, drift_clock_range, run_demo

SMALL_WORLD = dict(num_users=500, num_items=600, num_candidates=30, slate_size=5)


def test_frozen_oracle_loses_after_the_shift_and_the_oracle_does_not():
    result = run_demo(
        "sudden",
        num_envs=64,
        steps=40,
        window=5,
        at=1_280,
        **SMALL_WORLD,
    )
    before, after = result.t < 1_280, result.t > 1_280 + 320
    np.testing.assert_allclose(result.normalised["oracle"], 1.0)
    assert result.normalised["frozen oracle"][before].min() > 0.9
    assert result.normalised["frozen oracle"][after].max() < 0.75
    assert result.normalised["random"].max() < 0.75
    assert np.isfinite(result.normalised["online MF"]).all()
    assert [(e.t, e.kind) for e in result.events] == [(1_280, "sudden")]


def test_cli_demo_writes_its_report(tmp_path, capsys):
    assert (
        main(["demo", "--envs", "32", "--steps", "20", "--at", "320", "--out", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "event: t=320 sudden" in out
    for policy in POLICIES:  # each policy's own rate, not one summed over the four
        assert re.search(rf"^  {policy} +[\d,]+$", out, re.MULTILINE), policy
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "demo.csv").read_text().startswith("t,oracle,online MF,frozen oracle,random")


def test_cli_list_names_every_scenario(capsys):
    from driftrec.simulators import SCENARIOS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)


def test_a_run_too_short_for_two_windows_is_refused():
    # One window is a single number per policy: no change over time can show.
    with pytest.raises(ValueError, match=r"steps must be an integer >= 20 .* got 19"):
        run_demo("sudden", num_envs=8, steps=19, window=10)


def test_a_drift_shows_in_the_report_exactly_up_to_the_last_clock_of_drift_clock_range():
    # 20 steps of 16 sessions: the last step starts at clock 19 * 16 = 304. A shift at 304 fires
    # before it and lowers the frozen oracle's last window; one at 305 fires after the last step
    # and leaves every reported number as if no shift were scheduled.
    assert drift_clock_range(16, 20, 5) == (1, 304)
    runs = {
        at: run_demo("sudden", num_envs=16, steps=20, window=5, at=at, **SMALL_WORLD)
        for at in (304, 305, 10**9)
    }
    for name, never in runs[10**9].normalised.items():
        np.testing.assert_array_equal(runs[305].normalised[name], never)
        np.testing.assert_array_equal(runs[304].normalised[name][:-1], never[:-1])
    # Measured: 0.894 against 0.994 (one orthogonal step in five); 0.05 leaves room for noise.
    assert (
        runs[304].normalised["frozen oracle"][-1]
        < runs[10**9].normalised["frozen oracle"][-1] - 0.05
    )

"""The demo (the README's main job for now) runs end to end and shows the drift."""

import numpy as np

from driftrec.experiments.cli import main
from driftrec.experiments.demo import run_demo


def test_frozen_oracle_loses_after_the_shift_and_the_oracle_does_not():
    result = run_demo(
        "sudden",
        num_envs=64,
        steps=40,
        window=5,
        at=1_280,
        num_users=500,
        num_items=600,
        num_candidates=30,
        slate_size=5,
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
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "demo.csv").read_text().startswith("t,oracle,online MF,frozen oracle,random")


def test_cli_list_names_every_scenario(capsys):
    from driftrec.simulators import SCENARIOS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)

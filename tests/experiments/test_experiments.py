"""Experiments end to end: specs are validated before anything is written, cells are written as
they finish and resumed, the report is complete, and the spec's grid measures what it says."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from user_plugins import unregister_user_module, user_spec, write_user_module

from driftrec.agents import AGENTS
from driftrec.agents.protocol import AgentBase, task_sizes
from driftrec.experiments import cell as cell_module
from driftrec.experiments.experiment import QUICKSTART, run_experiment
from driftrec.experiments.report import FIGURES
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.runners import run_cells
from driftrec.experiments.spec import SpecError, load_spec


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scenarios": [{"name": "tsunami"}]}, r"scenarios\.0 \(tsunami\): unknown scenario"),
        ({"agents": [{"name": "online", "params": {"lrr": 0.1}}]}, r"agents\.0 \(online\).*'lrr'"),
        ({"agents": [{"name": "onlin"}]}, r"agents\.0 \(onlin\): unknown agent 'onlin'"),
        ({"horizon": -5}, r"horizon: Input should be greater than or equal to 1 \(got -5\)"),
        ({"horizon": "4000"}, r"horizon: Input should be a valid integer \(got '4000'\)"),
        ({"seeds": [0, 0]}, r"seeds: .*distinct"),
        ({"evaluation": {"window": 2.5}}, r"evaluation\.window: Input should be a valid integer"),
        ({"scenarios": [{"name": "sudden", "params": {"at": "soon"}}]}, r"at must be an integer"),
        ({"world": {"num_users": 0}}, r"num_users must be an integer >= 1"),
        ({"warm_start": {"requests": 0}}, r"warm_start\.requests"),
        ({"typo": 1}, r"typo: Extra inputs are not permitted"),
        # each of these was accepted once and failed later, after the directory was written
        ({"horizon": 100}, r"horizon \(100\) must be at least num_envs \(200\)"),
        ({"seeds": [2**70]}, r"seeds must be distinct integers in \[0, 2\*\*63 - 1\]"),
        ({"resources": {"num_cpus": math.inf}}, r"resources\.num_cpus: Input should be a finite"),
        (
            {
                "scenarios": [
                    {"name": "sudden", "params": {"at": 2_000}, "label": "s"},
                    {"name": "stationary", "label": "s__a"},
                ],
                "agents": [{"name": "online", "label": "a__b"}, {"name": "random", "label": "b"}],
            },
            r"would share one result file \(s__a__b__s<seed>\.pkl\)",
        ),
    ],
)
def test_a_bad_spec_names_the_field_and_writes_nothing(tiny, tmp_path, change, field):
    spec = {**tiny, **change}
    out = tmp_path / "out"
    with pytest.raises(SpecError, match=field):
        run_experiment(spec, out, runner="local", progress=False)
    assert not out.exists()


def test_a_gpu_request_on_a_machine_without_gpus_fails_at_once_and_writes_nothing(tiny, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the request is valid here")
    out = tmp_path / "out"
    with pytest.raises(SpecError, match=r"resources\.num_gpus: .*no CUDA GPU"):
        run_experiment({**tiny, "resources": {"num_gpus": 0.5}}, out, runner="local")
    assert not out.exists()


def test_numpy_values_from_a_python_grid_are_taken_as_plain_values(tiny):
    """A grid built with NumPy in Python: the spec holds plain values, so its fingerprint and
    spec.yaml (written before any cell runs) can be made; the same spec as from YAML."""
    grid = {**tiny, "world": {**tiny["world"], "num_users": np.int64(500)}}
    sudden = {"name": "sudden", "params": {"at": np.int32(2_000)}}
    grid["scenarios"] = [sudden, tiny["scenarios"][1]]
    spec = load_spec(grid, deep=False)
    assert type(spec.world["num_users"]) is int
    assert spec.fingerprint() == load_spec(tiny, deep=False).fingerprint()


def test_a_spec_with_very_many_regimes_is_accepted_with_a_warning(tiny):
    many = {**tiny, "scenarios": [{"name": "recurring", "params": {"period": 10}}]}
    with (
        pytest.warns(UserWarning, match=r"scenarios\.0 \(recurring\): 400 regimes within the"),
        pytest.warns(UserWarning, match=r"changes come less than evaluation\.window \(600\)"),
        pytest.warns(UserWarning, match=r"change at 3,800 leaves less than evaluation\.window"),
    ):
        load_spec(many)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_spec(tiny)  # 3 regimes: nothing to say


def test_a_spec_file_is_read_whatever_its_name_ends_with(tiny, tmp_path):
    import yaml

    for name in ("spec.YAML", "spec.txt", "spec"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tiny))
        assert load_spec(str(path), deep=False).name == "tiny"
    with pytest.raises(SpecError, match=r"spec file .*missing\.yml' does not exist"):
        load_spec(str(tmp_path / "missing.yml"))


def test_result_files_are_as_readable_as_any_file_the_user_writes(tiny, tmp_path):
    import os

    out = ResultsDir(tmp_path / "out")
    out.prepare(load_spec(tiny, deep=False))
    mask = os.umask(0)
    os.umask(mask)
    assert (out.root / "spec.yaml").stat().st_mode & 0o777 == 0o666 & ~mask


def test_cells_are_written_as_they_finish_and_a_rerun_resumes(tiny, tmp_path, monkeypatch):
    spec = load_spec(tiny)
    uninterrupted = ResultsDir(tmp_path / "whole")
    uninterrupted.prepare(spec)
    run_cells(spec, uninterrupted, progress=False)

    out = ResultsDir(tmp_path / "interrupted")
    out.prepare(spec)
    real, calls = cell_module.run_cell, []

    def dies_after_three(cell):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is stopped mid-way
        calls.append(cell.id)
        return real(cell)

    monkeypatch.setattr("driftrec.experiments.runners.run_cell", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_cells(spec, out, progress=False)
    assert out.finished() == set(calls) and len(calls) == 3
    assert not list(out.cells_dir.glob(".*tmp"))  # no half-written file

    monkeypatch.setattr("driftrec.experiments.runners.run_cell", real)
    ran = run_cells(spec, out, progress=False)
    assert set(ran) == {c.id for c in spec.cells()} - set(calls)
    from driftrec.experiments.report import write_report

    write_report(out.root)
    write_report(uninterrupted.root)
    a = pd.read_parquet(out.root / "cells.parquet").drop(columns=["seconds"])
    b = pd.read_parquet(uninterrupted.root / "cells.parquet").drop(columns=["seconds"])
    keep = [c for c in a.columns if not c.startswith("cost_") or c.endswith(("steps", "trained"))]
    pd.testing.assert_frame_equal(a[keep], b[keep])


def test_a_changed_spec_in_an_existing_directory_is_refused(tiny, tmp_path):
    out = tmp_path / "out"
    spec = load_spec(tiny)
    ResultsDir(out).prepare(spec)
    ResultsDir(out).write_cell(spec.cells()[0].id, {})  # a finished cell (none: a fresh start)
    changed = {**tiny, "horizon": 3_000}
    with (
        pytest.raises(SpecError, match="holds results of a different spec"),
        pytest.warns(UserWarning, match=r"change at 2,800 leaves less than evaluation\.window"),
    ):
        run_experiment(changed, out, runner="local", progress=False)


def test_the_report_has_every_table_figure_and_a_row_per_scenario_and_agent(tiny, tmp_path):
    report = run_experiment(tiny, tmp_path / "out", runner="local", progress=False)
    root = report.parent
    page = report.read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES)  # self-contained
    for name in ("curves", "probes", "events", "recovery", "cells", "summary", "paired"):
        assert (root / f"{name}.parquet").is_file()
    summary = pd.read_parquet(root / "summary.parquet")
    assert len(summary) == 4 and set(summary.agent) == {"online", "random"}
    online = summary[summary.agent == "online"]
    for column in ("reward", "final_reward", "acc", "forgetting", "ndcg_at_k"):
        assert online[column].notna().all(), column
    # recovery: a number, or explicitly censored (the count says how many events did not)
    for _, row in summary.iterrows():
        recovered, events = map(int, row.censored.split("/"))
        assert events > 0
        assert math.isfinite(row.recovery_time) or recovered == events
    assert "| sudden | online |" in (root / "summary.md").read_text()
    # DESIGN's adaptation regret, and against the twin, are in the table as in the Parquet
    header = (root / "summary.md").read_text().splitlines()[2]
    assert "| adapt. regret | excess regret (twin) |" in header
    online = summary.set_index(["scenario", "agent"]).loc[("sudden", "online")]
    assert f"| {online.adaptation_regret:,.0f} ± " in (root / "summary.md").read_text()
    # random against the leader, online, seed by seed on the same worlds
    assert "| sudden | random | online | 2 | -0." in (root / "summary.md").read_text()
    paired = pd.read_parquet(root / "paired.parquet").set_index(["scenario", "agent"])
    cells = pd.read_parquet(root / "cells.parquet")
    for scenario in ("sudden", "recurring"):
        by_seed = cells[cells.scenario == scenario].pivot(index="seed", columns="agent")
        diff = by_seed.reward.random - by_seed.reward.online
        assert paired.loc[(scenario, "random")].reward == pytest.approx(diff.mean())


def test_probes_cover_every_regime_and_the_twin_runs_for_learners_on_scheduled_drift(tiny):
    spec = load_spec(tiny)
    cells = {c.id: c for c in spec.cells()}
    result = cell_module.run_cell(cells["recurring__online__s0"])
    # regimes of 1,400 requests over 4,000: ends 1400, 2800, 4000
    np.testing.assert_array_equal(result.regime_ends, [1_400, 2_800, 4_000])
    assert result.probe.shape == (len(result.eval_t), 3) and np.isfinite(result.probe).all()
    assert {1_400, 2_800, 4_000} <= set(result.eval_t.tolist())  # the end of each regime
    assert result.twin_curves is not None
    assert result.twin_curves["normalised"].end == result.horizon
    baseline = cell_module.run_cell(cells["recurring__random__s0"])
    assert baseline.twin_curves is None and np.isnan(baseline.probe).all()


class TopicCounter(AgentBase):
    """A user's own learning agent: slates by how often each topic was clicked, with greedy
    slates (no scores) and ``learns = True``."""

    learns = True

    def __init__(self, sizes, seed: int) -> None:
        self.sizes = sizes
        self.clicks = np.zeros(sizes.num_topics)
        self.rng = np.random.default_rng(seed)

    def greedy(self, obs):
        ranked = np.argsort(-self.clicks[np.asarray(obs["candidate_topics"])], axis=1)
        return ranked[:, : self.sizes.slate_size]

    def act(self, obs):
        noise = self.rng.random(np.shape(obs["candidate_topics"]))
        ranked = np.argsort(-(self.clicks[np.asarray(obs["candidate_topics"])] + noise), axis=1)
        return ranked[:, : self.sizes.slate_size]

    def observe(self, transition):
        slot = np.asarray(transition.info["click_slot"])
        rows = np.flatnonzero(slot >= 0)
        positions = transition.action[rows, slot[rows]]
        topics = np.asarray(transition.obs["candidate_topics"])[rows, positions]
        np.add.at(self.clicks, topics, 1.0)

    def state_dict(self):
        return {"clicks": self.clicks.copy()}

    def load_state_dict(self, state):
        self.clicks = state["clicks"].copy()


def test_a_spec_imports_the_users_own_scenarios_and_agents(tiny, tmp_path, monkeypatch):
    """``imports`` makes a user's registrations known where the spec is checked and where its
    cells run: a scenario, a choice model and an agent the package does not have."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = write_user_module(tmp_path, "local")
    try:
        report = run_experiment(
            user_spec(tiny, module, "local"), tmp_path / "out", runner="local", progress=False
        )
        cells = {"local_shift__local_random__s0", "local_shift__online__s0"}
        assert ResultsDir(report.parent).finished() == cells
    finally:
        unregister_user_module(module, "local")
    with pytest.raises(SpecError, match=r"imports\.0: cannot import 'no_such_plugins'"):
        load_spec({**tiny, "imports": ["no_such_plugins"]})
    with pytest.raises(SpecError, match=r"imports must be dotted Python module names"):
        load_spec({**tiny, "imports": ["my-plugins"]})


def test_a_users_agent_is_probed_by_its_greedy_slates_and_twinned_because_it_learns(tiny):
    """greedy without scores: probe rewards (forgetting, ACC) but no ranking metrics; a class
    that says it learns gets the no-drift twin under twin: auto, as the built-in learners do."""

    @AGENTS.register("topic_counter")
    def topic_counter(env_or_spaces, settings, /):
        """Most-clicked topics first."""
        return TopicCounter(task_sizes(env_or_spaces), settings.seed)

    try:
        spec = load_spec({**tiny, "agents": [{"name": "topic_counter"}], "warm_start": None})
        result = cell_module.run_cell(spec.cells()[0])  # sudden at 2,000 of 4,000
    finally:
        AGENTS.unregister("topic_counter")
    assert np.isfinite(result.probe).all()
    assert all(np.isnan(values).all() for values in result.ranking.values())
    assert result.twin_curves is not None


def test_every_agent_of_a_cell_starts_from_the_same_pretraining(tiny):
    spec = load_spec({**tiny, "agents": [{"name": "online"}, {"name": "fine_tune"}]})
    cells = {c.id: c for c in spec.cells()}
    a = cell_module.run_cell(cells["sudden__online__s0"])
    b = cell_module.run_cell(cells["sudden__fine_tune__s0"])
    # same warm start, before either learned from the stream: the same first evaluation
    np.testing.assert_allclose(a.probe[0], b.probe[0])


def test_the_shipped_quickstart_is_the_grid_the_readme_promises():
    spec = load_spec(QUICKSTART)
    assert {s.name for s in spec.scenarios} >= {"sudden", "recurring", "cohort_shift"}
    assert len(spec.scenarios) >= 4 and len(spec.seeds) >= 3
    assert {a.name for a in spec.agents} >= {"static", "fine_tune", "online", "replay", "ewc"}
    assert spec.warm_start is not None  # a fair start
    assert re.search(r"^name: quickstart$", QUICKSTART.read_text(), re.MULTILINE)


def test_every_kind_of_baseline_runs_in_a_spec(tiny, tmp_path):
    """The oracles read the environment (the frozen one freezes the world as the cell starts):
    they run through the spec's checks and the runner like any agent."""
    spec = {**tiny, "seeds": [0], "scenarios": tiny["scenarios"][:1]}
    spec["agents"] = [{"name": n} for n in ("oracle", "frozen_oracle", "popularity", "random")]
    report = run_experiment(spec, tmp_path / "out", runner="local", progress=False)
    cells = pd.read_parquet(report.parent / "cells.parquet").set_index("agent")
    assert cells.loc["oracle", "reward"] == pytest.approx(1.0)
    assert cells.loc["frozen_oracle", "reward"] < 1.0 < cells.loc["oracle", "reward"] + 1e-9
    assert cells.loc["random", "reward"] < cells.loc["frozen_oracle", "reward"]


def test_the_report_puts_session_return_next_to_regret_in_the_long_term_setting(tiny, tmp_path):
    """In the monotony scenario the diverse oracle has a positive per-request regret and still
    the higher session return (docs/scenarios.md); the report shows both columns."""
    spec = {
        **tiny,
        "horizon": 19_968,  # 312 batches of 64
        "num_envs": 64,
        "seeds": [0],
        "world": {"num_users": 500, "num_items": 300, "num_candidates": 10, "slate_size": 3},
        "scenarios": [{"name": "monotony"}],
        "agents": [{"name": "oracle"}, {"name": "diverse_oracle"}],
        "warm_start": None,
    }
    report = run_experiment(spec, tmp_path / "out", runner="local", progress=False)
    cells = pd.read_parquet(report.parent / "cells.parquet").set_index("agent")
    assert cells.loc["oracle", "regret"] == pytest.approx(0.0, abs=1e-12)
    assert cells.loc["diverse_oracle", "regret"] > 0.0
    assert (
        cells.loc["diverse_oracle", "session_return"] > 1.15 * cells.loc["oracle", "session_return"]
    )
    assert cells.loc["diverse_oracle", "session_length"] > cells.loc["oracle", "session_length"]
    text = report.read_text()
    assert "session return" in text and "regret" in text


def test_the_shipped_long_term_grid_names_the_references_and_the_rl_agents():
    spec = load_spec(QUICKSTART.parent / "long_term.yaml")
    assert [s.name for s in spec.scenarios] == ["monotony"]
    names = {a.name for a in spec.agents}
    assert names >= {"oracle", "diverse_oracle", "slateq", "topk_reinforce", "random"}
    assert len(spec.seeds) >= 3


def test_cells_of_an_older_driftrec_are_set_aside_and_run_again(tiny, tmp_path):
    """Upgrading driftrec and re-running into the same directory (what `make run` does) must not
    fail on cells that measure less than the report now needs: they run again, and the old
    files are kept beside."""
    import pickle
    import warnings

    spec = {
        **tiny,
        "seeds": [0],
        "scenarios": tiny["scenarios"][:1],
        "agents": [{"name": "random"}],
    }
    out = tmp_path / "out"
    run_experiment(spec, out, runner="local", progress=False)
    directory = ResultsDir(out)
    (cell_id,) = directory.finished()
    old = directory.read_cell(cell_id)
    del old.__dict__["sessions"]  # what a cell written before session return looked like
    directory.cell_path(cell_id).write_bytes(pickle.dumps(old))
    (directory.cells_dir / "FORMAT").unlink()

    with pytest.warns(UserWarning, match=r"1 cell\(s\) .* older driftrec .* run again"):
        report = run_experiment(spec, out, runner="local", progress=False)
    assert (out / "cells.format-1" / f"{cell_id}.pkl").is_file()
    assert directory.read_cell(cell_id).sessions["sessions"] > 0
    cells = pd.read_parquet(report.parent / "cells.parquet")
    assert np.isfinite(cells["session_return"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current directory resumes without a word
        run_experiment(spec, out, runner="local", progress=False)

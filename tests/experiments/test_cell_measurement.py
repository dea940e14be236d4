"""What a cell measures, and from which clock: probe evaluations at distinct clocks (a step
evaluates at most once, so the report builds for any accepted cadence); recovery from the clock
at which requests first see a change (the batch grid), never from a change no request saw; a
cost that is the stream's (pretraining apart) and a peak memory that is the cell's own."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftrec.agents import AGENTS
from driftrec.agents.protocol import AgentBase, task_sizes
from driftrec.envs import RecDriftVectorEnv
from driftrec.experiments import memory
from driftrec.experiments.cell import effective_clock, run_cell
from driftrec.experiments.experiment import run_experiment
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import SpecError, load_spec

pytestmark = pytest.mark.xdist_group("cell_measurement")  # the module fixture runs once

WORLD = {"num_users": 200, "num_items": 100, "num_candidates": 10, "slate_size": 3}
BATCH = 100


def _spec(**changes) -> dict:
    """2,000 requests in batches of 100; probes every 150 requests (off the batch grid)."""
    spec = {
        "name": "measured",
        "horizon": 2_000,
        "num_envs": BATCH,
        "seeds": [0],
        "world": WORLD,
        "scenarios": [{"name": "sudden", "params": {"at": 1_100}}],
        "agents": [{"name": "online"}],
        "warm_start": {"requests": 500, "policy": "softmax"},
        "evaluation": {"window": 200, "every": 150, "probe_size": 20},
    }
    return spec | changes


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """One experiment, run through the public API on the local runner, probes on the batch
    grid: a change on the grid (1,100), one inside a batch (1,050: first seen at 1,100) and one
    in the last batch (1,950: seen by no request of the 2,000)."""
    scenarios = [
        {"name": "sudden", "params": {"at": 1_100}},
        {"name": "sudden", "label": "mid", "params": {"at": 1_050}},
        {"name": "sudden", "label": "late", "params": {"at": 1_950}},
    ]
    evaluation = {"window": 200, "every": 200, "probe_size": 20}
    spec = _spec(scenarios=scenarios, evaluation=evaluation)
    out = tmp_path_factory.mktemp("measured") / "out"
    # the spec check says so of the change no request sees
    with pytest.warns(UserWarning, match=r"scenarios\.2 \(late\): its drift is scheduled, but"):
        return run_experiment(spec, out, runner="local", progress=False).parent


# ---------------------------------------------------------------------- probe evaluations


def test_a_cadence_off_the_batch_grid_evaluates_once_a_step_and_the_report_builds(tmp_path):
    """every: 150 with batches of 100, and a regime ending at 1,100: evaluations at 0, 150 ->
    200, 300, 450 -> 500, ..., each at most once (the report used to die on eval_t [..., 1100,
    1100, ...], 'eval_t must be strictly increasing')."""
    spec = _spec(agents=[{"name": "online"}, {"name": "random"}])
    root = run_experiment(spec, tmp_path / "out", runner="local", progress=False).parent
    result = ResultsDir(root).read_cell("sudden__online__s0")
    cadence = [0, 200, 300, 500, 600, 800, 900, 1_100, 1_200, 1_400, 1_500, 1_700, 1_800, 2_000]
    assert result.eval_t.tolist() == cadence
    assert result.probe.shape == (len(cadence), 2) and np.isfinite(result.probe).all()
    probes = pd.read_parquet(root / "probes.parquet")
    for _, group in probes.groupby(["scenario", "agent", "seed"]):
        assert group.eval_t.drop_duplicates().tolist() == cadence
    cells = pd.read_parquet(root / "cells.parquet").set_index("agent")
    assert np.isfinite(cells.loc["online", ["acc", "bwt", "forgetting"]].astype(float)).all()


def test_a_cadence_finer_than_a_batch_is_refused_before_anything_runs(tmp_path):
    """Two evaluations cannot land in one batch: every < num_envs is refused by the spec's
    check, saying what to change, and nothing is written."""
    out = tmp_path / "out"
    message = r"evaluation\.every \(50\) must be at least num_envs \(100\).*set evaluation\.every"
    with pytest.raises(SpecError, match=message):
        run_experiment(
            _spec(evaluation={"every": 50, "window": 200, "probe_size": 20}), out, runner="local"
        )
    assert not out.exists()
    load_spec(_spec(evaluation={"every": BATCH, "probe_size": 20}), deep=False)  # every batch


# ---------------------------------------------------------------------- the effective clock


@pytest.mark.parametrize(("at", "seen_from"), [(1_000, 1_000), (1_001, 1_100), (1_050, 1_100)])
def test_a_change_is_first_served_at_its_clock_rounded_up_to_the_batch_grid(at, seen_from):
    """The rule the cell measures from, checked against the world: the batch whose step fires
    the change was served before it, the next batch (from ``seen_from``) after it."""
    env = RecDriftVectorEnv(BATCH, "sudden", at=at, **WORLD)
    env.reset(seed=0)
    env.action_space.seed(0)
    fired_after = None
    while fired_after is None:
        start = env.clock
        _, _, _, _, info = env.step(env.action_space.sample())
        if info["drift_events"][0]:
            fired_after = start
            assert info["regime"][0] == 0  # this batch was served before the change
    assert env.clock == seen_from == effective_clock(at, BATCH)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["regime"][0] == 1 and info["t"][0] == seen_from


def test_recovery_is_measured_from_the_clock_requests_first_see_the_change(experiment):
    directory = ResultsDir(experiment)
    on_grid = directory.read_cell("sudden__online__s0")
    inside = directory.read_cell("mid__online__s0")
    assert on_grid.measured_events.tolist() == inside.measured_events.tolist() == [1_100]
    assert inside.regime_ends.tolist() == [1_100, 2_000]  # regime 0 was served up to 1,099
    # R[0, :] is the agent after all of regime 0 (at 1,100), not after 1,000
    assert inside.eval_t.tolist() == [*range(0, 1_001, 200), 1_100, *range(1_200, 2_001, 200)]
    assert [e["t"] for e in inside.events] == [1_050]  # the event as the process scheduled it
    recovery = pd.read_parquet(experiment / "recovery.parquet").set_index("scenario")
    assert recovery.loc["mid", "event_t"] == 1_100 and recovery.loc["mid", "kind"] == "sudden"


def test_a_change_no_request_sees_is_neither_a_regime_nor_an_event(experiment):
    """A change at 1,950 fires after the last batch (1,900-1,999) was served: no recovery row
    (it was reported censored, with an adaptation regret), no second regime, no twin."""
    late = ResultsDir(experiment).read_cell("late__online__s0")
    assert [e["t"] for e in late.events] == [1_950]  # it fired, at the end
    assert late.measured_events.tolist() == []
    assert late.regime_ends.tolist() == [2_000] and late.probe.shape[1] == 1
    assert late.twin_curves is None  # nothing to compare with a twin
    recovery = pd.read_parquet(experiment / "recovery.parquet")
    assert "late" not in set(recovery.scenario)


# ---------------------------------------------------------------------- cost


def _cell(**changes):
    return load_spec(_spec(**changes)).cells()[0]


def test_the_learning_cost_is_the_streams_and_the_warm_start_is_reported_apart():
    """learn_seconds never counted pretraining; gradient steps and examples did. Now all three
    are the stream's: an agent that never learns online shows none, whatever its pretraining."""
    static = run_cell(_cell(agents=[{"name": "static", "params": {"train_on": 0}}])).cost
    assert static["gradient_steps"] == static["examples_trained"] == 0
    assert static["pretrain_gradient_steps"] > 0
    assert static["pretrain_examples_trained"] == 3 * 500  # Strategy.pretrain_epochs passes
    assert static["pretrain_seconds"] > 0

    warm = run_cell(_cell()).cost
    cold = run_cell(_cell(warm_start=None)).cost
    # online: a step per full micro-batch (256 requests) of the stream, warm start or not
    assert warm["gradient_steps"] == cold["gradient_steps"] > 0
    assert warm["examples_trained"] == cold["examples_trained"] == 2_000 // 256 * 256
    assert cold["pretrain_gradient_steps"] == cold["pretrain_seconds"] == 0
    # what the stream's steps wrote, per step: nothing to divide for the never-updated static
    assert warm["optimiser_steps"] == warm["gradient_steps"]
    per_step = warm["parameters_updated"] / warm["optimiser_steps"]
    assert warm["parameters_updated_per_step"] == per_step < warm["parameters_in_scope"]
    assert static["parameters_updated"] == 0 and math.isnan(static["parameters_updated_per_step"])


def test_the_buffer_cost_is_the_peak_the_agent_held():
    replay = {"name": "replay", "params": {"capacity": 300}}
    cost = run_cell(_cell(agents=[replay])).cost
    assert cost["peak_stored_examples"] == 300  # the reservoir filled up and stayed full
    assert "stored_examples" not in cost


def _hwm_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s*(\d+)", status).group(1)) / 1024


def _clear_refs_works() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


needs_clear_refs = pytest.mark.skipif(
    not _clear_refs_works(), reason="needs Linux >= 4.0 with a writable /proc/self/clear_refs"
)


@needs_clear_refs
def test_peak_memory_is_the_cells_own_not_the_process_high_water_mark():
    """ru_maxrss only rises: a cell after a 256 MiB spike (an earlier cell's, in a worker)
    reported the spike as its own peak."""
    spike = np.ones(2**25)  # 256 MiB, touched
    spike_peak = _hwm_mib()
    del spike
    cost = run_cell(_cell(agents=[{"name": "random"}], warm_start=None)).cost
    assert 0 < cost["peak_rss_mb"] < spike_peak - 128


class Hoarder(AgentBase):
    """Random slates; holds 192 MiB while it serves the first batch."""

    def __init__(self, sizes, seed: int) -> None:
        self.sizes = sizes
        self.rng = np.random.default_rng(seed)
        self.served = 0

    def act(self, obs):
        if self.served == 0:
            hoard = np.ones(3 * 2**23)  # 192 MiB, touched
            del hoard
        self.served += 1
        scores = self.rng.random(np.shape(obs["candidate_topics"]))
        return np.argsort(scores, axis=1)[:, : self.sizes.slate_size]

    def observe(self, transition):
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@needs_clear_refs
def test_peak_memory_counts_what_the_cell_itself_held():
    @AGENTS.register("hoarder")
    def hoarder(env_or_spaces, settings, /):
        """Holds memory while it serves."""
        return Hoarder(task_sizes(env_or_spaces), settings.seed)

    try:
        before = Path("/proc/self/status").read_text()
        resident = int(re.search(r"VmRSS:\s*(\d+)", before).group(1)) / 1024
        cost = run_cell(_cell(agents=[{"name": "hoarder"}], warm_start=None)).cost
    finally:
        AGENTS.unregister("hoarder")
    assert cost["peak_rss_mb"] > resident + 128


def test_peak_memory_is_nan_where_the_peak_cannot_be_reset(monkeypatch, tmp_path):
    """Not Linux (or no right to reset it): no number rather than the process's maximum."""
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs", raising=False)
    cost = run_cell(_cell(agents=[{"name": "random"}], warm_start=None)).cost
    assert math.isnan(cost["peak_rss_mb"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_drift_triggered_cell_alarms_for_the_shift_and_not_on_its_twin(seed):
    """A lab cell (600 users, 300 items, a warm start of 3,000 logged requests, a sudden shift
    at 30k of 50k): the drift-triggered agent alarms in the drifting world and never on its
    no-drift twin (before its detector started with its warm-up model, both alarmed at 21k, at
    the warm-up, and the shift fell inside that alarm's hold). Measured at seeds 0-2: one alarm
    each, 464 requests after the shift."""
    spec = load_spec(
        {
            "name": "dt", "horizon": 50_000, "num_envs": 200, "seeds": [seed],
            "world": {"num_users": 600, "num_items": 300, "num_candidates": 20, "slate_size": 5},
            "scenarios": [{"name": "sudden", "params": {"at": 30_000}}],
            "agents": [{"name": "drift_triggered"}],
            "warm_start": {"requests": 3_000, "policy": "softmax"},
            "evaluation": {"window": 2_000, "every": 10_000, "probe_size": 150},
        }
    )  # fmt: skip
    result = run_cell(next(iter(spec.cells())))
    assert result.cost["drift_alarms"] >= 1 and result.cost["twin_drift_alarms"] == 0

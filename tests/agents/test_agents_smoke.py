"""Criterion 7: every preset (and baseline) runs a short stream against every scenario preset,
with the scenario's events moved early enough to fire inside the stream, and every learning
preset actually updates its model, with every registered model. The tests iterate the
registries (``STRATEGIES``, ``BASELINES``, ``MODELS``), so a newly registered preset or model is
covered without editing them (a preset needs an entry in ``PRESET_PARAMS``: its small-stream
parameters)."""

from __future__ import annotations

import numpy as np
import pytest
from agent_helpers import make_env, rollout

from driftrec.agents import AGENTS, BASELINES, MODELS, RL_AGENTS, STRATEGIES, make_agent
from driftrec.simulators import SCENARIOS

STEPS, NUM_ENVS = 30, 64  # 1,920 requests

SCENARIO_PARAMS = {
    "stationary": {},
    "sudden": {"at": 600},
    "gradual": {"start": 400, "duration": 800},
    "incremental": {"interval": 300, "regime_every": 1_000},
    "recurring": {"period": 700},
    "cohort_shift": {"shift_at": 400, "shift_duration": 400, "new_cohort_at": 1_000},
    "catalog_churn": {"every": 500, "quality_shift_at": 900},
    "feedback_loop": {"report_every": 500, "regime_every": 1_000},
    "noisy": {"start": 300, "end": 1_500},
    "monotony": {},
}

PRESET_PARAMS = {
    "static": {"train_on": 256, "epochs": 1},
    "full_retrain": {"every": 512, "epochs": 1},
    "fine_tune": {"every": 256, "pretrain": 256, "pretrain_epochs": 1},
    "incremental": {"every": 256},
    "online": {},
    "replay": {"capacity": 512},
    "ewc": {"every": 256, "fisher_samples": 256},
    "distill": {"every": 256},
    "drift_triggered": {"warmup": 256, "hold": 256},
    "hybrid": {"pretrain": 256, "every": 512},
}
LEARNER = {"micro_batch": 64, "batch_size": 128}


def test_the_smoke_tables_cover_every_preset_and_scenario():
    assert set(SCENARIO_PARAMS) == set(SCENARIOS)
    assert set(PRESET_PARAMS) == set(STRATEGIES)
    assert set(AGENTS) == set(STRATEGIES) | set(BASELINES) | set(RL_AGENTS)


def check_actions(run, k: int = 5) -> None:
    for action in run.actions:
        assert action.shape == (NUM_ENVS, k) and action.dtype == np.int64
        assert action.min() >= 0 and action.max() < 30
        assert (np.sort(action, axis=1)[:, 1:] != np.sort(action, axis=1)[:, :-1]).all()


@pytest.mark.parametrize("scenario", sorted(SCENARIO_PARAMS))
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_preset_runs_on_every_scenario(name, scenario):
    env = make_env(NUM_ENVS, scenario, **SCENARIO_PARAMS[scenario])
    agent = make_agent(name, env, model="mf", seed=0, **LEARNER, **PRESET_PARAMS[name])
    run, _ = rollout(agent, env, STEPS, seed=0, record=True)
    check_actions(run)
    assert np.isfinite(run.rho).all()
    assert agent.cost()["gradient_steps"] > 0, "the strategy never trained"


@pytest.mark.parametrize("scenario", sorted(SCENARIO_PARAMS))
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_runs_on_every_scenario(name, scenario):
    env = make_env(NUM_ENVS, scenario, **SCENARIO_PARAMS[scenario])
    env.reset(seed=0)  # the frozen oracle takes its snapshot of the world when it is built
    run, _ = rollout(make_agent(name, env, seed=0), env, STEPS, seed=0, record=True)
    check_actions(run)
    if name == "oracle":
        np.testing.assert_allclose(run.rho, 1.0)


@pytest.mark.parametrize("model", [m for m in MODELS if m != "mf"])
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_preset_runs_with_the_other_models(name, model):
    env = make_env(NUM_ENVS, "sudden", **SCENARIO_PARAMS["sudden"])
    agent = make_agent(name, env, model=model, seed=0, **LEARNER, **PRESET_PARAMS[name])
    run, _ = rollout(agent, env, 12, seed=0, record=True)
    check_actions(run)
    assert agent.cost()["gradient_steps"] > 0


RL_PARAMS = {"slateq": {"batch_size": 64}, "topk_reinforce": {"batch_size": 64, "max_session": 8}}
"""Small-stream parameters of the RL agents (``RL_AGENTS``)."""


def test_the_rl_table_covers_every_rl_agent():
    assert set(RL_PARAMS) == set(RL_AGENTS)


@pytest.mark.parametrize("scenario", sorted(SCENARIO_PARAMS))
@pytest.mark.parametrize("name", RL_AGENTS)
def test_every_rl_agent_runs_on_every_scenario(name, scenario):
    env = make_env(NUM_ENVS, scenario, **SCENARIO_PARAMS[scenario])
    agent = make_agent(name, env, model="mf", seed=0, **RL_PARAMS[name])
    run, _ = rollout(agent, env, STEPS, seed=0, record=True)
    check_actions(run)
    assert np.isfinite(run.rho).all()
    assert agent.cost()["gradient_steps"] > 0, "the agent never trained"


@pytest.mark.parametrize("model", [m for m in MODELS if m != "mf"])
@pytest.mark.parametrize("name", RL_AGENTS)
def test_every_rl_agent_runs_with_the_other_models(name, model):
    env = make_env(NUM_ENVS, "sudden", **SCENARIO_PARAMS["sudden"])
    agent = make_agent(name, env, model=model, seed=0, **RL_PARAMS[name])
    run, _ = rollout(agent, env, 12, seed=0, record=True)
    check_actions(run)
    assert agent.cost()["gradient_steps"] > 0

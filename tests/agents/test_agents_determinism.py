"""Criteria 5 and 6: the same seed gives the same actions and bit-identical parameters, and a
``state_dict`` taken mid-stream (pending micro-batch included) continues identically in a new
agent, after a ``torch.save`` / ``torch.load`` round trip with ``torch.load``'s default
``weights_only=True``: every state holds tensors and plain containers only. Covers the strategy
presets, the baselines and the RL agents (``RL_AGENTS``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from agent_helpers import assert_plain, assert_same_state, make_env, rollout, through_torch_save

from driftrec.agents import BASELINES, MODELS, RL_AGENTS, STRATEGIES, Transition, make_agent

SMALL_LEARNER = {"micro_batch": 128, "batch_size": 128}


def parameters(agent) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in agent.model.state_dict().items()}


def assert_same_parameters(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("online", {"exploration": "greedy"}),
        ("replay", {"capacity": 500, "exploration": {"name": "softmax", "temperature": 0.2}}),
        ("ewc", {"every": 256, "exploration": "thompson"}),
    ],
)
def test_same_seed_same_actions_and_parameters(model, name, params):
    runs = []
    for _ in range(2):
        env = make_env(64)
        agent = make_agent(name, env, model=model, seed=7, **SMALL_LEARNER, **params)
        run, _ = rollout(agent, env, 24, seed=3, record=True)
        runs.append((run, parameters(agent)))
    (run_a, params_a), (run_b, params_b) = runs
    for x, y in zip(run_a.actions, run_b.actions, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(run_a.rho, run_b.rho)
    assert_same_parameters(params_a, params_b)
    assert agent.cost()["gradient_steps"] >= 10


def test_a_different_seed_gives_a_different_agent():
    env = make_env(64)
    acts = []
    for seed in (0, 1):
        agent = make_agent("online", env, seed=seed)
        run, _ = rollout(agent, env, 3, seed=0, record=True)
        acts.append(np.stack(run.actions))
    assert (acts[0] != acts[1]).any()


ROUND_TRIP = [
    ("online", {"exploration": {"name": "epsilon_greedy", "epsilon": 0.2}}),
    ("replay", {"capacity": 700, "exploration": "thompson"}),
    ("ewc", {"every": 256, "fisher_samples": 256}),
    ("distill", {"every": 256}),
    ("drift_triggered", {"warmup": 256, "hold": 512, "signal": "loss"}),
    (
        "incremental",
        {
            "every": 256,
            "merge": "ensemble",
            "ensemble_size": 3,
            "exploration": {"name": "thompson", "posterior": "ensemble"},
        },
    ),
    ("incremental", {"every": 256, "merge": "moving_average"}),
    ("full_retrain", {"every": 512, "epochs": 1}),
    ("fine_tune", {"every": 256, "pretrain": 300, "pretrain_epochs": 1}),
    ("hybrid", {"every": 512, "pretrain": 300}),
    ("static", {"train_on": 512}),
    ("distill", {"every": 256, "model": "two_tower", "exploration": "thompson"}),
    ("ewc", {"every": 256, "fisher_samples": 256, "model": "sasrec"}),
    ("drift_triggered", {"warmup": 256, "hold": 256, "signal": "reward", "model": "two_tower"}),
]


def test_the_round_trip_table_covers_every_preset_and_model():
    assert {name for name, _ in ROUND_TRIP} == set(STRATEGIES)
    assert {p.get("model", "mf") for _, p in ROUND_TRIP} == set(MODELS)


@pytest.mark.parametrize(("name", "params"), ROUND_TRIP, ids=lambda p: str(p)[:40])
def test_state_dict_round_trip_continues_identically(name, params):
    assert_round_trip(name, params)


@pytest.mark.parametrize("model", list(MODELS))
def test_every_registered_model_round_trips(model):
    """A model registered in ``MODELS`` is covered here without editing this file: a preset
    whose state holds a frozen copy of the model (distillation's teacher) and Thompson
    sampling's per-user counts."""
    assert_round_trip("distill", {"every": 256, "model": model, "exploration": "thompson"})


def assert_round_trip(name: str, params: dict) -> None:
    params = {"model": "mf", **params}
    env = make_env(64)
    agent = make_agent(name, env, seed=0, **SMALL_LEARNER, **params)
    _, obs = rollout(agent, env, 21, seed=0)  # 21 * 64 requests: half a micro-batch pending
    assert agent.trainer.pending_rows == 64
    assert_plain(agent.state_dict())
    state = through_torch_save(agent.state_dict())
    env_copy, obs_copy = copy.deepcopy(env), copy.deepcopy(obs)

    original, _ = rollout(agent, env, 20, obs=obs, record=True, pretrain=False)
    restored_agent = make_agent(name, env, seed=12345, **SMALL_LEARNER, **params)
    restored_agent.load_state_dict(state)
    restored, _ = rollout(restored_agent, env_copy, 20, obs=obs_copy, record=True, pretrain=False)

    for x, y in zip(original.actions, restored.actions, strict=True):
        np.testing.assert_array_equal(x, y)
    assert_same_parameters(parameters(agent), parameters(restored_agent))
    assert agent.cost() == restored_agent.cost()


def test_load_state_dict_rejects_another_configuration():
    env = make_env(16)
    state = make_agent("online", env).state_dict()
    with pytest.raises(
        ValueError, match=r"another agent \(strategy: .*same strategy, learner, model"
    ):
        make_agent("replay", env).load_state_dict(state)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_state_round_trip(name):
    env = make_env(32)
    obs, _ = env.reset(seed=0)
    twin = copy.deepcopy(env)  # follows the same steps; the restored agent acts on it
    agent = make_agent(name, env, seed=0)
    other = make_agent(name, twin, seed=99)  # built at the same clock (the frozen oracle's)
    run, obs = rollout(agent, env, 5, obs=obs, record=True)
    for action in run.actions:
        obs_twin = twin.step(action)[0]
    assert_plain(agent.state_dict())
    state = through_torch_save(agent.state_dict())
    original, _ = rollout(agent, env, 5, obs=obs, record=True)
    other.load_state_dict(state)
    restored, _ = rollout(other, twin, 5, obs=obs_twin, record=True)
    for x, y in zip(original.actions, restored.actions, strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------- RL agents

RL_ROUND_TRIP = [
    ("slateq", {"batch_size": 128, "target_every": 3}),
    ("slateq", {"batch_size": 128, "slate_method": "top_k", "model": "two_tower"}),
    ("topk_reinforce", {"batch_size": 48, "max_session": 12}),
    ("topk_reinforce", {"batch_size": 48, "topk_correction": False, "model": "sasrec"}),
]


def test_the_rl_round_trip_table_covers_every_rl_agent():
    assert {name for name, _ in RL_ROUND_TRIP} == set(RL_AGENTS)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("name", RL_AGENTS)
def test_rl_agents_same_seed_same_actions_and_state(name, model):
    runs = []
    for _ in range(2):
        env = make_env(64)
        agent = make_agent(name, env, model=model, seed=7, batch_size=64)
        run, _ = rollout(agent, env, 16, seed=3, record=True)
        runs.append((run, agent))
    (run_a, agent_a), (run_b, agent_b) = runs
    for x, y in zip(run_a.actions, run_b.actions, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(run_a.rho, run_b.rho)
    assert_same_state(agent_a.state_dict(), agent_b.state_dict())
    assert agent_a.cost()["gradient_steps"] >= 5


@pytest.mark.parametrize("name", RL_AGENTS)
def test_rl_agents_a_different_seed_gives_different_actions(name):
    env = make_env(64)
    acts = []
    for seed in (0, 1):
        run, _ = rollout(make_agent(name, env, seed=seed), env, 3, seed=0, record=True)
        acts.append(np.stack(run.actions))
    assert (acts[0] != acts[1]).any()


@pytest.mark.parametrize(("name", "params"), RL_ROUND_TRIP, ids=lambda p: str(p)[:40])
def test_rl_state_dict_round_trip_continues_identically(name, params):
    """A state taken mid-stream (rows pending a gradient step, sessions running, the target
    network behind the value model) continues bit-identically after ``torch.save`` /
    ``torch.load`` in an agent built with another seed."""
    env = make_env(64)
    agent = make_agent(name, env, seed=0, **params)
    _, obs = rollout(agent, env, 21, seed=0)
    assert agent.cost()["stored_examples"] > 0  # something is pending
    assert_plain(agent.state_dict())
    state = through_torch_save(agent.state_dict())
    env_copy, obs_copy = copy.deepcopy(env), copy.deepcopy(obs)

    original, _ = rollout(agent, env, 20, obs=obs, record=True)
    restored_agent = make_agent(name, env, seed=12345, **params)
    restored_agent.load_state_dict(state)
    restored, _ = rollout(restored_agent, env_copy, 20, obs=obs_copy, record=True)

    for x, y in zip(original.actions, restored.actions, strict=True):
        np.testing.assert_array_equal(x, y)
    assert_same_state(agent.state_dict(), restored_agent.state_dict())
    assert agent.cost() == restored_agent.cost()


@pytest.mark.parametrize("name", RL_AGENTS)
def test_rl_state_taken_between_act_and_observe_continues_identically(name):
    """REINFORCE keeps the behaviour probabilities of ``act`` until ``observe``: a state taken
    in between carries them."""
    env = make_env(32)
    agent = make_agent(name, env, seed=0, batch_size=32)
    _, obs = rollout(agent, env, 6, seed=0)
    action = agent.act(obs)
    state = through_torch_save(agent.state_dict())
    restored = make_agent(name, env, seed=3, batch_size=32)
    restored.load_state_dict(state)
    assert_same_state(state, restored.state_dict())
    next_obs, reward, term, trunc, info = env.step(action)
    transition = Transition(obs, action, reward, next_obs, term, trunc, info)
    agent.observe(transition)
    restored.observe(transition)
    assert_same_state(agent.state_dict(), restored.state_dict())
    np.testing.assert_array_equal(agent.act(next_obs), restored.act(next_obs))


def test_rl_load_state_dict_rejects_another_configuration():
    env = make_env(16)
    with pytest.raises(ValueError, match="same parameters, model and environment sizes"):
        make_agent("slateq", env, gamma=0.9).load_state_dict(make_agent("slateq", env).state_dict())
    with pytest.raises(ValueError, match="same parameters, model and environment sizes"):
        make_agent("topk_reinforce", env).load_state_dict(make_agent("slateq", env).state_dict())

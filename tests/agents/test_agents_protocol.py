"""The agent protocol: batch-first acting, the one-sample convenience (and its parity with the
batched path against a plain ``gymnasium.Env``), what a transition lets an agent see, the
oracle's privileged channel, and building agents from configuration."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_helpers import SMALL, make_env, rollout

import driftrec  # noqa: F401  (registers the driftrec/ ids)
from driftrec.agents import (
    AGENTS,
    BASELINES,
    PRIVILEGED_INFO_KEYS,
    RL_AGENTS,
    STRATEGIES,
    Agent,
    LearningAgent,
    Strategy,
    TaskSizes,
    Transition,
    UpdateRule,
    Window,
    agent_parameters,
    make_agent,
    make_strategy,
    task_sizes,
)
from driftrec.agents.triggers import EveryN
from driftrec.envs import RecDriftEnv


def test_task_sizes_from_vector_env_single_env_and_spaces():
    venv = make_env(4)
    expected = TaskSizes(500, 600, 30, 5, 8, 8, 20, 10)
    assert task_sizes(venv) == expected
    single = RecDriftEnv(**SMALL)
    assert task_sizes(single) == expected
    assert task_sizes((single.observation_space, single.action_space)) == expected
    with pytest.raises(ValueError, match="single_action_space"):
        task_sizes((venv.single_observation_space, venv.action_space))
    with pytest.raises(TypeError, match="expected a driftrec environment"):
        task_sizes(42)


def test_transition_drops_the_ground_truth_and_needs_the_click_slot():
    env = make_env(8)
    obs, _ = env.reset(seed=0)
    action = np.tile(np.arange(5), (8, 1))
    next_obs, reward, term, trunc, info = env.step(action)
    assert set(PRIVILEGED_INFO_KEYS) <= set(info)
    transition = Transition(obs, action, reward, next_obs, term, trunc, info)
    assert not set(PRIVILEGED_INFO_KEYS) & set(transition.info)
    assert "click_slot" in transition.info and transition.batch_size == 8
    with pytest.raises(KeyError, match="click_slot"):
        Transition(obs, action, reward, next_obs, term, trunc, {"t": info["t"]})


@pytest.mark.parametrize("name", [*BASELINES, "online", *RL_AGENTS])
def test_every_kind_of_agent_meets_the_protocol(name):
    env = make_env(16)
    env.reset(seed=0)  # the frozen oracle takes its snapshot of the world when it is built
    agent = make_agent(name, env, seed=0)
    assert isinstance(agent, Agent)
    run, obs = rollout(agent, env, 3, seed=0, record=True)
    assert run.actions[0].shape == (16, 5) and run.actions[0].dtype == np.int64
    single = {k: v[0] for k, v in obs.items()}
    if name in (
        "oracle",
        "frozen_oracle",
        "diverse_oracle",
    ):  # they answer the env's 16 pending requests
        with pytest.raises(ValueError, match="16 pending request"):
            agent.act_one(single)
    else:
        assert agent.act_one(single).shape == (5,)
    agent.load_state_dict(agent.state_dict())


@pytest.mark.parametrize("model", ["mf", "two_tower", "sasrec"])
def test_single_env_with_act_one_matches_the_batched_path(model):
    """The same agent configuration on ``gymnasium.make("driftrec/RecDrift-v0")`` through
    act_one / observe_one, and on a one-session vector environment through act / observe,
    takes the same actions and ends with bit-identical parameters."""
    kw = {"model": model, "seed": 0, "micro_batch": 16, "batch_size": 16}
    single_env = gym.make("driftrec/RecDrift-v0", **SMALL)
    single = make_agent("online", single_env, **kw)
    obs, _ = single_env.reset(seed=5)
    singles = []
    for _ in range(60):
        action = single.act_one(obs)
        next_obs, reward, term, trunc, info = single_env.step(action)
        single.observe_one(obs, action, reward, next_obs, term, trunc, info)
        singles.append(action)
        obs = next_obs if not term else single_env.reset()[0]

    venv = make_env(1)
    batched = make_agent("online", venv, **kw)
    run, _ = rollout(batched, venv, 60, seed=5, record=True)
    np.testing.assert_array_equal(np.stack(singles), np.concatenate(run.actions))
    for (name, a), b in zip(
        single.model.state_dict().items(), batched.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert single.cost()["gradient_steps"] == 60 // 16


def test_act_one_rejects_a_batch_and_act_rejects_a_single_request():
    env = make_env(4)
    obs, _ = env.reset(seed=0)
    agent = make_agent("online", env)
    with pytest.raises(ValueError, match="use act\\(\\) for a batch"):
        agent.act_one(obs)
    with pytest.raises(ValueError, match="use act_one\\(\\) for a single request"):
        agent.act({k: v[0] for k, v in obs.items()})


def test_oracle_reads_the_environment_and_only_the_environment():
    env = make_env(8)
    oracle = make_agent("oracle", env)
    run, obs = rollout(oracle, env, 5, seed=0)
    np.testing.assert_allclose(run.rho, 1.0)
    with pytest.raises(TypeError, match="pass the environment, not its spaces"):
        make_agent("oracle", (env.single_observation_space, env.single_action_space))
    with pytest.raises(ValueError, match="pending request"):
        oracle.act({k: v[:3] for k, v in obs.items()})
    single_env = gym.make("driftrec/RecDrift-v0", **SMALL)  # wrapped: reads env.unwrapped
    obs, _ = single_env.reset(seed=0)
    action = make_agent("oracle", single_env).act_one(obs)
    _, _, _, _, info = single_env.step(action)
    assert info["expected_reward"] == pytest.approx(info["oracle_expected_reward"])


def test_learning_agents_never_call_the_oracle_channel(monkeypatch):
    env = make_env(16)

    def forbidden():
        raise AssertionError("a learning agent read the oracle channel")

    monkeypatch.setattr(env, "oracle_action", forbidden)
    monkeypatch.setattr(env, "ground_truth_snapshot", forbidden)
    for name in STRATEGIES:
        agent = make_agent(name, env, micro_batch=16, seed=0)
        rollout(agent, env, 2, seed=0, pretrain=False)


def test_registry_lists_every_agent():
    assert tuple(AGENTS) == (
        "random",
        "popularity",
        "oracle",
        "static",
        "full_retrain",
        "fine_tune",
        "incremental",
        "online",
        "replay",
        "ewc",
        "distill",
        "drift_triggered",
        "hybrid",
        "frozen_oracle",
        "diverse_oracle",
        "slateq",
        "topk_reinforce",
    )
    assert BASELINES == ("random", "popularity", "oracle", "frozen_oracle", "diverse_oracle")
    assert RL_AGENTS == ("slateq", "topk_reinforce")
    assert "lr" in agent_parameters("online") and "capacity" in agent_parameters("replay")
    assert agent_parameters("popularity") == ["window"]


def test_every_preset_docstring_cites_its_source():
    for name in STRATEGIES:
        doc = STRATEGIES[name].__doc__ or ""
        assert re.search(r"(19|20)\d\d", doc), f"{name} cites no source"
        assert make_strategy(name).name == name


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda env: make_agent("onlin", env),
            ValueError,
            r"unknown agent 'onlin'; valid agents are \['random', 'popularity', 'oracle', 'static'",
        ),
        (
            lambda env: make_agent("replay", env, capacty=5),
            TypeError,
            r"unknown parameter\(s\) \['capacty'\] for agent 'replay'; its parameters are "
            r"\['capacity', 'ratio'\] and the learner's \['loss', 'optimiser', 'lr'",
        ),
        (
            lambda env: make_agent("random", env, window=5),
            TypeError,
            r"unknown parameter\(s\) \['window'\] for agent 'random'; its parameters are none",
        ),
        (
            lambda env: make_agent("online", env, model="bert"),
            ValueError,
            r"unknown model 'bert'; valid models are \['mf', 'sasrec', 'two_tower'\]",
        ),
        (
            lambda env: make_agent("online", env, model={"name": "mf", "dims": 8}),
            TypeError,
            r"unknown parameter\(s\) \['dims'\] for model 'mf'; its parameters are "
            r"\['adapter_dim', 'dim', 'init_std', 'initial_rows'\]",
        ),
        (
            lambda env: make_agent("online", env, exploration="ucb"),
            ValueError,
            r"unknown exploration 'ucb'; valid explorations are \['epsilon_greedy', 'greedy', "
            r"'softmax', 'thompson'\]",
        ),
        (
            lambda env: make_agent("online", env, exploration={"name": "softmax", "tau": 1}),
            TypeError,
            r"unknown parameter\(s\) \['tau'\] for exploration 'softmax'; its "
            r"parameters are \['temperature'\]",
        ),
        (
            lambda env: make_agent("online", env, loss="hinge"),
            ValueError,
            r"unknown loss 'hinge'; valid losses are \['bce', 'softmax', 'mse'\]",
        ),
        (
            lambda env: make_agent("online", env, optimiser="rmsprop"),
            ValueError,
            r"unknown optimiser 'rmsprop'; valid optimisers are \['adam', 'sgd'\]",
        ),
        (
            lambda env: make_agent("incremental", env, scope=("adapters",)),
            ValueError,
            r"scope 'adapters' selects no parameter of MatrixFactorisation \(build the model "
            r"with adapter_dim > 0",
        ),
        (
            lambda env: make_agent("incremental", env, scope=("weights",)),
            ValueError,
            r"unknown scope \['weights'\]; valid scope values are \('all', 'embeddings'",
        ),
        (
            lambda env: make_agent("incremental", env, merge="vote"),
            ValueError,
            r"unknown merge 'vote'; valid merges are \['ensemble', 'moving_average', 'replace'\]",
        ),
        (
            lambda env: make_agent("drift_triggered", env, signal="clicks"),
            ValueError,
            r"signal must be one of \['loss', 'reward'\], got 'clicks'",
        ),
        (
            lambda env: make_agent(
                "online", env, exploration={"name": "thompson", "posterior": "ensemble"}
            ),
            ValueError,
            r"needs a strategy that keeps an ensemble",
        ),
        (
            lambda env: make_agent("online", env, model=["mf"]),
            TypeError,
            r"model must be a name or a mapping with a 'name' key",
        ),
    ],
)
def test_configuration_errors_list_the_valid_choices(call, error, message):
    with pytest.raises(error, match=message):
        call(make_env(4))


def test_a_composed_strategy_builds_an_agent():
    env = make_env(32)
    strategy = Strategy("every_512_on_window", (UpdateRule(EveryN(512), Window(1_024)),))
    agent = make_agent(strategy, env, lr=0.02, micro_batch=64)
    assert isinstance(agent, LearningAgent) and agent.learner.lr == 0.02
    rollout(agent, env, 40, seed=0)
    assert agent.cost()["updates"] == [40 * 32 // 512]
    with pytest.raises(TypeError, match="for a composed strategy"):
        make_agent(strategy, env, capacity=3)


def test_engagement_reward_with_mse_loss_learns():
    env = make_env(256, reward="engagement")
    agent = make_agent("online", env, loss="mse", seed=0)
    run, _ = rollout(agent, env, 150, seed=0)
    random_run, _ = rollout(make_agent("random", env), env, 20, seed=0)
    assert run.rho[-20:].mean() > random_run.rho.mean() + 0.1


@pytest.mark.parametrize("model", ["mf", "two_tower", "sasrec"])
@pytest.mark.parametrize(
    "learner",
    [
        {"optimiser": "sgd", "lr": 0.5},
        {"optimiser": "adam", "l1": 1e-5, "l2": 1e-4, "loss": "bce"},
    ],
)
def test_optimisers_and_penalties_train_every_model(model, learner):
    env = make_env(128)
    agent = make_agent("online", env, model=model, seed=0, micro_batch=128, **learner)
    before = {k: v.detach().clone() for k, v in agent.model.named_parameters()}
    run, _ = rollout(agent, env, 30, seed=0)
    assert agent.cost()["gradient_steps"] == 30
    changed = [k for k, v in agent.model.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) >= len(before) - 2, changed  # all but maybe unused rows' tables
    assert np.isfinite(run.rho).all()

"""Agents read ``user_id`` in either layout: (B,) per batch, or (B, 1) (the environment's since
Stable-Baselines3 cannot take a 0-d observation; one request's ``user_id`` is then (1,)), in
``act``, ``act_one``, ``observe``, ``observe_one``, ``scores``, ``greedy``, pretraining and
``task_sizes``. And under next-step autoreset, rows that were not served (``info["served"]``
False: the action was ignored, the reward 0 is not a real no-click) are not learned from."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from agent_helpers import (
    SMALL,
    FlatUserIds,
    assert_same_state,
    flat_user_ids,
    make_env,
    rollout,
)
from gymnasium import spaces

import driftrec  # noqa: F401  (registers the driftrec/ ids)
from driftrec.agents import (
    STRATEGIES,
    SlateExamples,
    TaskSizes,
    Transition,
    make_agent,
    task_sizes,
)
from driftrec.envs import RecDriftEnv, RecDriftVectorEnv


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("online", {"model": "mf", "exploration": "thompson"}),
        ("online", {"model": "two_tower", "exploration": "softmax"}),
        ("distill", {"model": "sasrec", "every": 256}),
        ("fine_tune", {"every": 256, "pretrain": 128, "pretrain_epochs": 1}),
        ("popularity", {"window": 300}),
        ("random", {}),
        ("slateq", {"batch_size": 64}),
        ("topk_reinforce", {"batch_size": 32, "max_session": 6}),
    ],
    ids=lambda p: str(p)[:30],
)
def test_flat_and_column_user_ids_give_identical_agents(name, params):
    """The same agent on the same stream, once with user_id (B,) and once with (B, 1):
    identical actions, and bit-identical state after learning (pretraining included)."""
    learner = {"micro_batch": 64, "batch_size": 64} if name in STRATEGIES else {}
    runs = []
    for env in (make_env(32), FlatUserIds(make_env(32))):
        agent = make_agent(name, env, seed=0, **learner, **params)
        run, obs = rollout(agent, env, 12, seed=0, record=True)
        runs.append((run, agent, obs))
    (run_col, col, obs), (run_flat, flat, _) = runs
    assert np.ndim(obs["user_id"]) == 2  # the environment's own layout is (B, 1)
    for a, b in zip(run_col.actions, run_flat.actions, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_same_state(col.state_dict(), flat.state_dict())
    if hasattr(col, "scores"):
        np.testing.assert_array_equal(col.scores(obs), col.scores(flat_user_ids(obs)))
        np.testing.assert_array_equal(col.greedy(obs), col.greedy(flat_user_ids(obs)))
    # One batch through both layouts from the same state: the same slates.
    twin = copy.deepcopy(col)
    np.testing.assert_array_equal(col.act(obs), twin.act(flat_user_ids(obs)))


def test_act_one_and_observe_one_take_a_user_id_of_shape_empty_or_one():
    single_env = RecDriftEnv(**SMALL)
    obs, _ = single_env.reset(seed=1)
    assert np.shape(obs["user_id"]) == (1,)
    agents = [make_agent("online", single_env, micro_batch=4, seed=0) for _ in range(2)]
    for _ in range(9):
        scalar = {**obs, "user_id": np.asarray(obs["user_id"]).reshape(())}
        action = agents[0].act_one(obs)
        np.testing.assert_array_equal(action, agents[1].act_one(scalar))
        next_obs, reward, term, trunc, info = single_env.step(action)
        agents[0].observe_one(obs, action, reward, next_obs, term, trunc, info)
        scalar_next = {**next_obs, "user_id": np.asarray(next_obs["user_id"]).reshape(())}
        agents[1].observe_one(scalar, action, reward, scalar_next, term, trunc, info)
        obs = next_obs if not term else single_env.reset()[0]
    assert agents[0].cost()["gradient_steps"] == 2
    assert_same_state(agents[0].state_dict(), agents[1].state_dict())
    with pytest.raises(ValueError, match=r"act_one takes one request .*use act\(\) for a batch"):
        agents[0].act_one({**obs, "user_id": np.array([[3]])})


def test_task_sizes_read_a_user_id_space_of_shape_empty_or_one():
    env = make_env(4)
    obs_space, action_space = env.single_observation_space, env.single_action_space
    assert obs_space["user_id"].shape == (1,)
    scalar = spaces.Dict({**obs_space.spaces, "user_id": spaces.Box(0, 499, (), np.int64)})
    expected = TaskSizes(500, 600, 30, 5, 8, 8, 20, 10)
    assert task_sizes((obs_space, action_space)) == expected
    assert task_sizes((scalar, action_space)) == expected
    wide = spaces.Dict({**obs_space.spaces, "user_id": spaces.Box(0, 499, (2,), np.int64)})
    with pytest.raises(ValueError, match=r"user_id space of one request has shape \(\) or \(1,\)"):
        task_sizes((wide, action_space))


def test_logged_examples_read_either_layout():
    env = make_env(4)
    env.reset(seed=0)
    logged = env.log_interactions(50)
    assert logged.observation["user_id"].shape == (50, 1)
    col = SlateExamples.from_logged(logged)
    flat = SlateExamples.from_logged(FlatUserIds(env).log_interactions(50))
    assert col.user_id.shape == (50,)
    sizes = task_sizes(env)
    np.testing.assert_array_equal(col.user_id, np.ravel(logged.observation["user_id"]))
    for name, column in SlateExamples.from_logged(logged, sizes).columns().items():
        np.testing.assert_array_equal(column, col.columns()[name])
    assert flat.user_id.shape == (50,)


# ---------------------------------------------------------------------------- served rows


def _step(num_envs: int = 16, seed: int = 0):
    env = make_env(num_envs)
    obs, _ = env.reset(seed=seed)
    agent = make_agent("random", env, seed=seed)
    action = agent.act(obs)
    next_obs, reward, term, trunc, info = env.step(action)
    return env, Transition(obs, action, reward, next_obs, term, trunc, info)


def _rows(t: Transition, rows: np.ndarray) -> Transition:
    """The transition restricted to ``rows``."""
    return Transition(
        {k: v[rows] for k, v in t.obs.items()},
        t.action[rows],
        t.reward[rows],
        {k: v[rows] for k, v in t.next_obs.items()},
        t.terminated[rows],
        t.truncated[rows],
        {k: np.asarray(v)[rows] for k, v in t.info.items()},
    )


def _unserved(t: Transition, served: np.ndarray) -> Transition:
    """``t`` with the rows not ``served`` made as next-step autoreset reports them: reward 0,
    no click, ``served`` False."""
    info = dict(t.info)
    info["served"] = served
    info["click_slot"] = np.where(served, t.info["click_slot"], -1)
    reward = np.where(served, t.reward, 0.0).astype(np.float32)
    return Transition(t.obs, t.action, reward, t.next_obs, t.terminated, t.truncated, info)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("online", {"exploration": "thompson", "micro_batch": 8}),
        ("replay", {"capacity": 20, "micro_batch": 8}),
        ("drift_triggered", {"warmup": 8, "micro_batch": 8, "signal": "reward"}),
        ("popularity", {"window": 40}),
    ],
    ids=lambda p: str(p)[:30],
)
def test_rows_not_served_are_not_learned_from(name, params):
    """A hand-built transition with ``served`` False on some rows leaves the agent exactly as
    the same transition restricted to the served rows does (the reward 0 of a reset row is not
    a no-click); when no row was served, nothing changes at all."""
    env, t = _step(16)
    served = np.ones(16, bool)
    served[[1, 4, 5, 11]] = False
    a = make_agent(name, env, seed=0, **params)
    b = make_agent(name, env, seed=0, **params)
    for _ in range(3):  # three steps: micro-batches fill and train, detectors see values
        a.observe(_unserved(t, served))
        b.observe(_rows(t, np.flatnonzero(served)))
    assert_same_state(a.state_dict(), b.state_dict())
    if name == "popularity":
        assert a.head == 3 * served.sum()
    else:
        assert a.trainer.seen + a.trainer.pending_rows == 3 * served.sum()
        assert a.cost()["gradient_steps"] > 0
    if "thompson" in str(params):
        assert a.user_counts.sum() == 3 * served.sum()
    before = a.state_dict()
    a.observe(_unserved(t, np.zeros(16, bool)))
    assert_same_state(before, a.state_dict())


def test_next_step_autoreset_rows_are_dropped_end_to_end():
    """On the vector environment in next-step autoreset mode, every row an agent counts was
    served: the learning agent's examples and the popularity window hold exactly the served
    requests."""
    env = RecDriftVectorEnv(32, autoreset_mode="NextStep", **SMALL)
    learner = make_agent("online", env, micro_batch=64, seed=0)
    popularity = make_agent("popularity", env, window=10_000, seed=0)
    obs, _ = env.reset(seed=0)
    served = 0
    for _ in range(40):
        action = learner.act(obs)
        next_obs, reward, term, trunc, info = env.step(action)
        t = Transition(obs, action, reward, next_obs, term, trunc, info)
        learner.observe(t)
        popularity.observe(t)
        served += int(np.sum(info["served"]))
        obs = next_obs
    assert served < 40 * 32  # some rows were reset steps
    assert learner.trainer.seen + learner.trainer.pending_rows == served
    assert popularity.head == served
    assert all(torch.isfinite(p).all() for p in learner.model.parameters())

"""The parameters an update writes (DESIGN's "parameters updated per step"): counted from the
gradients each optimiser step applies, checked against a hand count of the rows a micro-batch
reads and against the rows that actually changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import make_env

from driftrec.agents import Transition, make_agent
from driftrec.agents.trainable import TrainableModel


def _one_batch(agent, env, seed: int = 0):
    """Serve one batch and let the agent learn from it; the slates it served."""
    obs, _ = env.reset(seed=seed)
    action = agent.act(obs)
    next_obs, reward, terminated, truncated, info = env.step(action)
    agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
    return obs, action


@pytest.mark.parametrize("optimiser", ["sgd", "adam"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_online_mf_step_writes_the_batchs_factor_rows_and_the_dense_rest(optimiser, seed):
    """MF (dim 32, 500 users, 600 items, slates of 5): one step on 16 requests writes the
    factor rows of the batch's distinct users and shown items (sparse tables: lazy Adam or
    SGD touch only those), and every entry of the dense parameters: the global bias (1), the
    slot biases (5) and the one-column bias tables (500 + 600 rows)."""
    env = make_env(16)
    agent = make_agent("online", env, micro_batch=16, optimiser=optimiser, seed=seed)
    factors = {n: p.detach().clone() for n, p in agent.model.named_parameters() if p.dim() == 2}
    obs, action = _one_batch(agent, env, seed)
    users = np.unique(obs["user_id"])
    items = np.unique(np.take_along_axis(obs["candidate_ids"], action, axis=1))
    cost = agent.cost()
    assert cost["optimiser_steps"] == 1
    assert cost["parameters_updated"] == 32 * (len(users) + len(items)) + 1 + 5 + 500 + 600
    # the rows written are the rows that changed (every one of them has a nonzero gradient)
    for name, ids in (("user_factors.weight", users), ("item_factors.weight", items)):
        now = dict(agent.model.named_parameters())[name].detach()
        changed = torch.nonzero((now != factors[name]).any(1))[:, 0].numpy()
        np.testing.assert_array_equal(changed, ids)


def test_scope_and_sparsity_bound_what_a_step_writes():
    """A step writes no more than the scope holds, and far less in the factor tables: on a
    catalogue of 5,000 items an online step of 64 requests writes under a third of MF."""
    env = make_env(64, num_items=5_000, num_users=5_000)
    agent = make_agent("online", env, micro_batch=64)
    _one_batch(agent, env)
    cost = agent.cost()
    assert 0 < cost["parameters_updated"] < cost["parameters_in_scope"] / 3


@pytest.mark.parametrize("name", ["slateq", "topk_reinforce"])
def test_rl_agents_count_what_each_step_writes(name):
    """An RL agent's gradient step updates its models' dense parameters whole and the id rows
    its batch reads: each step writes at least the dense part, at most everything trained."""
    env = make_env(16)
    agent = make_agent(name, env, seed=0)
    trained = [m.model for m in vars(agent).values() if isinstance(m, TrainableModel)]
    params = [p for model in trained for p in model.parameters()]
    if name == "slateq":
        params.append(agent.none_value)  # the no-click value, a scalar with its own optimiser
    sparse = {id(t.weight) for model in trained for t in model.modules() if _sparse_table(t)}
    dense = sum(p.numel() for p in params if id(p) not in sparse)
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        obs = next_obs
    cost = agent.cost()
    steps = cost["optimiser_steps"]
    assert steps > 0
    per_step = cost["parameters_updated"] / steps
    assert dense < per_step < sum(p.numel() for p in params)


def _sparse_table(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Embedding) and module.sparse


@pytest.mark.parametrize("name", ["online", "slateq"])
def test_a_state_saved_before_the_counters_existed_still_loads(name):
    """States saved by earlier versions lack optimiser_steps / parameters_updated: they load,
    with the counters at 0 (before: a ValueError, or SlateQ's KeyError half-way through)."""
    env = make_env(16)
    agent = make_agent(name, env, seed=0)
    _one_batch(agent, env)
    state = agent.state_dict()
    for key in ("optimiser_steps", "parameters_updated"):
        state.pop(key, None)
        if isinstance(state.get("trainer"), dict):
            state["trainer"].pop(key, None)
    fresh = make_agent(name, make_env(16), seed=0)
    fresh.load_state_dict(state)
    assert fresh.cost()["parameters_updated"] == 0
    assert fresh.cost()["gradient_steps"] == agent.cost()["gradient_steps"]

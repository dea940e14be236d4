"""The frozen oracle: the exact best slates under the world as it was when the agent was built,
read through the environment's ground-truth channel (``env.ground_truth_snapshot()`` and
``env.oracle_action(snapshot)``). It equals the oracle before any drift and falls to about
random after a sudden orthogonal shift; it needs the environment itself, reset, and works
through gymnasium's wrappers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from agent_helpers import SMALL, assert_plain, make_env, rollout, through_torch_save

import driftrec  # noqa: F401  (registers the driftrec/ ids)
from driftrec.agents import FrozenOracleAgent, make_agent
from driftrec.envs import RecDriftEnv


def test_frozen_oracle_equals_the_oracle_before_any_drift():
    env = make_env(64, "sudden", at=10_000)
    obs, _ = env.reset(seed=0)
    frozen = make_agent("frozen_oracle", env)
    assert isinstance(frozen, FrozenOracleAgent) and frozen.snapshot_clock == 0
    np.testing.assert_array_equal(frozen.act(obs), make_agent("oracle", env).act(obs))


@pytest.mark.parametrize("seed", [0, 1])
def test_frozen_oracle_falls_well_below_the_oracle_after_a_sudden_shift(seed):
    """Every cohort's taste jumps to an orthogonal one at 10k requests. Measured at seeds
    0-2: mean normalised reward 0.95-0.99 before the shift (below 1 only because boredom moves
    on after the snapshot), 0.43-0.44 after it (random slates: about 0.40)."""
    env = make_env(256, "sudden", at=10_000)
    env.reset(seed=seed)
    agent = make_agent("frozen_oracle", env)
    run, _ = rollout(agent, env, 80, seed=seed)
    assert run.rho[0] == pytest.approx(1.0)
    assert run.window_mean(0, 10_000) > 0.9
    assert run.window_mean(10_000, 20_480) < 0.55


def test_frozen_oracle_state_round_trip_and_a_snapshot_of_another_time():
    env = make_env(32)
    obs, _ = env.reset(seed=0)
    agent = make_agent("frozen_oracle", env)
    state = through_torch_save(agent.state_dict())
    assert_plain(state)
    assert state == {"snapshot_clock": 0}
    rollout(agent, env, 3, obs=obs)
    later = make_agent("frozen_oracle", env)  # the world at t = 96
    assert later.snapshot_clock == 96
    with pytest.raises(ValueError, match=r"snapshot was taken at t=0, this agent's at t=96"):
        later.load_state_dict(state)
    agent.load_state_dict(state)  # its own state loads (nothing changes)


def test_frozen_oracle_needs_the_environment_reset():
    with pytest.raises(TypeError, match="pass the environment, not its spaces"):
        env = make_env(8)
        make_agent("frozen_oracle", (env.single_observation_space, env.single_action_space))
    with pytest.raises(TypeError, match="pass a driftrec environment"):
        FrozenOracleAgent(object())
    for env in (make_env(8), RecDriftEnv(**SMALL), gym.make("driftrec/RecDrift-v0", **SMALL)):
        with pytest.raises(gym.error.ResetNeeded, match=r"call env.reset\(seed=...\) before"):
            make_agent("frozen_oracle", env)


def test_frozen_oracle_through_gymnasium_wrappers():
    single_env = gym.make("driftrec/RecDrift-v0", **SMALL)  # wrapped: reads env.unwrapped
    obs, _ = single_env.reset(seed=0)
    frozen = make_agent("frozen_oracle", single_env)
    action = frozen.act_one(obs)
    np.testing.assert_array_equal(action, make_agent("oracle", single_env).act_one(obs))
    _, _, _, _, info = single_env.step(action)
    assert info["expected_reward"] == pytest.approx(info["oracle_expected_reward"])

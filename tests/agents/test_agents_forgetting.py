"""Criterion 3: forgetting on recurring regimes A -> B -> A where the active population
alternates (scenario ``recurring``, ``mode="population"``; nobody's taste changes, so the data
of regime A is not wrong during B, only absent).

Forgetting is measured on probes, as in DESIGN 6: a probe set of regime A is frozen at the end
of A, greedy slates are scored on it then (R[A, A]) and at the end of B (R[B, A]); the
forgetting of A is R[A, A] - R[B, A].

The model is the two-tower scorer over features only (``use_ids=False``): every parameter is
shared by all users, so what B's users teach it can overwrite what A's taught it. (With per-id
tables, as in MF, A's users keep their own rows during B, and on this world MF forgets nothing
measurable: its item vectors only get better.)
"""

from __future__ import annotations

import pytest
from agent_helpers import make_env

from driftrec.agents import Transition, make_agent

PERIOD = 100_000
MODEL = {"name": "two_tower", "use_ids": False}


def forgetting_of_a(name: str, seed: int = 0) -> tuple[float, float]:
    """(R[A, A], R[B, A]) of agent ``name`` over A (t < 100k) then B (100k <= t < 200k)."""
    env = make_env(scenario="recurring", mode="population", period=PERIOD)
    obs = env.reset(seed=seed)[0]
    agent = make_agent(name, env, model=MODEL, seed=seed)
    if agent.pretrain_requests:
        agent.pretrain(env.world.log_interactions(agent.pretrain_requests))
    probe, r_aa = None, None
    steps = 2 * PERIOD // env.num_envs
    for _ in range(steps):
        if probe is None and env.world.clock + env.num_envs > PERIOD:
            assert env.world.regime() == 0
            probe = env.world.probe_set(2_000)  # regime A, at its end
            r_aa = probe.normalised_reward(agent.greedy(probe.observation))
        action = agent.act(obs)
        next_obs, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, term, trunc, info))
        obs = next_obs
    assert env.world.regime() == 1 and env.world.clock <= 2 * PERIOD
    return r_aa, probe.normalised_reward(agent.greedy(probe.observation))


@pytest.fixture(scope="module")
def fine_tune_forgetting() -> float:
    r_aa, r_ba = forgetting_of_a("fine_tune")
    assert r_aa > 0.6, "fine_tune must have learned A before it can forget it"
    return r_aa - r_ba


@pytest.mark.parametrize("name", ["replay", "ewc"])
def test_replay_and_ewc_forget_less_than_fine_tune(name, fine_tune_forgetting):
    """Measured at seeds 0-2: fine_tune forgets 0.049, 0.078, 0.062 of A; replay 0.028, 0.026,
    0.017; ewc 0.022, 0.031, 0.012. The margin asked, 0.015, is below every measured gap
    (the smallest, 0.021, at seed 0)."""
    r_aa, r_ba = forgetting_of_a(name)
    assert r_aa > 0.6, f"{name} must have learned A"
    assert r_aa - r_ba < fine_tune_forgetting - 0.015, (name, r_aa, r_ba, fine_tune_forgetting)
    assert fine_tune_forgetting > 0.02, "the setting must make plain fine-tuning forget"

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

The world has two audiences, one per regime (``num_cohorts=2``: cohort 0 in A, cohort 1 in
B), and user features that say little about taste (4 dimensions, noise 1.0): a shared model must
then lean on what the current audience likes, which is exactly what plain fine-tuning forgets.
With the default 8 cohorts and informative features the effect is real but small (0.02-0.06)
and noisier than the gap between strategies.
"""

from __future__ import annotations

import numpy as np
import pytest
from agent_helpers import make_env

from driftrec.agents import Transition, make_agent
from driftrec.experiments.metrics import forgetting_per_regime

PERIOD = 60_000
MODEL = {"name": "two_tower", "use_ids": False}
WORLD = {"num_cohorts": 2, "user_feature_dim": 4, "feature_noise": 1.0}


def forgetting_of_a(name: str, seed: int = 0) -> tuple[float, float]:
    """(R[A, A], forgetting of A) of agent ``name`` over A (t < 60k) then B (60k <= t <
    120k), the forgetting by the metrics library: f_A = R[A, A] - R[B, A] (DESIGN 6)."""
    env = make_env(scenario="recurring", mode="population", period=PERIOD, **WORLD)
    obs = env.reset(seed=seed)[0]
    agent = make_agent(name, env, model=MODEL, seed=seed)
    if agent.pretrain_requests:
        agent.pretrain(env.log_interactions(agent.pretrain_requests))
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
    r_ba = probe.normalised_reward(agent.greedy(probe.observation))
    R = np.array([[r_aa, np.nan], [r_ba, np.nan]])  # regime B's probe is not needed here
    return r_aa, float(forgetting_per_regime(R)[0])


@pytest.fixture(scope="module")
def fine_tune_forgetting() -> float:
    r_aa, forgetting = forgetting_of_a("fine_tune")
    assert r_aa > 0.5, "fine_tune must have learned A (random: 0.40) before it can forget it"
    return forgetting


@pytest.mark.parametrize("name", ["replay", "ewc"])
def test_replay_and_ewc_forget_less_than_fine_tune(name, fine_tune_forgetting):
    """Runs seed 0 (each agent takes a minute). Measured at seeds 0-2: fine_tune forgets 0.096,
    0.139, 0.102 of A; replay 0.037, 0.051, 0.041; ewc 0.038, 0.024, 0.045. The margin asked,
    0.025, is below every gap at those seeds (the smallest, 0.057, at seed 2).

    At seeds 3-7 (an independent re-run, 2026-11-30) replay's gap held (0.041-0.086), but ewc's
    did not everywhere: it forgets less than fine_tune at every seed, by 0.016 only at seed 4
    (0.109 against 0.125), and with a 30k period by 0.003 at seed 4 (0.116 against 0.119). So
    ewc's margin here is this seed's, not a rule: docs/metrics.md says as much."""
    r_aa, forgetting = forgetting_of_a(name)
    assert r_aa > 0.5, f"{name} must have learned A (random: 0.40)"
    assert forgetting < fine_tune_forgetting - 0.025, (name, r_aa, forgetting, fine_tune_forgetting)
    assert fine_tune_forgetting > 0.05, "the setting must make plain fine-tuning forget"

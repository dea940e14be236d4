"""What a slate action means is defined once (``driftrec.slates.empty_repeats``): the agents'
view of a served slate is the environment's, also for actions that repeat a position. (That
agents import neither ``driftrec.envs`` nor ``driftrec.simulators`` is checked with the rest of
the layering in tests/test_architecture.py.)"""

from __future__ import annotations

import numpy as np
from agent_helpers import make_env

from driftrec.agents import SlateExamples, Transition, task_sizes
from driftrec.agents.checks import check_transition
from driftrec.envs.spaces import action_to_slates


def test_the_agents_view_of_a_slate_is_the_environments():
    """Random actions, half of them drawn from few positions so that most rows repeat one:
    the slates an agent learns from (-1 at a repeated position's later slots) equal the
    environment's, and every observed click is on a slot the agent sees as shown, holding the
    item the environment reports as clicked."""
    env = make_env(256)
    obs, _ = env.reset(seed=0)
    sizes, rng = task_sizes(env), np.random.default_rng(0)
    repeated_rows = 0
    for step in range(20):
        high = 3 if step % 2 else sizes.num_candidates
        action = rng.integers(0, high, (256, sizes.slate_size))
        next_obs, reward, term, trunc, info = env.step(action)
        transition = Transition(obs, action, reward, next_obs, term, trunc, info)
        slates = check_transition(transition, sizes).slates
        np.testing.assert_array_equal(slates, action_to_slates(action, 256, env.config))
        repeated_rows += int((slates < 0).any(axis=1).sum())
        examples = SlateExamples.from_transition(transition, sizes)
        clicked = np.flatnonzero(info["click_slot"] >= 0)
        shown = examples.item_ids[clicked, info["click_slot"][clicked]]
        np.testing.assert_array_equal(shown, info["clicked_item"][clicked])
        obs = next_obs
    assert repeated_rows > 1_000

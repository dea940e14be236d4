"""Logged data: interactions drawn under a known logging policy, with exact slate propensities,
for pretraining (transfer learning) and off-policy work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from driftrec.simulators.choice import expected_reward, sample_slots
from driftrec.simulators.requests import slot_values
from driftrec.validation import check_integer, check_real

if TYPE_CHECKING:
    from driftrec.simulators.world import World

__all__ = ["LoggedInteractions", "LoggingPolicy", "log_interactions"]

LoggingPolicy = str | Callable[[dict[str, np.ndarray]], np.ndarray]
"""``"uniform"``, ``"softmax"``, or a callable from an observation batch to scores (n, C)."""


def log_interactions(
    world: World, n: int, policy: LoggingPolicy = "uniform", temperature: float = 1.0
) -> LoggedInteractions:
    """Logged interactions under a logging policy, with propensities, drawn from the world's
    current state as if they happened just before now (the world is not changed: they come from
    its logging stream).

    Args:
        world: the world.
        n: number of logged requests.
        policy: ``"uniform"`` (uniformly random slates), ``"softmax"`` (Plackett-Luce over the
            true utilities / temperature, a noisy production ranker) or a callable that maps
            an observation batch to scores (n, C) used the same way.
        temperature: softness of the Plackett-Luce logging policy (> 0).

    Returns:
        The observations, slates and their propensities (probability of the whole ordered
        slate under the logging policy), observed clicks and rewards.
    """
    n = check_integer("n", n, minimum=1)
    temperature = check_real("temperature", temperature, low=0.0, low_open=True)
    if not (policy in ("uniform", "softmax") or callable(policy)):
        raise ValueError(
            f"unknown logging policy {policy!r}; use 'uniform', 'softmax' or a callable"
        )
    rng = world.rng["logging"]
    requests = world.make_requests(world.sample_users(n, rng), rng, with_boredom=False)
    observation = world.observe(requests)
    if policy == "uniform":
        scores = np.zeros(requests.utilities.shape)
    elif policy == "softmax":
        scores = requests.utilities / temperature
    elif callable(policy):
        scores = np.asarray(policy(observation), dtype=np.float64) / temperature
    k = world.config.slate_size
    gumbel = scores - np.log(-np.log(rng.random(scores.shape)))
    slates = np.argsort(-gumbel, axis=1)[:, :k]
    chosen = np.take_along_axis(scores, slates, axis=1)
    shifted = scores - scores.max(axis=1, keepdims=True)
    total = np.exp(shifted).sum(axis=1, keepdims=True)
    exp_chosen = np.exp(chosen - scores.max(axis=1, keepdims=True))
    remaining = total - np.concatenate(
        [np.zeros((n, 1)), np.cumsum(exp_chosen, axis=1)[:, :-1]], axis=1
    )
    propensity = np.prod(exp_chosen / remaining, axis=1)
    probs = world.slot_probabilities(requests, slates)
    slot = sample_slots(probs, rng)
    rows = np.arange(n)
    if requests.values is None:  # the click is the reward
        reward = (slot >= 0).astype(np.float32)
    else:
        value = requests.values[rows, slates[rows, np.maximum(slot, 0)]]
        reward = np.where(slot >= 0, value, 0.0).astype(np.float32)
    return LoggedInteractions(
        observation=observation,
        slates=slates,
        propensity=propensity,
        click_slot=slot,
        reward=reward,
        expected_reward=expected_reward(probs, slot_values(requests, slates)),
    )


@dataclass
class LoggedInteractions:
    """Interactions logged under a known policy (for pretraining and off-policy evaluation).

    Attributes:
        observation: observation batch as from ``World.observe`` (n rows).
        slates: (n, k) candidate positions shown.
        propensity: (n,) probability of the whole ordered slate under the logging policy.
        click_slot: (n,) clicked slot or -1.
        reward: (n,) observed reward.
        expected_reward: (n,) exact expected reward of each logged slate.
    """

    observation: dict[str, np.ndarray]
    slates: np.ndarray
    propensity: np.ndarray
    click_slot: np.ndarray
    reward: np.ndarray
    expected_reward: np.ndarray

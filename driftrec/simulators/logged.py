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
        temperature: softness of the Plackett-Luce logging policy (at least 1e-6; near it,
            nearly greedy).

    Returns:
        The observations, slates and their propensities (probability of the whole ordered
        slate under the logging policy), observed clicks and rewards.
    """
    n = check_integer("n", n, minimum=1)
    # Below 1e-6 the scores (utilities of up to a few hundred) divided by it could overflow.
    temperature = check_real("temperature", temperature, low=1e-6)
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
        if scores.shape != requests.utilities.shape:
            raise ValueError(
                f"a logging policy must return scores of shape (n, C) = "
                f"{requests.utilities.shape}, got {scores.shape}"
            )
        if not np.isfinite(scores).all():
            raise ValueError(
                f"the logging policy's scores / temperature ({temperature}) hold NaN or inf: "
                "every candidate needs a finite score"
            )
    k = world.config.slate_size
    gumbel = scores - np.log(-np.log(rng.random(scores.shape)))
    slates = np.argsort(-gumbel, axis=1)[:, :k]
    propensity = slate_propensity(scores, slates)
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


def slate_propensity(scores: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """(n,) probability of each ordered slate (n, k) under sampling without replacement from
    softmax(scores) (n, C): the product over slots of exp(s_chosen) / sum of exp(s) over the
    candidates still available. Each slot's normaliser is summed over the available candidates
    themselves, after subtracting their largest score, in logs: no cancellation when one
    candidate holds nearly all the mass (a low temperature), where subtracting the chosen
    candidates from the total would leave 0 / 0."""
    n, k = slates.shape
    rows = np.arange(n)
    available = np.ones(scores.shape, dtype=bool)
    log_p = np.zeros(n)
    for j in range(k):
        masked = np.where(available, scores, -np.inf)
        top = masked.max(axis=1)
        log_norm = np.log(np.exp(masked - top[:, None]).sum(axis=1)) + top
        log_p += scores[rows, slates[:, j]] - log_norm
        available[rows, slates[:, j]] = False
    propensity: np.ndarray = np.exp(log_p)
    return propensity


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

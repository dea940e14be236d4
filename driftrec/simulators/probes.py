"""Probe sets: fixed requests frozen in one regime, on which any policy is scored exactly,
later, after the world has moved on (how forgetting is measured)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from driftrec.simulators.choice import ChoiceModel, expected_reward
from driftrec.simulators.requests import Requests, slot_values
from driftrec.slates import as_slates
from driftrec.validation import check_flag, check_integer

if TYPE_CHECKING:
    from driftrec.simulators.world import World

__all__ = ["ProbeSet", "probe_set"]


def probe_set(world: World, n: int, with_boredom: bool = False) -> ProbeSet:
    """A fixed set of ``n`` requests frozen at the world's current true state.

    Utilities exclude boredom by default, so the probe measures how well an agent knows the
    users' lasting preferences in this regime. Drawn from the probe stream: taking a probe
    never changes the world's trajectory.
    """
    n = check_integer("n", n, minimum=1)
    with_boredom = check_flag("with_boredom", with_boredom)
    rng = world.rng["probes"]
    requests = world.make_requests(world.sample_users(n, rng), rng, with_boredom)
    return ProbeSet(
        observation=world.observe(requests),
        requests=requests,
        choice=world.choice,
        regime=world.regime(),
        rng_seed=int(rng.integers(2**63)),
    )


class ProbeSet:
    """A fixed set of requests frozen in one regime, to score any policy on it exactly.

    Attributes:
        observation: what an agent sees for these requests (``World.observe`` keys).
        regime: the regime the probe was drawn in.
        oracle_expected_reward: (n,) value of the oracle slate per request.
        random_expected_reward: (n,) mean expected reward of uniformly random slates (a Monte
            Carlo mean over 64 slates per request with a fixed seed: the random baseline b_j).
    """

    def __init__(
        self,
        observation: dict[str, np.ndarray],
        requests: Requests,
        choice: ChoiceModel,
        regime: int,
        rng_seed: int,
        random_draws: int = 64,
    ) -> None:
        self.observation = observation
        self.requests = requests
        self.choice = choice
        self.regime = regime
        self.oracle_slates, self.oracle_expected_reward = choice.oracle(
            requests.utilities, requests.values
        )
        rng = np.random.default_rng(rng_seed)
        n, c = requests.utilities.shape
        k = choice.slate_size
        keys = rng.random((random_draws, n, c))
        subset = np.argpartition(keys, k - 1, axis=2)[:, :, :k] if k < c else np.argsort(keys)
        order = np.argsort(np.take_along_axis(keys, subset, axis=2), axis=2)
        draws = np.take_along_axis(subset, order, axis=2)
        self.random_expected_reward = np.mean([self._expected_reward(d) for d in draws], axis=0)

    def __len__(self) -> int:
        return len(self.requests)

    def expected_reward(self, slates: np.ndarray) -> np.ndarray:
        """(n,) exact expected reward of ``slates`` (n, k) of candidate positions: -1 is an empty
        slot, and a repeated position is shown once, at its first slot, as in the environments
        (so an agent's actions can be scored as they are)."""
        n, c = self.requests.utilities.shape
        return self._expected_reward(as_slates(slates, n, self.choice.slate_size, c))

    def _expected_reward(self, slates: np.ndarray) -> np.ndarray:
        slot_util = np.take_along_axis(self.requests.utilities, np.maximum(slates, 0), axis=1)
        probs = self.choice.slot_probabilities(slot_util, slates >= 0)
        return expected_reward(probs, slot_values(self.requests, slates))

    def normalised_reward(self, slates: np.ndarray) -> float:
        """Mean of expected / oracle reward over the probe (P[e, j] of docs/metrics.md), of
        ``slates`` as :meth:`expected_reward` takes them."""
        return float(np.mean(self.expected_reward(slates) / self.oracle_expected_reward))

    def click_probability(self) -> np.ndarray:
        """(n, C) relevance of each candidate: P(click) if it were shown alone in the top slot."""
        u = self.requests.utilities
        single = self.choice.slot_probabilities(u.reshape(-1, 1))
        return single.reshape(u.shape)

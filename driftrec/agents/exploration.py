"""Exploration: how scores become slates.

Every policy answers ``select(ranker, users, items, k, rng) -> (B, k)`` positions, drawing any
randomness from the numpy stream it is given (never a global one). ``ranker`` scores the
candidates (the mean over an ensemble's members when there is one) and gives access to the
members and to how much each user has been observed, which Thompson sampling needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.models.base import ItemBatch, UserBatch, factorised_score
from driftrec.validation import check_choice, check_fraction, check_real

__all__ = [
    "EXPLORATIONS",
    "EpsilonGreedy",
    "Exploration",
    "Greedy",
    "Ranker",
    "Softmax",
    "Thompson",
    "random_slates",
    "top_k",
]


class Ranker(Protocol):
    """What an exploration policy may ask of the agent's model(s)."""

    models: list[nn.Module]
    """The serving models: the current one first, then ensemble members (if any)."""
    user_counts: np.ndarray
    """Requests observed per user id (a per-user posterior's data count), indexed by id; ids at
    or beyond its length have none. The agent grows it with its id tables."""

    def score(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """(B, C) scores: the mean over ``models``."""
        ...


class Exploration(Protocol):
    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(B, k) int64 candidate positions, distinct within a row."""
        ...


def top_k(scores: Tensor, k: int) -> np.ndarray:
    """Positions of the k best scores per row, best first: (B, C) -> (B, k) int64."""
    return torch.topk(scores, k, dim=1).indices.cpu().numpy()


def random_slates(n: int, c: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, k) uniformly random slates of distinct positions out of ``c``."""
    keys = rng.random((n, c))
    if k < c:
        return np.argpartition(keys, k - 1, axis=1)[:, :k].astype(np.int64)
    return np.argsort(keys, axis=1).astype(np.int64)


@dataclass(frozen=True)
class Greedy:
    """The k best-scored candidates, best first (no exploration)."""

    def select(self, ranker, users, items, k, rng) -> np.ndarray:
        return top_k(ranker.score(users, items), k)


@dataclass(frozen=True)
class EpsilonGreedy:
    """With probability ``epsilon`` per request a uniformly random slate, else the greedy one
    (Sutton & Barto 2018, "Reinforcement learning: an introduction", 2.2)."""

    epsilon: float = 0.05

    def __post_init__(self) -> None:
        epsilon = check_fraction("epsilon", self.epsilon, closed_below=True)
        object.__setattr__(self, "epsilon", epsilon)

    def select(self, ranker, users, items, k, rng) -> np.ndarray:
        slates = top_k(ranker.score(users, items), k)
        explore = np.flatnonzero(rng.random(len(slates)) < self.epsilon)
        if len(explore):
            slates[explore] = random_slates(len(explore), items.ids.shape[1], k, rng)
        return slates


@dataclass(frozen=True)
class Softmax:
    """A slate sampled without replacement from the Plackett-Luce (Boltzmann) distribution over
    scores / ``temperature``, by the Gumbel-top-k trick (Kool, van Hoof & Welling 2019,
    "Stochastic beams and where to find them", ICML)."""

    temperature: float = 0.1

    def __post_init__(self) -> None:
        temperature = check_real("temperature", self.temperature, low=0.0, low_open=True)
        object.__setattr__(self, "temperature", temperature)

    def select(self, ranker, users, items, k, rng) -> np.ndarray:
        scores = ranker.score(users, items)
        gumbel = -np.log(-np.log(rng.random(tuple(scores.shape))))
        noise = torch.from_numpy(gumbel.astype(np.float32)).to(scores.device)
        return top_k(scores / self.temperature + noise, k)


@dataclass(frozen=True)
class Thompson:
    """Thompson sampling (Thompson 1933): rank by one draw from an approximate posterior.

    ``posterior="last_layer"``: a Bayesian last layer in the spirit of neural-linear bandits
    (Riquelme, Tucker & Snoek 2018, "Deep Bayesian bandits showdown", ICLR): the user vector
    u (the last layer of the factorised score) has an isotropic Gaussian posterior around its
    learned value whose variance shrinks with the user's data,
    ``u ~ N(u_hat, scale^2 / (prior + n_u) I)``, n_u the requests observed for the user; unseen
    users explore most. ``posterior="ensemble"``: each request is ranked by one member of the
    serving ensemble drawn uniformly (bootstrapped-ensemble Thompson sampling, Osband et al.
    2016, "Deep exploration via bootstrapped DQN"); it needs a strategy that merges by ensemble.
    """

    scale: float = 0.5
    prior: float = 1.0
    posterior: str = "last_layer"

    def __post_init__(self) -> None:
        check_choice("posterior", self.posterior, ("last_layer", "ensemble"))
        object.__setattr__(self, "scale", check_real("scale", self.scale, low=0.0))
        object.__setattr__(self, "prior", check_real("prior", self.prior, low=0.0, low_open=True))

    def select(self, ranker, users, items, k, rng) -> np.ndarray:
        if self.posterior == "ensemble":
            scores = torch.stack([m(users, items) for m in ranker.models])
            pick = torch.from_numpy(rng.integers(0, len(ranker.models), scores.shape[1]))
            rows = torch.arange(scores.shape[1])
            return top_k(scores[pick.to(scores.device), rows.to(scores.device)], k)
        model = ranker.models[0]
        u, user_bias = model.encode_users(users)
        v, item_bias = model.encode_items(items)
        sd = self.scale / np.sqrt(self.prior + _counts(ranker.user_counts, users.user_id))
        noise = rng.standard_normal(tuple(u.shape)) * sd[:, None]
        u = u + torch.from_numpy(noise.astype(np.float32)).to(u.device)
        return top_k(factorised_score(u, user_bias, v, item_bias), k)


def _counts(counts: np.ndarray, user_id: Tensor) -> np.ndarray:
    """``counts[user_id]``, 0 for ids beyond ``counts``."""
    ids = user_id.cpu().numpy()
    if ids.size and ids.max() >= len(counts):
        counts = np.concatenate([counts, np.zeros(int(ids.max()) + 1 - len(counts), counts.dtype)])
    return counts[ids]


EXPLORATIONS: dict[str, type] = {
    "greedy": Greedy,
    "epsilon_greedy": EpsilonGreedy,
    "softmax": Softmax,
    "thompson": Thompson,
}
"""Exploration names and their classes (keyword arguments are their fields)."""

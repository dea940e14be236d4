"""Exploration: how scores become slates.

Every policy answers ``select(ranker, users, items, k, rng) -> (B, k)`` positions, drawing any
randomness from the numpy stream it is given (never a global one). ``ranker`` scores the
candidates (the mean over an ensemble's members when there is one) and gives access to the
members and to how much each user has been observed, which Thompson sampling needs. A policy
declares what it needs (per-user counts, an ensemble) as attributes of :class:`Exploration`;
the agent reads the declarations, never the policy's type. ``EXPLORATIONS`` is the registry of
policies by name (``@EXPLORATIONS.register("name")`` on a class adds one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from driftrec.agents.models.base import ItemBatch, Recommender, UserBatch, factorised_score
from driftrec.registry import Registry
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

    @property
    def models(self) -> list[Recommender]:
        """The serving models: the current one first, then ensemble members (if any)."""
        ...

    @property
    def user_counts(self) -> np.ndarray:
        """Requests observed per user id (a per-user posterior's data count), indexed by id;
        ids at or beyond its length have none. The agent grows it with its id tables, and
        counts only for a policy that declares :attr:`Exploration.needs_user_counts`."""
        ...

    def score(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """(B, C) scores: the mean over ``models``."""
        ...


@runtime_checkable
class Exploration(Protocol):
    """How scores become slates, and what that needs from the agent."""

    @property
    def needs_user_counts(self) -> bool:
        """Whether :meth:`select` reads ``ranker.user_counts`` (the agent then counts the
        requests it observes per user)."""
        ...

    @property
    def needs_ensemble(self) -> bool:
        """Whether :meth:`select` needs several serving models (the agent refuses a strategy
        whose merges keep one)."""
        ...

    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(B, k) int64 candidate positions, distinct within a row."""
        ...


MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-6, 1e6
"""The range of the softmax policy's temperature (see :class:`Softmax`)."""
MAX_SCALE, MIN_PRIOR, MAX_PRIOR = 1e3, 1e-3, 1e6
"""The ranges of Thompson sampling's ``scale`` and ``prior`` (see :class:`Thompson`)."""

EXPLORATIONS: Registry[Exploration] = Registry("exploration")
"""Exploration names and their classes (keyword arguments are their fields)."""


class _NeedsNothing:
    """The declarations of a policy that reads the scores only."""

    needs_user_counts: ClassVar[bool] = False
    needs_ensemble: ClassVar[bool] = False


def top_k(scores: Tensor, k: int) -> np.ndarray:
    """Positions of the k best scores per row, best first: (B, C) -> (B, k) int64."""
    return torch.topk(scores, k, dim=1).indices.cpu().numpy()


def random_slates(n: int, c: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, k) uniformly random slates of distinct positions out of ``c``."""
    keys = rng.random((n, c))
    if k < c:
        return np.argpartition(keys, k - 1, axis=1)[:, :k].astype(np.int64)
    return np.argsort(keys, axis=1).astype(np.int64)


@EXPLORATIONS.register("greedy")
@dataclass(frozen=True)
class Greedy(_NeedsNothing):
    """The k best-scored candidates, best first (no exploration)."""

    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        return top_k(ranker.score(users, items), k)


@EXPLORATIONS.register("epsilon_greedy")
@dataclass(frozen=True)
class EpsilonGreedy(_NeedsNothing):
    """With probability ``epsilon`` per request a uniformly random slate, else the greedy one
    (Sutton & Barto 2018, "Reinforcement learning: an introduction", 2.2)."""

    epsilon: float = 0.05

    def __post_init__(self) -> None:
        epsilon = check_fraction("epsilon", self.epsilon, closed_below=True)
        object.__setattr__(self, "epsilon", epsilon)

    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        slates = top_k(ranker.score(users, items), k)
        explore = np.flatnonzero(rng.random(len(slates)) < self.epsilon)
        if len(explore):
            slates[explore] = random_slates(len(explore), items.ids.shape[1], k, rng)
        return slates


@EXPLORATIONS.register("softmax")
@dataclass(frozen=True)
class Softmax(_NeedsNothing):
    """A slate sampled without replacement from the Plackett-Luce (Boltzmann) distribution over
    scores / ``temperature``, by the Gumbel-top-k trick (Kool, van Hoof & Welling 2019,
    "Stochastic beams and where to find them", ICML).

    ``temperature`` is in [1e-6, 1e6]. The keys are computed in float64 from the scores minus
    each row's best, so that no key overflows: as the temperature falls the slate tends to the
    greedy one (at 1e-6 the first slot is the greedy one wherever the best score leads the next
    by more than 4e-5, the span of the Gumbel noise times the temperature), and as it rises to a
    uniformly random slate.
    """

    temperature: float = 0.1

    def __post_init__(self) -> None:
        temperature = check_real(
            "temperature", self.temperature, low=MIN_TEMPERATURE, high=MAX_TEMPERATURE
        )
        object.__setattr__(self, "temperature", temperature)

    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
        scores = ranker.score(users, items).detach().to("cpu", torch.float64).numpy()
        gumbel = -np.log(-np.log(rng.random(scores.shape)))
        best = scores.max(axis=1, keepdims=True) if scores.size else 0.0
        keys = (scores - best) / self.temperature + gumbel
        return top_k(torch.from_numpy(keys), k)


@EXPLORATIONS.register("thompson")
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
        scale = check_real("scale", self.scale, low=0.0, high=MAX_SCALE)
        object.__setattr__(self, "scale", scale)
        prior = check_real("prior", self.prior, low=MIN_PRIOR, high=MAX_PRIOR)
        object.__setattr__(self, "prior", prior)

    @property
    def needs_user_counts(self) -> bool:
        """The last-layer posterior shrinks with each user's count of observed requests."""
        return self.posterior == "last_layer"

    @property
    def needs_ensemble(self) -> bool:
        """The ensemble posterior draws one serving model per request."""
        return self.posterior == "ensemble"

    def select(
        self, ranker: Ranker, users: UserBatch, items: ItemBatch, k: int, rng: np.random.Generator
    ) -> np.ndarray:
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

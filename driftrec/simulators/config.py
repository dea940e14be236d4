"""Configuration of a simulated world: sizes, the choice model and the population's dynamics."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from driftrec.simulators.choice import CHOICE_MODELS
from driftrec.simulators.retrieval import RETRIEVERS
from driftrec.validation import check_choice, check_integer, check_real, check_time, machine_memory

REWARDS = ("click", "engagement")

_INTEGER_FIELDS = frozenset(
    (
        "num_users",
        "num_items",
        "num_candidates",
        "slate_size",
        "latent_dim",
        "num_topics",
        "num_cohorts",
        "user_feature_dim",
        "item_feature_dim",
        "arrival_horizon",
        "session_max_length",
        "history_length",
        "popular_pool",
        "fresh_pool",
        "popularity_half_life",
    )
)
"""Fields that are positive integers."""

_TIME_FIELDS = frozenset(("arrival_horizon", "popularity_half_life"))
"""Integer fields that are times in requests (at most ``validation.MAX_TIME``)."""

_CHOICE_FIELDS: dict[str, Iterable[str]] = {
    "choice_model": CHOICE_MODELS,
    "reward": REWARDS,
    "retrieval": RETRIEVERS,
}
"""Fields naming one of a set: the registered choice models and retrievers (users' own too),
the rewards."""


def _check_named(name: str, value: Any) -> str:
    """``value`` if ``_CHOICE_FIELDS[name]`` has it, else an error listing the valid ones (and
    for a registry, how to add one)."""
    try:
        return check_choice(name, value, _CHOICE_FIELDS[name])
    except ValueError as error:
        registry = {"choice_model": "CHOICE_MODELS", "retrieval": "RETRIEVERS"}.get(name)
        if registry is None:
            raise
        raise ValueError(
            f"{error}; register your own with driftrec.simulators.{registry}.register() (an "
            "experiment spec: in a module its imports name)"
        ) from None


_REAL_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    # name: (low, high, low_open). Utilities are logits: beyond +-100 every choice is already
    # certain and exp() starts to overflow.
    "affinity_scale": (-100.0, 100.0, False),
    "no_click_utility": (-100.0, 100.0, False),
    "quality_scale": (0.0, 100.0, False),
    "position_bias": (0.0, 100.0, False),
    "boredom_increment": (0.0, 100.0, False),
    "monotony_boredom": (0.0, 100.0, False),
    "engagement_sigma": (0.0, 10.0, False),
    "engagement_noise": (0.0, 10.0, False),
    # A heavier tail than alpha = 0.1 overflows the activity draw (one user would make all
    # the requests anyway).
    "activity_alpha": (0.1, None, False),
    "initial_user_fraction": (0.0, 1.0, True),
    "initial_item_fraction": (0.0, 1.0, True),
    "churn_prob": (0.0, 1.0, False),
    "leave_prob": (0.0, 1.0, False),
    "popular_fraction": (0.0, 1.0, False),
    "fresh_fraction": (0.0, 1.0, False),
    "boredom_decay": (0.0, 1.0, True),
    "session_mean_length": (1.0, None, False),
    # Spreads and noise around unit vectors: beyond about 10 the centres no longer matter, and
    # far beyond, the draws overflow.
    "cohort_spread": (0.0, 1000.0, False),
    "topic_spread": (0.0, 1000.0, False),
    "feature_noise": (0.0, 1000.0, False),
}
"""Finite real fields and their ranges (every real field is listed)."""


@dataclass(frozen=True)
class WorldConfig:
    """Everything that fixes a world except its drift processes and its seed.

    Sizes are capacities: ``num_users`` counts every user the world will ever hold, including
    those who arrive later (cold start); ``num_items`` counts every item, including the reserve
    that catalogue churn releases over time.
    """

    num_users: int = 10_000
    """Users in the population, present now or arriving later."""
    num_items: int = 5_000
    """Items in the catalogue, live now or released later."""
    num_candidates: int = 100
    """Candidates retrieved per request (C); the agent ranks these."""
    slate_size: int = 10
    """Items shown per request (k)."""
    latent_dim: int = 16
    """Dimension d of hidden preferences and item vectors; even (drift rotates planes)."""
    num_topics: int = 20
    """Topics; each item belongs to one, boredom is tracked per topic."""
    num_cohorts: int = 8
    """User cohorts at the start; drift processes may add more."""
    user_feature_dim: int = 8
    """Observable user features: a fixed noisy projection of the user's initial preferences."""
    item_feature_dim: int = 8
    """Observable item features: a fixed noisy projection of the item's latent vector."""
    feature_noise: float = 0.3
    """Standard deviation of the noise on observable features."""
    cohort_spread: float = 0.6
    """Spread of users around their cohort centre (before normalising to unit length)."""
    topic_spread: float = 0.6
    """Spread of items around their topic centre (before normalising to unit length)."""
    affinity_scale: float = 6.0
    """beta in s_ui = beta * <theta_u, phi_i> + q_i - boredom_u(topic_i)."""
    quality_scale: float = 0.5
    """Standard deviation of the item quality q_i."""
    no_click_utility: float = 2.0
    """Utility s_0 of not clicking (MNL) or the attraction offset (cascade)."""
    position_bias: float = 1.0
    """Additive position bias b_j = -position_bias * log2(1 + j) on MNL utilities (j from 0)."""
    choice_model: str = "mnl"
    """'mnl': multinomial logit over the slate plus no-click; 'cascade': top-down scan; or the
    name of a choice model registered in ``CHOICE_MODELS`` (docs/scenarios.md)."""
    reward: Literal["click", "engagement"] = "click"
    """'click': reward 1 per click; 'engagement': the clicked item's engagement value."""
    engagement_sigma: float = 0.5
    """Log-normal spread of item engagement values (their mean is 1)."""
    engagement_noise: float = 0.3
    """Log-normal noise on a sampled engagement (mean 1), so sampled reward is noisy."""
    activity_alpha: float = 1.5
    """Pareto shape of user activity: smaller means heavier tail (fewer users, most requests)."""
    initial_user_fraction: float = 0.9
    """Fraction of users present at t=0; the rest arrive uniformly over ``arrival_horizon``."""
    arrival_horizon: int = 200_000
    """Requests over which late users arrive."""
    churn_prob: float = 0.02
    """Probability that a user leaves for good after a session without a click."""
    initial_item_fraction: float = 0.8
    """Fraction of items live at t=0; the rest is the reserve released by catalogue churn."""
    boredom_increment: float = 0.3
    """Boredom added to a topic each time the user clicks an item of it."""
    boredom_decay: float = 0.9
    """Factor applied to a user's boredom at each of their requests."""
    monotony_boredom: float = 0.0
    """Boredom added to a topic each time a slate shows it again: every item after the first of
    one topic in one slate tires the user of that topic, clicked or not (monotonous lists bore
    users). 0 (the default) turns it off. With it on, the myopic oracle, which maximises the
    current request's reward, earns less per session than a policy that diversifies its slates
    (see the ``monotony`` scenario and docs/rl.md)."""
    session_mean_length: float = 20.0
    """Mean session budget in requests (geometric)."""
    session_max_length: int = 100
    """Cap on a session's length in requests."""
    leave_prob: float = 0.05
    """Probability of leaving the session after a request without a click."""
    history_length: int = 10
    """Recent clicked items kept per user (observable)."""
    popular_fraction: float = 0.2
    """Share of candidates drawn from the popular pool."""
    fresh_fraction: float = 0.1
    """Share of candidates drawn from the freshest items."""
    popular_pool: int = 200
    """Size of the popular pool (top items by decayed clicks)."""
    fresh_pool: int = 200
    """Size of the fresh pool (most recently released items)."""
    popularity_half_life: int = 50_000
    """Half-life of click counts in the popularity ranking, in requests."""
    retrieval: str = "pooled"
    """'pooled': popular, fresh and random candidates (``PooledRetrieval``; the three fields
    above); or the name of a retriever registered in ``RETRIEVERS`` (docs/scenarios.md)."""

    def __post_init__(self) -> None:
        # Normalise every field to a plain Python value of its declared kind (NumPy scalars from
        # parameter grids are welcome), rejecting wrong types, NaN and infinities up front.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _TIME_FIELDS:
                value = check_time(f.name, value)
            elif f.name in _INTEGER_FIELDS:
                value = check_integer(f.name, value, minimum=1)
            elif f.name in _CHOICE_FIELDS:
                value = _check_named(f.name, value)
            else:
                low, high, low_open = _REAL_RANGES[f.name]
                value = check_real(f.name, value, low=low, high=high, low_open=low_open)
            object.__setattr__(self, f.name, value)
        if self.latent_dim % 2:
            raise ValueError(
                f"latent_dim must be even (drift rotates preferences in d/2 planes), "
                f"got {self.latent_dim}; use {self.latent_dim + 1}"
            )
        if self.slate_size > self.num_candidates:
            raise ValueError(
                f"slate_size ({self.slate_size}) cannot exceed num_candidates "
                f"({self.num_candidates})"
            )
        live = round(self.num_items * self.initial_item_fraction)
        if live < self.num_candidates:
            raise ValueError(
                f"only {live} items are live at t=0 (num_items * initial_item_fraction) but "
                f"each request needs num_candidates={self.num_candidates}; raise num_items or "
                f"initial_item_fraction"
            )
        if round(self.num_users * self.initial_user_fraction) < 1:
            raise ValueError(
                f"no user is present at t=0 (num_users * initial_user_fraction = "
                f"{self.num_users * self.initial_user_fraction:g}); raise either"
            )
        if self.popular_fraction + self.fresh_fraction > 1.0:
            raise ValueError(
                f"popular_fraction + fresh_fraction must be at most 1, got "
                f"{self.popular_fraction} + {self.fresh_fraction}"
            )

    def memory_estimate(self) -> int:
        """Bytes the drawn world needs at its peak (while drawing), roughly: the per-user and
        per-item arrays plus the float64 temporaries of drawing them."""
        d = self.latent_dim
        per_user = 4 * d + 24 * d + 25 + 4 * self.user_feature_dim
        per_user += 4 * self.num_topics + 8 * self.history_length
        per_item = 4 * d + 24 * d + 8 * 5 + 12 * self.item_feature_dim
        centres = 16 * d * (self.num_cohorts + self.num_topics)
        return self.num_users * per_user + self.num_items * per_item + centres

    def check_fits_in_memory(self) -> None:
        """Refuse a world larger than this machine's memory, before trying to draw it."""
        total = machine_memory()
        if total is None:
            return
        need = self.memory_estimate()
        if need > total:
            raise ValueError(
                f"this world needs about {need / 2**30:.1f} GiB to draw, more than this "
                f"machine's {total / 2**30:.1f} GiB: lower num_users ({self.num_users}), "
                f"num_items ({self.num_items}), latent_dim ({self.latent_dim}), num_topics "
                f"({self.num_topics}), history_length ({self.history_length}), the feature "
                f"dims ({self.user_feature_dim}, {self.item_feature_dim}) or num_cohorts "
                f"({self.num_cohorts})"
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> WorldConfig:
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TypeError(
                f"unknown world parameter(s) {unknown}; valid ones are {sorted(self.field_names())}"
            )
        return dataclasses.replace(self, **changes)

"""Configuration of a simulated world: sizes, the choice model and the population's dynamics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

CHOICE_MODELS = ("mnl", "cascade")
REWARDS = ("click", "engagement")


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
    choice_model: Literal["mnl", "cascade"] = "mnl"
    """'mnl': multinomial logit over the slate plus no-click; 'cascade': top-down scan."""
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
    retrieval_refresh: int = 1_000
    """Requests between refreshes of the retrieval pools."""
    popularity_half_life: int = 50_000
    """Half-life of click counts in the popularity ranking, in requests."""

    def __post_init__(self) -> None:
        _check_positive_int(self, "num_users", "num_items", "num_candidates", "slate_size")
        _check_positive_int(self, "latent_dim", "num_topics", "num_cohorts", "history_length")
        _check_positive_int(self, "user_feature_dim", "item_feature_dim", "session_max_length")
        _check_positive_int(self, "popular_pool", "fresh_pool", "retrieval_refresh")
        _check_positive_int(self, "popularity_half_life", "arrival_horizon")
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
        if self.choice_model not in CHOICE_MODELS:
            raise ValueError(
                f"choice_model must be one of {CHOICE_MODELS}, got {self.choice_model!r}"
            )
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        for name in ("initial_user_fraction", "initial_item_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for name in ("churn_prob", "leave_prob", "popular_fraction", "fresh_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.popular_fraction + self.fresh_fraction > 1.0:
            raise ValueError("popular_fraction + fresh_fraction must be at most 1")
        if not 0.0 < self.boredom_decay <= 1.0:
            raise ValueError(f"boredom_decay must be in (0, 1], got {self.boredom_decay}")
        if self.session_mean_length < 1.0:
            raise ValueError(f"session_mean_length must be >= 1, got {self.session_mean_length}")
        if self.activity_alpha <= 0:
            raise ValueError(f"activity_alpha must be > 0, got {self.activity_alpha}")
        for name in ("feature_noise", "cohort_spread", "topic_spread", "quality_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("engagement_sigma", "engagement_noise", "boredom_increment"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

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


def _check_positive_int(config: WorldConfig, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

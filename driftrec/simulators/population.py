"""The true state of a world: the user population and the item catalogue, as arrays.

Everything here is ground truth the agent never sees directly, except the ``features`` arrays,
``topic`` and ``history``, which make up observations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from driftrec.simulators.config import WorldConfig

NEVER = np.iinfo(np.int64).max
"""Arrival or retirement time of something that never happens."""

FEATURE_BOUND = 10.0
"""Observable features are clipped to [-FEATURE_BOUND, FEATURE_BOUND] (a bounded Box space)."""


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean length."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return unit_rows(rng.standard_normal((n, d)))


@dataclass
class UserPopulation:
    """Users, batched over the user id.

    Attributes:
        theta: (n_users, d) float32 true preferences, unit length.
        cohort: (n_users,) int64 cohort id.
        cohort_centres: (n_cohorts, d) float64 unit centres; drift rotates them with the users.
        cohort_activity: (n_cohorts,) float64 multiplier on the activity of each cohort.
        activity: (n_users,) float64 Pareto activity weight.
        arrival: (n_users,) int64 world clock at which the user appears.
        alive: (n_users,) bool, False once the user has churned.
        features: (n_users, f_u) float32 observable features (fixed at creation).
        boredom: (n_users, n_topics) float32 current boredom per topic.
        history: (n_users, H) int64 most recent clicked item ids, newest first, -1 padded.
    """

    theta: np.ndarray
    cohort: np.ndarray
    cohort_centres: np.ndarray
    cohort_activity: np.ndarray
    activity: np.ndarray
    arrival: np.ndarray
    alive: np.ndarray
    features: np.ndarray
    boredom: np.ndarray
    history: np.ndarray
    feature_map: np.ndarray
    """(d, f_u) fixed projection from preferences to observable features."""

    @classmethod
    def draw(cls, config: WorldConfig, rng: np.random.Generator) -> UserPopulation:
        n, d = config.num_users, config.latent_dim
        centres = _unit_vectors(rng, config.num_cohorts, d)
        cohort = rng.integers(0, config.num_cohorts, n)
        theta = unit_rows(centres[cohort] + config.cohort_spread * rng.standard_normal((n, d)))
        activity = rng.pareto(config.activity_alpha, n) + 1.0
        arrival = np.zeros(n, dtype=np.int64)
        late = rng.random(n) >= config.initial_user_fraction
        arrival[late] = rng.integers(1, config.arrival_horizon + 1, int(late.sum()))
        if late.all():  # tiny worlds: somebody must be there to make the first request
            arrival[np.argmin(arrival)] = 0
        users = cls(
            theta=theta.astype(np.float32),
            cohort=cohort.astype(np.int64),
            cohort_centres=centres,
            cohort_activity=np.ones(config.num_cohorts),
            activity=activity,
            arrival=arrival,
            alive=np.ones(n, dtype=bool),
            features=np.zeros((n, config.user_feature_dim), np.float32),
            boredom=np.zeros((n, config.num_topics), np.float32),
            history=np.full((n, config.history_length), -1, dtype=np.int64),
            feature_map=rng.standard_normal((d, config.user_feature_dim)) / np.sqrt(d),
        )
        users.features[:] = users.observe(np.arange(n), config.feature_noise, rng)
        return users

    def observe(self, ids: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
        """Fresh observable features for users ``ids`` from their current preferences."""
        clean = self.theta[ids] @ self.feature_map * np.sqrt(self.theta.shape[1])
        noisy = clean + noise * rng.standard_normal(clean.shape)
        return np.clip(noisy, -FEATURE_BOUND, FEATURE_BOUND).astype(np.float32)

    def add_cohort(self, centre: np.ndarray) -> int:
        """Append a cohort with unit ``centre`` (d,); returns its id."""
        self.cohort_centres = np.vstack([self.cohort_centres, centre[None]])
        self.cohort_activity = np.append(self.cohort_activity, 1.0)
        return len(self.cohort_centres) - 1


@dataclass
class ItemCatalogue:
    """Items, batched over the item id.

    Attributes:
        phi: (n_items, d) float32 latent vectors, unit length.
        topic: (n_items,) int64 topic id (observable).
        quality: (n_items,) float32 quality / bias q_i added to every user's utility.
        engagement: (n_items,) float32 value of a click on the item (mean 1).
        arrival: (n_items,) int64 clock at which the item becomes available (NEVER: reserve).
        retirement: (n_items,) int64 clock at which it stops being available (NEVER: not yet).
        features: (n_items, f_i) float32 observable features (fixed at creation).
        popularity_prior: (n_items,) float64 a tiny quality-based prior that popularity-based
            retrieval starts from (so that the first popular pool holds good items rather than
            the lowest ids), fixed at creation.
    """

    phi: np.ndarray
    topic: np.ndarray
    quality: np.ndarray
    engagement: np.ndarray
    arrival: np.ndarray
    retirement: np.ndarray
    features: np.ndarray
    popularity_prior: np.ndarray

    @classmethod
    def draw(cls, config: WorldConfig, rng: np.random.Generator) -> ItemCatalogue:
        m, d = config.num_items, config.latent_dim
        centres = _unit_vectors(rng, config.num_topics, d)
        topic = rng.integers(0, config.num_topics, m)
        phi = unit_rows(centres[topic] + config.topic_spread * rng.standard_normal((m, d)))
        sigma = config.engagement_sigma
        engagement = np.exp(sigma * rng.standard_normal(m) - sigma**2 / 2)
        live = round(m * config.initial_item_fraction)
        arrival = np.full(m, NEVER, dtype=np.int64)
        arrival[rng.permutation(m)[:live]] = 0
        feature_map = rng.standard_normal((d, config.item_feature_dim))
        features = phi @ feature_map + config.feature_noise * rng.standard_normal(
            (m, config.item_feature_dim)
        )
        quality = config.quality_scale * rng.standard_normal(m)
        return cls(
            phi=phi.astype(np.float32),
            topic=topic.astype(np.int64),
            quality=quality.astype(np.float32),
            engagement=engagement.astype(np.float32),
            arrival=arrival,
            retirement=np.full(m, NEVER, dtype=np.int64),
            features=np.clip(features, -FEATURE_BOUND, FEATURE_BOUND).astype(np.float32),
            popularity_prior=1e-3 * np.exp(quality),
        )

    def available(self, t: int) -> np.ndarray:
        """(n_items,) bool: released at or before ``t`` and not retired by then."""
        return (self.arrival <= t) & (self.retirement > t)


class ActivitySampler:
    """Draws requesting users in proportion to activity among present users (arrived, not
    churned), times their cohort's activity multiplier, with work proportional to the draws, not
    to the population.

    A static table of cumulative weights ``activity * cohort_activity[cohort]`` over *all* users
    (rebuilt only when a cohort's multiplier changes, which drift does rarely) is sampled, and
    draws of users not present yet or gone are rejected: each accepted draw is exactly a draw
    from the present users' weights. The present share of the weight is known without a pass
    over the users (arrivals are a sorted schedule; churned users' weight is subtracted as they
    leave), so the number of draws depends only on the world's state, never on earlier calls
    (taking a probe set does not change the trajectory). When that share is tiny (below
    :data:`MIN_ACCEPTANCE`, e.g. a world whose users mostly arrive later), the sampler uses
    exact weights over present users instead, rebuilt when someone arrives or churns.
    """

    MIN_ACCEPTANCE = 0.05
    """Below this present share, rejection costs more than exact weights over present users."""

    EXHAUSTION_WARNING = 0.9
    """A ``RuntimeWarning`` (once per world) when users holding this share of the population's
    request weight have churned for good: the world is near the end of its users."""

    def __init__(self, users: UserPopulation) -> None:
        self.users = users
        self._table: np.ndarray | None = None
        self._table_key = b""
        self._arrivals = np.empty(0, dtype=np.int64)
        self._arrived_weight = np.empty(0)
        self._churned_weight = 0.0
        self._cdf: np.ndarray | None = None
        self._key: tuple = ()
        self._until = 0
        self._churned = 0
        self._warned = False

    def changed(self) -> None:
        """The users' activity, arrivals, presence or cohorts changed (a drift process that
        declares it): rebuild every table at the next draw."""
        self._table = self._cdf = None

    def churned(self, ids: np.ndarray, clock: int) -> None:
        """Users ``ids`` (present until now) leave for good at ``clock``."""
        self._churned += 1
        if self._table is not None:
            users = self.users
            weights = users.activity.take(ids) * users.cohort_activity[users.cohort.take(ids)]
            self._churned_weight += float(weights.sum())
            gone = self._churned_weight / self._table[-1]
            if gone >= self.EXHAUSTION_WARNING and not self._warned:
                self._warned = True
                warnings.warn(
                    f"users holding {gone:.0%} of the population's request weight have churned "
                    f"for good by t={clock}: this world will soon run out of users and stop "
                    "with a RuntimeError. For long runs lower churn_prob (0 keeps every user) "
                    "or raise num_users",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _static_table(self) -> np.ndarray:
        users = self.users
        key = users.cohort_activity.tobytes()
        if self._table is None or key != self._table_key:
            weights = users.activity * users.cohort_activity[users.cohort]
            self._table = np.cumsum(weights)
            self._table_key = key
            order = np.argsort(users.arrival, kind="stable")
            self._arrivals = users.arrival[order]
            self._arrived_weight = np.cumsum(weights[order])
            self._churned_weight = float(weights[~users.alive].sum())
        return self._table

    def present_share(self, clock: int) -> float:
        """The present users' share of the total weight at ``clock`` (no pass over users)."""
        return self._share(self._static_table(), clock)

    def _share(self, table: np.ndarray, clock: int) -> float:
        """:meth:`present_share` with the current static ``table``."""
        arrived = int(np.searchsorted(self._arrivals, clock, side="right"))
        present = (self._arrived_weight[arrived - 1] if arrived else 0.0) - self._churned_weight
        return max(present, 0.0) / table[-1] if table[-1] > 0 else 0.0

    def cdf(self, clock: int) -> np.ndarray:
        """(n_users,) cumulative request weights of the users present at ``clock`` (exact; the
        fallback of :meth:`sample`, rebuilt when someone arrives or churns)."""
        users = self.users
        key = (users.cohort_activity.tobytes(), self._churned)
        if self._cdf is None or self._key != key or clock >= self._until:
            later = users.arrival[users.arrival > clock]
            next_arrival = int(later.min()) if len(later) else NEVER
            present = (users.arrival <= clock) & users.alive
            weights = users.activity * users.cohort_activity[users.cohort] * present
            self._cdf = np.cumsum(weights)
            if self._cdf[-1] <= 0:
                raise RuntimeError(
                    f"no user can make a request at t={clock}: every user has churned, "
                    "not arrived yet, or belongs to an inactive cohort. This world cannot go "
                    "on: draw a new one (an environment's reset(seed=...); a plain reset() "
                    "keeps this world), and for long runs lower churn_prob or raise num_users"
                )
            self._key = key
            self._until = next_arrival
        return self._cdf

    def sample(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) user ids drawn at ``clock``."""
        table = self._static_table()
        share = self._share(table, clock)
        if share < self.MIN_ACCEPTANCE:
            return self._exact(n, clock, rng)
        users = self.users
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            need = n - filled
            m = int(need / share * 1.1) + 4  # a function of the state only
            ids = np.searchsorted(table, rng.random(m) * table[-1], side="right")
            ids = np.minimum(ids, len(table) - 1)
            ok = ids[(users.arrival.take(ids) <= clock) & users.alive.take(ids)]
            take = ok[:need]
            out[filled : filled + len(take)] = take
            filled += len(take)
        return out

    def _exact(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        cdf = self.cdf(clock)
        ids = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        return np.minimum(ids, len(cdf) - 1)

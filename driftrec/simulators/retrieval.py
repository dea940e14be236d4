"""Candidate retrieval: which items a request's candidate list holds.

The world asks its retriever for ``num_candidates`` distinct live items per request and tells it
about clicks (popularity) and catalogue changes. :class:`PooledRetrieval` is the built-in one;
anything with the :class:`Retrieval` methods can be registered in :data:`RETRIEVERS` (a name for
the world setting ``retrieval``) or injected into a :class:`~driftrec.simulators.World`.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from driftrec.registry import Registry
from driftrec.simulators.requests import lean

if TYPE_CHECKING:  # annotations only: the config imports this module for RETRIEVERS
    from driftrec.simulators.config import WorldConfig
    from driftrec.simulators.population import ItemCatalogue

__all__ = [
    "COMPACT_ITEMS",
    "FEW_REQUESTS",
    "RETRIEVERS",
    "CandidateIndex",
    "PooledRetrieval",
    "Retrieval",
    "sorted_unique",
]

CandidateIndex = tuple[np.ndarray, np.ndarray]
"""(items (m,), positions (n, C)): a batch's candidates are ``items[positions]``."""

FEW_REQUESTS = 4
"""Up to this many requests, each row draws without replacement directly (a permutation of the
pool would dominate the cost)."""

COMPACT_ITEMS = 1 << 16
"""From this many live items on, a batch's candidates come with their index into the few items
the batch's pools hold (``PooledRetrieval.retrieve_indexed``): the world then gathers each of
those items' rows once and the candidates' rows from that compact copy, instead of scattering
over the catalogue's tables (at 1M items, 5.4 -> 3.6 ms of item gathers for 4,096 requests)."""

REST_SAMPLE = 8_192
"""The random block of a batch is drawn from a uniformly random subset of about this many items
of the rest of the catalogue (all of it when smaller): the work per batch does not grow with
the catalogue, and each row is still a uniformly random subset of the rest."""


class Retrieval(Protocol):
    """What the world needs from a retriever."""

    def retrieve(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        """(n, C) int64 candidate item ids for ``n`` requests at ``clock``: distinct within a
        row, live at ``clock`` (never retired, already released)."""
        ...

    def record_clicks(self, items: np.ndarray, clock: int) -> None:
        """The items (m,) the users clicked in the batch served at ``clock`` (popularity)."""
        ...

    def catalogue_changed(self) -> None:
        """The catalogue changed (items released or retired): rebuild what depends on it."""
        ...


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest ``values`` (in no particular order)."""
    if n >= len(values):
        return np.arange(len(values))
    return np.argpartition(-values, n - 1)[:n]


class PooledRetrieval:
    """Popular, fresh and random candidates, from three disjoint pools of the live catalogue.

    Work per step is proportional to the requests served, not to the catalogue.

    - **Popular**: the top ``popular_pool`` live items by clicks decayed with
      ``popularity_half_life`` (starting from the catalogue's tiny quality-based
      ``popularity_prior``, so that the first pool holds good items rather than the lowest ids).
      Decay is lazy (clicks are stored in units of a reference clock; a uniform decay never
      changes the order), and the pool is kept up to date incrementally: after each batch, only
      the clicked items can overtake a member.
    - **Fresh**: the ``fresh_pool`` most recently released live items outside the popular pool.
    - **Random**: every other live item. A batch's random block comes from a uniformly random
      subset of about :data:`REST_SAMPLE` of them (drawn by rejection; all of them when there
      are fewer), so each row is a uniformly random subset of the rest.

    Each pool contributes a uniformly random subset of its items in the shares
    ``popular_fraction``, ``fresh_fraction`` and the rest, distinct within a row. What depends
    on the catalogue (the live items, the fresh ranking) is rebuilt only when the catalogue
    changes. A catalogue whose rest is smaller than its share of a row is served from one uniform
    pool of all live items.

    Attributes:
        popularity_ref: (n_items,) float64 decayed clicks in units of clock ``ref_clock``: the
            popularity at clock t is ``popularity_ref * decay ** (t - ref_clock)``.
    """

    def __init__(self, config: WorldConfig, items: ItemCatalogue) -> None:
        self.config = config
        self.items = items
        self.popularity_ref = items.popularity_prior.astype(np.float64).copy()
        self.ref_clock = 0
        self._log_decay = math.log(0.5) / config.popularity_half_life
        self._live = np.empty(0, dtype=np.int64)
        self._pooled = np.zeros(config.num_items, dtype=bool)
        self._is_popular = np.zeros(config.num_items, dtype=bool)
        self._is_live = np.zeros(config.num_items, dtype=bool)
        self._floor = -np.inf
        self._popular = np.empty(0, dtype=np.int64)
        self._fresh = np.empty(0, dtype=np.int64)
        self._freshest = np.empty(0, dtype=np.int64)
        self._uniform = False
        self._stale = True
        self._rest: np.ndarray | None = None
        self._rows: _RowPlan | None = None
        self._counts = _pool_counts(config)  # fixed by the configuration

    # ------------------------------------------------------------------ bookkeeping

    def catalogue_changed(self) -> None:
        self._stale = True

    def record_clicks(self, items: np.ndarray, clock: int) -> None:
        if len(items) == 0:
            return
        if (clock - self.ref_clock) * -self._log_decay > 600:  # keep the scale finite
            self.popularity_ref *= math.exp(self._log_decay * (clock - self.ref_clock))
            self.ref_clock = clock
        weight = math.exp(-self._log_decay * (clock - self.ref_clock))
        one = lean(len(items))
        if one:
            self.popularity_ref[items[0]] += weight  # add.at of one element: the same sum
        else:
            np.add.at(self.popularity_ref, items, weight)
        if self._stale or self._uniform:
            return
        # Only a clicked live item outside the pool whose popularity now exceeds the pool's
        # lowest can enter (a uniform decay changes no order). Flags, not set operations:
        # this runs after every batch, for a single request too (then on scalars).
        if one:
            item = items[0]
            rises = (
                not self._is_popular[item]
                and self._is_live[item]
                and self.popularity_ref[item] > self._floor
            )
            rising = items if rises else items[:0]
        else:
            rising = items[
                ~self._is_popular.take(items)
                & self._is_live.take(items)
                & (self.popularity_ref.take(items) > self._floor)
            ]
        if len(rising) == 0 and len(self._popular) >= self.config.popular_pool:
            return
        merged = sorted_unique(np.concatenate([self._popular, rising]))
        top = merged[_top(self.popularity_ref.take(merged), self.config.popular_pool)]
        self._set_pools(np.sort(top))

    def _set_pools(self, popular: np.ndarray) -> None:
        """Set the popular pool; the fresh pool follows (the freshest non-popular items)."""
        self._pooled[self._popular] = False
        self._pooled[self._fresh] = False
        self._is_popular[self._popular] = False
        self._popular = popular
        self._is_popular[popular] = True
        freshest = self._freshest[~self._is_popular.take(self._freshest)]
        self._fresh = freshest[: self.config.fresh_pool]
        self._pooled[self._popular] = True
        self._pooled[self._fresh] = True
        self._rest = None
        self._rows = None
        self._floor = self.popularity_ref.take(popular).min() if len(popular) else -np.inf

    def _rebuild(self, clock: int) -> None:
        """Everything that depends on the catalogue, at ``clock`` (O(catalogue), rare)."""
        cfg, items = self.config, self.items
        live = np.flatnonzero(items.available(clock))
        if len(live) < cfg.num_candidates:
            raise RuntimeError(
                f"only {len(live)} items are live at t={clock}, fewer than "
                f"num_candidates={cfg.num_candidates}"
            )
        self._live = live
        self._is_live[:] = False
        self._is_live[live] = True
        n_pop, n_fresh, n_rand = self._counts
        popular = min(cfg.popular_pool, len(live))
        fresh = min(cfg.fresh_pool, len(live) - popular)
        rest = len(live) - popular - fresh
        # Tiny catalogues, where a pool holds fewer items than its share of a request: one
        # uniform pool of all live items.
        self._uniform = popular < n_pop or fresh < n_fresh or rest < n_rand
        self._pooled[:] = False
        self._rest = None
        self._rows = None
        self._is_popular[:] = False
        self._popular = self._fresh = np.empty(0, dtype=np.int64)
        if not self._uniform:
            by_arrival = _top(items.arrival[live], cfg.fresh_pool + cfg.popular_pool)
            self._freshest = live[by_arrival[np.argsort(-items.arrival[live[by_arrival]])]]
            popular = live[_top(self.popularity_ref[live], cfg.popular_pool)]
            self._set_pools(np.sort(popular))
        self._stale = False

    def pools(self, clock: int) -> list[tuple[np.ndarray, int]]:
        """The (pool of item ids, count per request) pairs: popular, fresh and random (the
        random pool materialised: O(catalogue), for inspection and tests)."""
        if self._stale:
            self._rebuild(clock)
        if self._uniform:
            return [(self._live, self.config.num_candidates)]
        n_pop, n_fresh, n_rand = self._counts
        rest = self._live[~self._pooled[self._live]]
        pools = [(self._popular, n_pop), (self._fresh, n_fresh), (rest, n_rand)]
        return [(pool, count) for pool, count in pools if count > 0]

    # ------------------------------------------------------------------ retrieval

    def retrieve(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        return self.retrieve_indexed(n, clock, rng)[0]

    def retrieve_indexed(
        self, n: int, clock: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, CandidateIndex | None]:
        """:meth:`retrieve`, and for a batch of more than :data:`FEW_REQUESTS` requests over
        at least :data:`COMPACT_ITEMS` live items the candidates' index (the pools' items
        laid end to end, and each candidate's position in them), else None. The same draws
        and the same candidates either way."""
        if self._stale:
            self._rebuild(clock)
        if n <= FEW_REQUESTS:
            plan = self._rows if self._rows is not None else self._row_plan()
            return np.array([plan.draw(rng) for _ in range(n)], dtype=np.int64), None
        c = self.config.num_candidates
        n_pop, n_fresh, n_rand = self._counts
        blocks: list[tuple[np.ndarray | None, int]] = [(self._live, c)]
        if not self._uniform:  # the rest's sample is drawn at its turn (None here)
            blocks = [(self._popular, n_pop), (self._fresh, n_fresh), (None, n_rand)]
        compact = len(self._live) >= COMPACT_ITEMS
        out = np.empty((n, c), dtype=np.intp if compact else np.int64)
        pools: list[np.ndarray] = []
        column = offset = 0
        for pool, count in blocks:
            if not count:
                continue
            if pool is None:
                pool = self._rest_sample(rng)
            block = out[:, column : column + count]
            block[:] = _distinct_from_small(pool, n, count, rng, positions=compact)
            if compact:
                block += offset
                pools.append(pool)
                offset += len(pool)
            column += count
        if not compact:
            return out, None
        items = np.concatenate(pools)
        return items.take(out), (items, out)

    def _row_plan(self, spare: bool = True) -> _RowPlan:
        """How a request drawn alone gets its candidates from the current pools (cached until
        the pools change): popular and fresh from their pools, the rest from all live items
        with the pooled ones rejected (work proportional to the candidates, whatever the
        catalogue's size); one uniform pool for tiny catalogues."""
        if self._uniform:
            segments = [(self._live, self.config.num_candidates, len(self._live))]
        else:
            n_pop, n_fresh, n_rand = self._counts
            rest = len(self._live) - len(self._popular) - len(self._fresh)
            segments = [(self._popular, n_pop, len(self._popular))]
            segments += [(self._fresh, n_fresh, len(self._fresh)), (self._live, n_rand, rest)]
        self._rows = _RowPlan([s for s in segments if s[1] > 0], self._pooled, spare)
        return self._rows

    def _rest_sample(self, rng: np.random.Generator) -> np.ndarray:
        """Distinct live items outside the popular and fresh pools: all of them when there are
        at most :data:`REST_SAMPLE`, else a uniformly random subset of about that many, drawn
        by rejection (work independent of the catalogue's size)."""
        live, pooled = self._live, self._pooled
        rest_size = len(live) - len(self._popular) - len(self._fresh)
        if rest_size <= REST_SAMPLE:
            if self._rest is None:  # cached until the pools or the catalogue change
                self._rest = live[~pooled.take(live)]
            return self._rest
        accept = rest_size / len(live)
        draws = live.take(rng.integers(0, len(live), int(REST_SAMPLE / accept) + 16))
        return sorted_unique(draws[~pooled.take(draws)])


class _RowPlan:
    """The candidates of one request, drawn alone: for each pool in turn, ``count`` distinct
    items, a uniformly random ordered sample, with work proportional to ``count``.

    Positions in a pool are drawn independently and uniformly (``floor(u * size)`` for a
    uniform double ``u``: every position, with a relative bias below 2**-50), draws of rejected
    items (the popular and fresh items, when the rest is sampled from all live items) are
    dropped, and the first ``count`` distinct items are kept in the order drawn (sequential
    sampling: each one is uniform over the items not taken yet). Each pool draws about twice
    the repeats and rejections it expects, so that one draw of uniforms for the whole request
    nearly always suffices; a pool left short draws again. A pool whose request takes more than
    half of it takes the start of a permutation instead.

    Args:
        segments: (items to draw from, count per request, how many of them are accepted) per
            pool; fewer are accepted than drawn from when the pool is the rest of the live
            catalogue, drawn from all live items with the pooled ones rejected.
        pooled: (num_items,) bool, the popular and fresh items (the retriever's own flags).
        spare: draw the spare positions (False: exactly ``count`` per pool, so that nearly
            every request draws again; for tests of that path).
    """

    def __init__(
        self, segments: list[tuple[np.ndarray, int, int]], pooled: np.ndarray, spare: bool = True
    ) -> None:
        self.pooled = pooled
        self.segments = []
        sparse: list[tuple[np.ndarray, int]] = []
        at = 0
        for items, count, accepted in segments:
            if 2 * count > accepted and accepted == len(items):
                self.segments.append((items, count, False, 0, 0))  # dense: a permutation
                continue
            draws = count
            if spare:  # repeats, twice over, and rejections, 10% more than expected
                draws += 2 + 2 * count * count // max(accepted, 1)
                draws = math.ceil(1.1 * draws * len(items) / accepted)
            self.segments.append((items, count, accepted < len(items), at, at + draws))
            sparse.append((items, draws))
            at += draws
        # One draw of uniforms for every sparse pool: sizes[i] is the size of the pool that
        # position i is drawn in (the pools themselves are not copied: the rest's is the whole
        # live catalogue).
        self.sizes = np.repeat([float(len(items)) for items, _ in sparse], [d for _, d in sparse])

    def draw(self, rng: np.random.Generator) -> list[int]:
        """The item ids of one request's candidates, pool by pool."""
        positions = (rng.random(len(self.sizes)) * self.sizes).astype(np.intp)
        row: list[int] = []
        for items, count, reject, start, end in self.segments:
            if start == end:
                row += items.take(rng.permutation(len(items))[:count]).tolist()
                continue
            picked = dict.fromkeys(self._accepted(items.take(positions[start:end]), reject))
            while len(picked) < count:
                more = items.take((rng.random(end - start) * len(items)).astype(np.intp))
                picked.update(dict.fromkeys(self._accepted(more, reject)))
            row += itertools.islice(picked, count)
        return row

    def _accepted(self, items: np.ndarray, reject: bool) -> list[int]:
        """``items`` as a list, without the pooled ones if ``reject``."""
        return (items[~self.pooled.take(items)] if reject else items).tolist()


RETRIEVERS: Registry[Retrieval] = Registry("retriever", skip=2)
"""Retrievers by name, as ``WorldConfig.retrieval`` names them: a builder takes the world's
config and its drawn :class:`~driftrec.simulators.ItemCatalogue` and returns a
:class:`Retrieval`. Register your own with ``@RETRIEVERS.register()``: from then on it is a
value of ``retrieval`` for worlds, environments and experiment specs (through their
``imports``). The world checks every batch of candidates a retriever that is not the built-in
one returns (:func:`~driftrec.simulators.retrieval_checks.check_candidates`)."""

RETRIEVERS.register("pooled")(PooledRetrieval)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-d integer array, by one sort (NumPy 2's hashing ``unique``
    measured ten times slower on the batch-sized arrays retrieval dedupes)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _pool_counts(cfg: WorldConfig) -> tuple[int, int, int]:
    """Candidates per request from the popular, fresh and random pools: each share rounded,
    never more than its pool, and never more in all than ``num_candidates`` (two shares that
    sum to 1 may both round up: the fresh one gives way)."""
    c = cfg.num_candidates
    n_pop = min(round(c * cfg.popular_fraction), cfg.popular_pool)
    n_fresh = min(round(c * cfg.fresh_fraction), cfg.fresh_pool, c - n_pop)
    return n_pop, n_fresh, c - n_pop - n_fresh


def _distinct_from_small(
    pool: np.ndarray, n: int, count: int, rng: np.random.Generator, positions: bool = False
) -> np.ndarray:
    """(n, count) items of ``pool`` (their positions in it if ``positions``), distinct within a
    row, each row a uniformly random subset: a contiguous window of one fresh permutation of
    the pool, at a random start per row (marginally uniform, O(pool + n count))."""
    order = rng.permutation(len(pool))
    shuffled = order if positions else pool[order]
    extended = np.concatenate([shuffled, shuffled[:count]])
    start = rng.integers(0, len(pool), n)
    # Row s of the windows view is extended[s : s + count]: one gather of whole windows,
    # without an (n, count) array of indices.
    windows: np.ndarray = sliding_window_view(extended, count)[start]
    return windows

"""Candidate retrieval: which items a request's candidate list holds.

The world asks its retriever for ``num_candidates`` distinct live items per request and tells it
about clicks (popularity) and catalogue changes. :class:`PooledRetrieval` is the built-in one;
anything with the :class:`Retrieval` methods can be injected into a
:class:`~driftrec.simulators.World` instead.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.population import ItemCatalogue

__all__ = ["FEW_REQUESTS", "PooledRetrieval", "Retrieval"]

FEW_REQUESTS = 4
"""Up to this many requests, each row draws without replacement directly (a permutation of the
pool would dominate the cost)."""


class Retrieval(Protocol):
    """What the world needs from a retriever."""

    def retrieve(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        """(n, C) int64 candidate item ids for ``n`` requests at ``clock``: distinct within a
        row, live at ``clock`` (never retired, already released)."""
        ...

    def record_clicks(self, items: np.ndarray) -> None:
        """The items (m,) the users clicked in a served batch (for popularity)."""
        ...

    def catalogue_changed(self) -> None:
        """The catalogue changed (items released or retired): stop serving cached pools."""
        ...


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest ``values`` (in no particular order)."""
    if n >= len(values):
        return np.arange(len(values))
    return np.argpartition(-values, n - 1)[:n]


class PooledRetrieval:
    """Popular + fresh + random candidates, from three disjoint pools of the live catalogue.

    Popular: the top ``popular_pool`` items by clicks decayed with ``popularity_half_life``
    (starting from the catalogue's tiny quality-based ``popularity_prior``, so that the first
    pool holds good items rather than the lowest ids). Fresh: the ``fresh_pool`` most recently
    released. Random: the rest. Each pool contributes a uniformly random subset of its items in
    the shares ``popular_fraction``, ``fresh_fraction`` and the rest; a request takes a
    contiguous window of a fresh random permutation of the pool, which is distinct within the row
    and marginally uniform, at O(n C) cost. Pools are rebuilt every ``retrieval_refresh``
    requests and after a catalogue change.

    Attributes:
        popularity: (n_items,) float64 decayed click counts (as of the last pool rebuild).
    """

    def __init__(self, config: WorldConfig, items: ItemCatalogue) -> None:
        self.config = config
        self.items = items
        self.popularity = items.popularity_prior.copy()
        self._decay = 0.5 ** (1.0 / config.popularity_half_life)
        self._recent_clicks = np.zeros(config.num_items)
        self._pools: list[tuple[np.ndarray, int]] | None = None
        self._pools_until = 0
        self._popularity_t = 0

    def record_clicks(self, items: np.ndarray) -> None:
        self._recent_clicks += np.bincount(items, minlength=self.config.num_items)

    def catalogue_changed(self) -> None:
        self._pools = None

    def pools(self, clock: int) -> list[tuple[np.ndarray, int]]:
        """Disjoint (pool of item ids, count) pairs: popular, fresh and random candidates."""
        cfg = self.config
        if self._pools is not None and clock < self._pools_until:
            return self._pools
        items = self.items
        self.popularity = (
            self.popularity * self._decay ** (clock - self._popularity_t) + self._recent_clicks
        )
        self._recent_clicks[:] = 0
        self._popularity_t = clock
        live = np.flatnonzero(items.available(clock))
        if len(live) < cfg.num_candidates:
            raise RuntimeError(
                f"only {len(live)} items are live at t={clock}, fewer than "
                f"num_candidates={cfg.num_candidates}"
            )
        n_pop = min(round(cfg.num_candidates * cfg.popular_fraction), cfg.popular_pool)
        n_fresh = min(round(cfg.num_candidates * cfg.fresh_fraction), cfg.fresh_pool)
        taken = np.zeros(len(live), dtype=bool)
        pop = _top(self.popularity[live], min(cfg.popular_pool, len(live)))
        taken[pop] = True
        rest = np.flatnonzero(~taken)
        fresh = rest[_top(items.arrival[live[rest]], cfg.fresh_pool)]
        taken[fresh] = True
        other = np.flatnonzero(~taken)
        n_pop, n_fresh = min(n_pop, len(pop)), min(n_fresh, len(fresh))
        n_rand = cfg.num_candidates - n_pop - n_fresh
        if n_rand > len(other):  # tiny catalogues: fall back to one uniform pool
            pools = [(live, cfg.num_candidates)]
        else:
            pools = [(live[pop], n_pop), (live[fresh], n_fresh), (live[other], n_rand)]
        self._pools = [(pool, count) for pool, count in pools if count > 0]
        self._pools_until = clock + cfg.retrieval_refresh
        return self._pools

    def retrieve(self, n: int, clock: int, rng: np.random.Generator) -> np.ndarray:
        candidates = np.empty((n, self.config.num_candidates), dtype=np.int64)
        offset = 0
        for pool, count in self.pools(clock):
            block = candidates[:, offset : offset + count]
            if n <= FEW_REQUESTS:
                for row in block:
                    row[:] = rng.choice(pool, count, replace=False)
            else:
                shuffled = pool[rng.permutation(len(pool))]
                extended = np.concatenate([shuffled, shuffled[:count]])
                start = rng.integers(0, len(pool), n)
                block[:] = extended.take(start[:, None] + np.arange(count))
            offset += count
        return candidates

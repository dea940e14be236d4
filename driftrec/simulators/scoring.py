"""The true utilities of a batch of requests,
s_ui = beta <theta_u, phi_i> + q_i - boredom_u(topic_i): the world's hottest computation, in the
forms measured fastest (``World`` calls it)."""

from __future__ import annotations

import numpy as np

from driftrec.simulators.population import ItemCatalogue, UserPopulation
from driftrec.simulators.requests import item_rows, lean

__all__ = ["UTILITY_CHUNK_BYTES", "true_utilities", "utility_chunk_rows"]

UTILITY_CHUNK_BYTES = 1 << 21
"""Bytes of candidate latent vectors gathered at once when scoring a batch (measured best at
1-2 MiB, the size of a core's L2 cache, on the machines we run; see :func:`true_utilities`)."""


def utility_chunk_rows(num_candidates: int, phi: np.ndarray) -> int:
    """Requests whose candidates' latent vectors make one chunk of :data:`UTILITY_CHUNK_BYTES`."""
    return max(1, UTILITY_CHUNK_BYTES // max(1, num_candidates * phi.shape[1] * phi.itemsize))


def true_utilities(
    population: UserPopulation,
    items: ItemCatalogue,
    affinity_scale: float,
    users: np.ndarray,
    candidates: np.ndarray,
    topics: np.ndarray | None,
    index: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(n, C) float32 utilities of ``candidates`` (n, C) for ``users`` (n,) under the current
    state; without boredom when ``topics`` (the candidates' topics) is None. ``index``: the
    batch's distinct items and each candidate's position among them (``item_rows``)."""
    if lean(len(users)):
        return _one_row(population, items, affinity_scale, int(users[0]), candidates, topics)
    # The affinity scale multiplies the n user vectors (n d products) rather than the n C
    # affinities (a Python float times float32 is a float32 product).
    theta = population.theta.take(users, axis=0)
    theta *= affinity_scale
    theta = theta[:, :, None]  # (n, d, 1)
    n, c = candidates.shape
    # With an index: the batch's distinct items' latent vectors, once each, by position.
    phi, positions = items.phi, candidates
    if index is not None:
        phi, positions = phi.take(index[0], axis=0), index[1]
    rows = utility_chunk_rows(c, phi)
    if n <= rows:  # one chunk (every single request)
        util: np.ndarray = np.matmul(phi.take(positions, axis=0), theta)[:, :, 0]
    else:
        # The (n, C, d) gather of the latent vectors (26 MB at n=4096, C=100, d=16), whole,
        # is written out to memory and read back by the product; in chunks of rows it stays
        # in the cache. Each row's product is computed alone: the chunks change nothing.
        util = np.empty((n, c), dtype=np.result_type(phi, theta))
        for start in range(0, n, rows):
            chunk = slice(start, start + rows)
            block = phi.take(positions[chunk], axis=0)
            np.matmul(block, theta[chunk], out=util[chunk, :, None])
    util += item_rows(items.quality, candidates, index)
    if topics is not None:
        # The users' boredom rows first (n of them), then each row's entries by topic: in a
        # large population the per-candidate lookups then read n compact rows, not rows
        # scattered over the whole table (and its pages).
        boredom = population.boredom.take(users, axis=0)
        num_topics = boredom.shape[1]
        flat = np.arange(0, n * num_topics, num_topics)[:, None] + topics
        util -= boredom.ravel().take(flat)
    return util


def _one_row(
    population: UserPopulation,
    items: ItemCatalogue,
    affinity_scale: float,
    user: int,
    candidates: np.ndarray,
    topics: np.ndarray | None,
) -> np.ndarray:
    """:func:`true_utilities` of one request: the same float32 products (one matrix-vector
    product is the BLAS call the batched product makes for each row) without the batch axes."""
    theta = population.theta[user] * affinity_scale
    util: np.ndarray = items.phi.take(candidates[0], axis=0).dot(theta)[None]
    util += items.quality.take(candidates)
    if topics is not None:
        util -= population.boredom[user].take(topics)
    return util

"""Stores of past examples: a recent window, everything seen, a bounded reservoir, and none.

Stores are plain containers: the trainer adds to them, data sources read from them. Each keeps
numpy columns grown geometrically as it fills (up to its capacity, at most ``MAX_SIZE`` = 10**8
examples), so adding a micro-batch is a few array copies and no Python loop, and a large
capacity costs memory only as examples arrive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from driftrec.agents.examples import SlateExamples
from driftrec.validation import MAX_SIZE, check_integer, check_optional_integer

__all__ = ["CumulativeStore", "NoStore", "RecentWindow", "ReplayBuffer"]

_FIRST_ROWS = 1024
"""Rows a store allocates first (or its capacity, if smaller)."""


def _room(
    data: SlateExamples | None, rows: SlateExamples, used: int, need: int, capacity: int
) -> SlateExamples:
    """Storage for at least ``min(need, capacity)`` rows shaped like ``rows``: ``data`` if it
    is large enough, else a copy of its first ``used`` rows in columns grown geometrically (at
    least double, at most ``capacity``)."""
    have = 0 if data is None else len(data)
    need = min(need, capacity)
    if data is not None and need <= have:
        return data
    grown = SlateExamples.empty_like(rows, min(capacity, max(need, 2 * have, _FIRST_ROWS)))
    if data is not None and used:
        grown.put(slice(0, used), data.take(slice(0, used)))
    return grown


def _saved(data: SlateExamples | None) -> dict[str, torch.Tensor] | None:
    return None if data is None else data.state_dict()


def _loaded(state: dict[str, torch.Tensor] | None) -> SlateExamples | None:
    return None if state is None else SlateExamples.from_state_dict(state)


class NoStore:
    """The store of a data source that reads none (online learning): it keeps nothing."""

    def __len__(self) -> int:
        return 0

    def add(self, rows: SlateExamples, rng: np.random.Generator | None = None) -> None:
        """Keep nothing."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class RecentWindow:
    """The last ``capacity`` examples (a ring buffer, ``capacity`` in [1, 10**8]), oldest
    first when read."""

    def __init__(self, capacity: int) -> None:
        self.capacity = check_integer("capacity", capacity, minimum=1, maximum=MAX_SIZE)
        self.data: SlateExamples | None = None
        self.size = 0
        self.head = 0  # next slot to write

    def __len__(self) -> int:
        return self.size

    def add(self, rows: SlateExamples, rng: np.random.Generator | None = None) -> None:
        """Append ``rows`` (``rng`` is unused: the common store signature)."""
        if len(rows) >= self.capacity:
            rows = rows.take(slice(len(rows) - self.capacity, None))
        # Until the ring first wraps, head == size and rows go to [head, head + n).
        self.data = _room(self.data, rows, self.size, self.head + len(rows), self.capacity)
        idx = (self.head + np.arange(len(rows))) % self.capacity
        self.data.put(idx, rows)
        self.head = int((self.head + len(rows)) % self.capacity)
        self.size = min(self.capacity, self.size + len(rows))

    def recent(self, n: int | None = None) -> SlateExamples | None:
        """The newest ``min(n, len)`` examples (all by default), oldest first; None if empty."""
        n = self.size if n is None else min(n, self.size)
        if self.data is None or n <= 0:
            return None
        idx = (self.head - n + np.arange(n)) % self.capacity
        return self.data.take(idx)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values (see ``SlateExamples.state_dict``)."""
        return {"data": _saved(self.data), "size": self.size, "head": self.head}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data, self.size, self.head = _loaded(state["data"]), state["size"], state["head"]


class CumulativeStore:
    """Every example seen (growing by doubling), optionally only the last ``max_size`` (in
    [1, 10**8])."""

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = check_optional_integer("max_size", max_size, minimum=1, maximum=MAX_SIZE)
        self.data: SlateExamples | None = None
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, rows: SlateExamples, rng: np.random.Generator | None = None) -> None:
        """Append ``rows`` (``rng`` is unused: the common store signature)."""
        need = self.size + len(rows)
        # it holds ``need`` rows until trimmed to ``max_size`` below
        capacity = (MAX_SIZE if self.max_size is None else self.max_size) + len(rows)
        self.data = _room(self.data, rows, self.size, need, capacity)
        self.data.put(slice(self.size, need), rows)
        self.size = need
        if self.max_size is not None and self.size > self.max_size:
            keep = self.data.take(slice(self.size - self.max_size, self.size))
            self.data.put(slice(0, self.max_size), keep)
            self.size = self.max_size

    def all(self) -> SlateExamples | None:
        if self.data is None or self.size == 0:
            return None
        return self.data.take(slice(0, self.size))

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values (see ``SlateExamples.state_dict``)."""
        return {"data": _saved(self.all()), "size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data, self.size = None, 0
        saved = _loaded(state["data"])
        if saved is not None:
            self.add(saved)


class ReplayBuffer:
    """A bounded uniform sample of everything seen: reservoir sampling (Vitter 1985,
    "Random sampling with a reservoir", ACM TOMS, Algorithm R), as used for experience replay
    in continual learning (Rolnick et al. 2019; Chaudhry et al. 2019, "On tiny episodic
    memories in continual learning").

    After ``n`` examples have been offered, each of them is in the buffer with probability
    ``min(1, capacity / n)``, whatever the order they came in: memory is bounded, and old
    regimes keep their share. ``capacity`` is in [1, 10**8].
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_integer("capacity", capacity, minimum=1, maximum=MAX_SIZE)
        self.data: SlateExamples | None = None
        self.size = 0
        self.seen = 0

    def __len__(self) -> int:
        return self.size

    def add(self, rows: SlateExamples, rng: np.random.Generator) -> None:
        """Offer ``rows`` to the reservoir."""
        n = len(rows)
        # Slots fill in order until the buffer is full; only then are rows replaced.
        self.data = _room(self.data, rows, self.size, self.size + n, self.capacity)
        free = min(self.capacity - self.size, n)
        if free:
            self.data.put(slice(self.size, self.size + free), rows.take(slice(0, free)))
            self.size += free
        rest = np.arange(free, n)
        if len(rest):
            # Algorithm R, vectorised: row i (the (seen+i+1)-th example) replaces a uniform slot
            # in [0, seen+i] if that slot is inside the buffer. When several rows hit one slot,
            # the last one wins, exactly as in the sequential algorithm.
            slot = rng.integers(0, self.seen + rest + 1)
            hit = slot < self.capacity
            slot, src = slot[hit], rest[hit]
            last = len(slot) - 1 - np.unique(slot[::-1], return_index=True)[1]
            self.data.put(slot[last], rows.take(src[last]))
        self.seen += n

    def sample(self, n: int, rng: np.random.Generator) -> SlateExamples | None:
        """``n`` examples drawn uniformly with replacement; None while empty."""
        if self.data is None or self.size == 0 or n <= 0:
            return None
        return self.data.take(rng.integers(0, self.size, n))

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values (see ``SlateExamples.state_dict``)."""
        return {"data": _saved(self.data), "size": self.size, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data, self.size, self.seen = _loaded(state["data"]), state["size"], state["seen"]

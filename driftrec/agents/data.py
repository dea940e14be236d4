"""What to train on: the fresh micro-batch, a recent window, everything seen, or the fresh
micro-batch mixed with a replay sample.

A data source is a frozen configuration. It makes the store it needs (the trainer owns it and
adds every fresh micro-batch to it *after* the update), and, given that store and the fresh
micro-batch, says which examples an update trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from driftrec.agents.buffers import CumulativeStore, NoStore, RecentWindow, ReplayBuffer
from driftrec.agents.examples import SlateExamples
from driftrec.validation import MAX_SIZE, check_integer, check_optional_integer, check_real

__all__ = ["MAX_EXAMPLES", "Cumulative", "DataSource", "FreshData", "Replay", "Store", "Window"]

MAX_EXAMPLES = MAX_SIZE
"""The most requests a store may be asked to hold (a window's size, a history's or a
reservoir's capacity): far beyond any run's memory, and small enough to refuse a typo
(10**15 raised MemoryError at the first observed batch)."""
MAX_RATIO = 100.0
"""The largest replay ratio (replayed examples per fresh one)."""


def check_requests(name: str, value: Any, *, minimum: int = 1) -> int:
    """A count of requests the agent holds in memory at once (a window, a store, logged data):
    an integer in ``[minimum, MAX_EXAMPLES]`` (10**8)."""
    value = check_integer(name, value, minimum=minimum)
    if value > MAX_EXAMPLES:
        raise ValueError(
            f"{name} must be an integer in [{minimum}, 10**8] (requests held in memory), got "
            f"{value:.3g}"
        )
    return value


class Store(Protocol):
    """Past examples a data source reads; the trainer adds every fresh micro-batch."""

    def __len__(self) -> int: ...

    def add(self, rows: SlateExamples, rng: np.random.Generator) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


S = TypeVar("S", bound=Store)


class DataSource(Protocol[S]):
    """What an update trains on, read from the store (of type ``S``) that the source makes."""

    def make_store(self) -> S:
        """The store this source reads (a :class:`~driftrec.agents.buffers.NoStore` if it
        reads none)."""
        ...

    def training_data(
        self, store: S, fresh: SlateExamples, rng: np.random.Generator
    ) -> SlateExamples:
        """The examples an update trains on, given the store (before ``fresh`` is added)."""
        ...


@dataclass(frozen=True)
class FreshData:
    """Only the micro-batch just observed (online learning)."""

    def make_store(self) -> NoStore:
        return NoStore()

    def training_data(
        self, store: NoStore, fresh: SlateExamples, rng: np.random.Generator
    ) -> SlateExamples:
        return fresh


@dataclass(frozen=True)
class Window:
    """The last ``size`` requests (including the fresh micro-batch), ``size`` in [1, 10**8].

    An update runs after a full micro-batch, so a window smaller than the micro-batch would
    train on the whole micro-batch: the trainer refuses it (:meth:`check_micro_batch`)."""

    size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_requests("size", self.size))

    def check_micro_batch(self, micro_batch: int) -> None:
        """Refuse a window smaller than the micro-batch it would always be outgrown by."""
        if self.size < micro_batch:
            raise ValueError(
                f"a window of {self.size} requests is smaller than the micro-batch "
                f"({micro_batch}): every update trains on a whole micro-batch; use a window "
                f"(window, train_on or warmup) of at least micro_batch={micro_batch}, or a "
                f"smaller micro_batch"
            )

    def make_store(self) -> RecentWindow:
        return RecentWindow(self.size)

    def training_data(
        self, store: RecentWindow, fresh: SlateExamples, rng: np.random.Generator
    ) -> SlateExamples:
        older = store.recent(self.size - len(fresh)) if len(fresh) < self.size else None
        return fresh if older is None else SlateExamples.concat([older, fresh])


@dataclass(frozen=True)
class Cumulative:
    """Everything observed on the stream so far (only the last ``max_size``, at most 10**8, if
    set, to bound memory); logged data given to ``pretrain`` is not part of it."""

    max_size: int | None = None

    def __post_init__(self) -> None:
        max_size = check_optional_integer("max_size", self.max_size, minimum=1)
        max_size = None if max_size is None else check_requests("max_size", max_size)
        object.__setattr__(self, "max_size", max_size)

    def make_store(self) -> CumulativeStore:
        return CumulativeStore(self.max_size)

    def training_data(
        self, store: CumulativeStore, fresh: SlateExamples, rng: np.random.Generator
    ) -> SlateExamples:
        seen = store.all()
        return fresh if seen is None else SlateExamples.concat([seen, fresh])


@dataclass(frozen=True)
class Replay:
    """The fresh micro-batch plus ``ratio`` times as many examples drawn from a reservoir
    :class:`~driftrec.agents.buffers.ReplayBuffer` of ``capacity`` past requests (``capacity``
    in [1, 10**8], ``ratio`` in [0, 100])."""

    capacity: int = 10_000
    ratio: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "capacity", check_requests("capacity", self.capacity))
        ratio = check_real("ratio", self.ratio, low=0.0, high=MAX_RATIO)
        object.__setattr__(self, "ratio", ratio)

    def make_store(self) -> ReplayBuffer:
        return ReplayBuffer(self.capacity)

    def training_data(
        self, store: ReplayBuffer, fresh: SlateExamples, rng: np.random.Generator
    ) -> SlateExamples:
        old = store.sample(round(self.ratio * len(fresh)), rng)
        return fresh if old is None else SlateExamples.concat([fresh, old])

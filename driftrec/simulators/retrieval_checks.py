"""The contract every retriever keeps, checked: a retriever's methods when its world is built
(:func:`check_retriever`), and every batch of candidates a retriever other than the built-in
:class:`~driftrec.simulators.PooledRetrieval` returns (:func:`check_candidates`): a user's
retriever that breaks the contract stops the run at that batch, naming the rule, instead of
serving items that do not exist or are not live."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from driftrec.simulators.config import WorldConfig
    from driftrec.simulators.population import ItemCatalogue

__all__ = ["check_candidates", "check_retriever"]

_METHODS = ("retrieve", "record_clicks", "catalogue_changed")


def check_retriever(retriever: Any, config: WorldConfig, items: ItemCatalogue) -> None:
    """Refuse, when its world (``config``, ``items``) is built, a retriever that:

    - lacks a :class:`Retrieval` method (``TypeError``);

    - cannot be deep-copied (world snapshots, and so the frozen oracle, copy it);
    - returns candidates that break :func:`check_candidates` for a first batch of 4 requests
      at t=0;
    - returns different candidates for the same random generator (it draws from NumPy's or
      Python's global streams: runs would not repeat).

    The probes run on two deep copies (the world's catalogue shared, not copied), each asked
    for the same batch with a fresh generator: the retriever itself and the world's streams
    are untouched.
    """
    name = type(retriever).__name__
    missing = [m for m in _METHODS if not callable(getattr(retriever, m, None))]
    if missing:
        raise TypeError(
            f"retriever {name} lacks {missing}: a retriever has the methods "
            f"{list(_METHODS)} (driftrec.simulators.retrieval.Retrieval)"
        )
    shared = {id(items): items, id(config): config}
    try:
        copies = [copy.deepcopy(retriever, dict(shared)) for _ in range(2)]
    except Exception as error:
        raise TypeError(
            f"retriever {name} cannot be deep-copied ({type(error).__name__}: {error}); world "
            "snapshots copy it (hold no locks, open files or generators that cannot be copied)"
        ) from error
    c = config.num_candidates
    first, second = (
        check_candidates(r.retrieve(4, 0, np.random.default_rng(0)), 4, c, items, 0, name)
        for r in copies
    )
    if not np.array_equal(first, second):
        raise ValueError(
            f"retriever {name}: retrieve(4, 0, rng) gave different candidates for two "
            "generators of the same seed: draw only from the rng it is given (NumPy's or "
            "Python's global random functions make runs irreproducible)"
        )


def check_candidates(
    candidates: Any, n: int, num_candidates: int, items: ItemCatalogue, clock: int, name: str
) -> np.ndarray:
    """A retriever's candidates for ``n`` requests at ``clock``, checked against the
    :class:`Retrieval` contract: an (n, C) integer array of item ids, each row distinct, every
    item live at ``clock`` (released, not retired). Returns them as a new int64 array. Costs
    a copy, a sort of each row and two gathers (2.5-15 ms for 4,096 requests of 100).

    Raises:
        ValueError (TypeError for the dtype) naming the retriever ``name``, the rule and the
        first request at fault.
    """
    arr = np.asarray(candidates)
    where = f"retriever {name} at t={clock}: retrieve({n}) returned"
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where} {arr.dtype} values; expected integer item ids")
    if arr.shape != (n, num_candidates):
        raise ValueError(f"{where} shape {arr.shape}; expected ({n}, {num_candidates})")
    # A copy: a retriever may hand out a buffer it reuses, and observations keep the ids.
    arr = np.array(arr, dtype=np.int64)
    if arr.size == 0:
        return arr
    num_items = len(items.arrival)
    if arr.min() < 0 or arr.max() >= num_items:
        raise ValueError(
            f"{where} item ids from {arr.min()} to {arr.max()}; expected ids in "
            f"[0, {num_items - 1}]"
        )
    # Sorting int32 ids is about twice as fast as int64 (4096 x 100: 0.7 against 2.2 ms).
    narrow = arr.astype(np.int32) if num_items <= np.iinfo(np.int32).max else arr
    ordered = np.sort(narrow, axis=1)
    rows = {
        "an item twice in one request": (ordered[:, 1:] == ordered[:, :-1]).any(axis=1),
        "items not live (not yet released, or retired)": (
            (items.arrival.take(arr) > clock) | (items.retirement.take(arr) <= clock)
        ).any(axis=1),
    }
    for rule, bad in rows.items():
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{where} {rule} at request {row}: {arr[row].tolist()}")
    return arr

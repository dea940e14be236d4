"""The contract every retriever keeps, checked: a retriever's methods when its world is built
(:func:`check_retriever`), and every batch of candidates a retriever other than the built-in
:class:`~driftrec.simulators.PooledRetrieval` returns (:func:`check_candidates`): a user's
retriever that breaks the contract stops the run at that batch, naming the rule, instead of
serving items that do not exist or are not live."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftrec.simulators.population import ItemCatalogue

__all__ = ["check_candidates", "check_retriever"]

_METHODS = ("retrieve", "record_clicks", "catalogue_changed")


def check_retriever(retriever: Any) -> None:
    """A ``TypeError`` unless ``retriever`` has the :class:`Retrieval` methods."""
    missing = [m for m in _METHODS if not callable(getattr(retriever, m, None))]
    if missing:
        raise TypeError(
            f"retriever {type(retriever).__name__} lacks {missing}: a retriever has the methods "
            f"{list(_METHODS)} (driftrec.simulators.retrieval.Retrieval)"
        )


def check_candidates(
    candidates: Any, n: int, num_candidates: int, items: ItemCatalogue, clock: int, name: str
) -> np.ndarray:
    """A retriever's candidates for ``n`` requests at ``clock``, checked against the
    :class:`Retrieval` contract: an (n, C) integer array of item ids, each row distinct, every
    item live at ``clock`` (released, not retired). Returns them as int64.

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
    arr = arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return arr
    num_items = len(items.arrival)
    if arr.min() < 0 or arr.max() >= num_items:
        raise ValueError(
            f"{where} item ids from {arr.min()} to {arr.max()}; expected ids in "
            f"[0, {num_items - 1}]"
        )
    ordered = np.sort(arr, axis=1)
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

"""A batch of recommendation requests with the ground truth behind them, and what happened when
slates were served to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the choice models import this module, config them
    from driftrec.simulators.drift import DriftEvent

__all__ = [
    "LEAN_SINGLE_REQUEST",
    "Requests",
    "Response",
    "at_slots",
    "item_rows",
    "lean",
    "slot_items",
    "slot_values",
]

LEAN_SINGLE_REQUEST = True
"""Serve a batch of one request (every step of the single environment) through scalar code
where the batched code would make many tiny NumPy calls. Each such place computes exactly what
the batched code computes for one row, to the bit, and consumes the same random numbers; the
batched code is the definition. Tests switch this off to check that both give the same
trajectories (``tests/envs/test_envs.py``, over seven scenarios), and benchmarks to compare them.

The scalar places are the calls of :func:`lean`: the action check (``envs.spaces``), the
session step (``sessions``), utilities (``world``), click probabilities, the oracle's value,
sums over slots and the click draw (``choice``), slot lookups (``requests``), consumption
(``consumption``) and popularity upkeep (``retrieval``). The one-request retrieval plan
(``retrieval._RowPlan``) is not one of them: it draws differently, and is tested on its own
(``tests/simulators/test_world.py``)."""


def lean(n: int) -> bool:
    """Whether a batch of ``n`` requests takes the scalar code (see
    :data:`LEAN_SINGLE_REQUEST`)."""
    return n == 1 and LEAN_SINGLE_REQUEST


@dataclass
class Requests:
    """A batch of recommendation requests and the true utilities behind them.

    Attributes:
        t: world clock of the first request (request i is served at t + i).
        users: (n,) int64 user ids.
        candidates: (n, C) int64 candidate item ids, distinct within a row.
        utilities: (n, C) float32 true utility of each candidate for its user, at request time.
        values: (n, C) float32 value of a click on each candidate (engagement reward), or None
            when the reward is the click itself.
        topics: (n, C) int64 topic of each candidate.
    """

    t: int
    users: np.ndarray
    candidates: np.ndarray
    utilities: np.ndarray
    values: np.ndarray | None
    topics: np.ndarray
    index: tuple[np.ndarray, np.ndarray] | None = None
    """(items (m,), positions (n, C)) with ``candidates == items[positions]`` when the
    retriever gave one (large catalogues): item rows are then gathered through it
    (:func:`item_rows`)."""

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Requests:
        """The requests at ``rows`` (same clock ``t``: serve them instead of the whole batch)."""
        return Requests(
            t=self.t,
            users=self.users[rows],
            candidates=self.candidates[rows],
            utilities=self.utilities[rows],
            values=None if self.values is None else self.values[rows],
            topics=self.topics[rows],
            index=None if self.index is None else (self.index[0], self.index[1][rows]),
        )


def item_rows(
    table: np.ndarray, candidates: np.ndarray, index: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """``table``'s rows (a per-item array) for the candidates (n, C): through ``index``, each
    distinct item's row is read once from the catalogue and the candidates' from that compact
    copy (the same values)."""
    if index is None:
        rows: np.ndarray = table.take(candidates, axis=0)
        return rows
    items, positions = index
    compact: np.ndarray = table.take(items, axis=0).take(positions, axis=0)
    return compact


@dataclass
class Response:
    """What happened when a batch of slates was served.

    Attributes:
        click_slot: (n,) int64 slot the agent observes as clicked, -1 for none (after any
            click noise or bot traffic).
        true_click_slot: (n,) int64 slot the user really clicked, -1 for none.
        clicked_item: (n,) int64 item id of the observed click, -1 for none.
        reward: (n,) float32 observed reward (1 per click, or the sampled engagement).
        expected_reward: (n,) float64 exact expected reward of the served slate.
        oracle_expected_reward: (n,) float64 expected reward of the best slate for the request.
        events: drift events that fired when the clock advanced past this batch.
    """

    click_slot: np.ndarray
    true_click_slot: np.ndarray
    clicked_item: np.ndarray
    reward: np.ndarray
    expected_reward: np.ndarray
    oracle_expected_reward: np.ndarray
    events: tuple[DriftEvent, ...]


def slot_values(requests: Requests, slates: np.ndarray) -> np.ndarray | None:
    """(n, k) value of a click on each slot of ``slates`` (engagement reward), or None when the
    reward is the click itself."""
    if requests.values is None:
        return None
    return at_slots(requests.values, slates)


def at_slots(table: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """(n, k) entries of ``table`` (n, C) at the slates' positions (row by row; an empty slot
    reads position 0)."""
    positions = np.maximum(slates, 0)
    if lean(len(table)):
        # One row: the flat index of (0, j) is j, so a flat take is the same gather without
        # take_along_axis's index construction.
        return table.take(positions)
    # A flat take at row * C + position: take_along_axis's gather, at half its cost.
    flat = positions + np.arange(0, table.size, table.shape[1])[:, None]
    return table.reshape(-1).take(flat)


def slot_items(requests: Requests, slates: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """(n,) item id in each row's ``slot`` of its slate (-1 where ``slot`` is -1; an empty
    slot reads the first candidate, as click noise may report one)."""
    if lean(len(slot)):  # one row: the same lookups on Python ints
        chosen = int(slot[0])
        if chosen >= 0:
            chosen = int(requests.candidates[0, max(int(slates[0, chosen]), 0)])
        return np.array([chosen], dtype=np.int64)
    position = at_slots(slates, slot[:, None])
    chosen_items = at_slots(requests.candidates, position)[:, 0]
    items: np.ndarray = np.where(slot >= 0, chosen_items, -1)
    return items

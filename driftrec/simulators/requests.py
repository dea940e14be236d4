"""A batch of recommendation requests with the ground truth behind them, and what happened when
slates were served to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.simulators.drift import DriftEvent

__all__ = ["Requests", "Response", "slot_values"]


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
        )


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
    return np.take_along_axis(requests.values, np.maximum(slates, 0), axis=1)

"""What serving a slate does to the users who saw it: boredom (decay at every request, a rise
for the clicked topic, monotony for topics a slate repeats) and click histories. Functions of
the user state, called by ``World.respond``."""

from __future__ import annotations

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.population import UserPopulation
from driftrec.simulators.requests import Requests, at_slots, lean
from driftrec.slates import empty_repeats

__all__ = ["consume", "tire"]


def consume(
    state: UserPopulation,
    topic: np.ndarray,
    cfg: WorldConfig,
    users: np.ndarray,
    items: np.ndarray,
    clicked: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Every served user's boredom decays; clicked topics bore; clicked items enter histories.

    Args:
        state: the users (``boredom`` and ``history`` change in place).
        topic: (num_items,) topic of every item.
        cfg: the world's configuration.
        users: (n,) the served users; items: (n,) the clicked item or -1; clicked: (n,) bool.

    Returns:
        (users, items) of the clicks, or None when nothing was clicked.
    """
    if lean(len(users)):
        # One request: the same float32 updates of one user's row, made in place on it
        # (a fancy-indexed read-modify-write and add.at of one element do the same).
        user = int(users[0])
        if cfg.boredom_decay < 1.0:
            state.boredom[user] *= np.float32(cfg.boredom_decay)
        if not clicked[0]:
            return None
        item = int(items[0])
        if cfg.boredom_increment:
            state.boredom[user, topic[item]] += np.float32(cfg.boredom_increment)
        history = state.history[user]
        history[1:] = history[:-1]  # NumPy copies overlapping views first
        history[0] = item
        return users, items
    if cfg.boredom_decay < 1.0:
        # What boredom[users] *= decay does (a user twice in the batch decays once), with
        # take's faster gather of the rows.
        rows = state.boredom.take(users, axis=0)
        rows *= np.float32(cfg.boredom_decay)
        state.boredom[users] = rows
    u, i = users[clicked], items[clicked]
    if len(u) == 0:
        return None
    if cfg.boredom_increment:
        np.add.at(state.boredom, (u, topic[i]), np.float32(cfg.boredom_increment))
    shifted = np.empty((len(u), state.history.shape[1]), dtype=state.history.dtype)
    shifted[:, 0] = i
    shifted[:, 1:] = state.history.take(u, axis=0)[:, :-1]
    state.history[u] = shifted
    return u, i


def tire(boredom: np.ndarray, requests: Requests, slates: np.ndarray, increment: float) -> None:
    """Monotony: every shown item whose topic an earlier slot of the same slate already showed
    adds ``increment`` to the user's boredom with that topic (``boredom`` changes in place)."""
    topics = at_slots(requests.topics, slates)
    # Empty slots get distinct negative marks, so they repeat nothing and nothing repeats them.
    marked = np.where(slates >= 0, topics, -1 - np.arange(slates.shape[1]))
    repeat = empty_repeats(marked) != marked  # (n, k): slot j repeats an earlier topic
    if repeat.any():
        users = np.broadcast_to(requests.users[:, None], repeat.shape)[repeat]
        np.add.at(boredom, (users, topics[repeat]), np.float32(increment))

"""What a slate action means, in one place for the environments and the agents.

An action is ``k`` positions into the request's candidate list. Every sample of the action space
is valid (RL libraries sample it), so a repeated position needs a meaning: the item is shown
once, at its first slot, and every later slot holding the same position stays empty. Internally
an empty slot is ``-1``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["empty_repeats", "slates_to_action"]


def empty_repeats(positions: np.ndarray) -> np.ndarray:
    """Slates from actions: (B, k) int64 positions, ``-1`` at every slot that repeats a position
    shown at an earlier slot of the same row. Returns a new array.

    Example:
        >>> empty_repeats(np.array([[3, 1, 3, 1, 0]]))
        array([[ 3,  1, -1, -1,  0]])
    """
    slates = np.array(positions, dtype=np.int64, copy=True)
    if slates.ndim != 2:
        raise ValueError(f"a batch of actions has shape (B, k), got {slates.shape}")
    # A stable sort keeps equal positions in slot order, so each repeat follows its first show.
    order = np.argsort(slates, axis=1, kind="stable")
    ordered = np.take_along_axis(slates, order, axis=1)
    repeat = ordered[:, 1:] == ordered[:, :-1]
    if repeat.any():
        rows = np.broadcast_to(np.arange(len(slates))[:, None], repeat.shape)
        slates[rows[repeat], order[:, 1:][repeat]] = -1
    return slates


def slates_to_action(slates: np.ndarray) -> np.ndarray:
    """Actions from slates with empty slots (-1): an empty slot repeats the slot-0 position, so
    that ``empty_repeats(slates_to_action(s))`` gives back ``s`` wherever slot 0 is shown.

    Example:
        >>> slates_to_action(np.array([[4, -1, 2]]))
        array([[4, 4, 2]])
    """
    slates = np.asarray(slates)
    return np.where(slates >= 0, slates, slates[:, :1]).astype(np.int64)

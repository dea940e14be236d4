"""What a slate action means, in one place for the environments and the agents.

An action is ``k`` positions into the request's candidate list. Every sample of the action space
is valid (RL libraries sample it), so a repeated position needs a meaning: the item is shown
once, at its first slot, and every later slot holding the same position stays empty. Internally
an empty slot is ``-1``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_slates",
    "check_positions",
    "empty_repeats",
    "slates_to_action",
    "topic_diverse_top_k",
]


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
    # Slot j repeats when it equals any earlier slot i: k (k - 1) / 2 comparisons of whole
    # slots, each a contiguous (B,) row once the slots are the leading axis (for slates of
    # up to about 100 slots, several times faster than a stable sort of every row).
    by_slot = slates.T.copy()  # (k, B)
    repeat = np.zeros(by_slot.shape, dtype=bool)
    for i in range(len(by_slot) - 1):
        repeat[i + 1 :] |= by_slot[i + 1 :] == by_slot[i]
    np.putmask(slates, repeat.T, -1)
    return slates


def check_positions(
    value: object,
    shape: tuple[int, ...],
    num_candidates: int,
    *,
    name: str = "slates",
    empty: bool = True,
) -> np.ndarray:
    """``value`` as an integer array of ``shape`` of candidate positions in
    ``[0, num_candidates)``, and -1 (an empty slot) if ``empty``: the one check of an action
    (the environments, ``empty=False``) or of slates (the world, probes and sessions).

    Raises:
        TypeError / ValueError naming ``name``, the expected dtype, shape or range.
    """
    arr = np.asarray(value)
    c = num_candidates
    low, slot = (-1, " (-1: an empty slot)") if empty else (0, "")
    if arr.dtype.kind not in "iu":  # booleans and objects are not positions
        hint = " (it contains NaN)" if arr.dtype.kind == "f" and np.isnan(arr).any() else ""
        raise TypeError(
            f"{name} must be an integer array of shape {shape} of candidate positions in "
            f"[0, {c - 1}]{slot}, got dtype {arr.dtype}{hint}; e.g. "
            f"np.argsort(-scores)[..., :{shape[-1]}]"
        )
    if arr.shape != shape:
        raise ValueError(f"{name} must be an integer array of shape {shape}, got shape {arr.shape}")
    if arr.size and (arr.min() < low or arr.max() >= c):
        raise ValueError(
            f"{name} positions must be in [0, {c - 1}] (indices into the candidate list)"
            f"{' or -1 for an empty slot' if empty else ''}, got values from {arr.min()} to "
            f"{arr.max()}"
        )
    return arr


def as_slates(slates: object, n: int, slate_size: int, num_candidates: int) -> np.ndarray:
    """Checked slates for ``n`` requests: (n, k) int64 candidate positions, -1 an empty slot,
    and a position repeated in a row shown once, at its first slot (the environments' rule:
    an agent's action is a slate). Returns a new array.

    Raises:
        TypeError / ValueError naming the expected dtype, shape or range.
    """
    return empty_repeats(check_positions(slates, (n, slate_size), num_candidates))


def slates_to_action(slates: np.ndarray) -> np.ndarray:
    """Actions from slates with empty slots (-1): an empty slot repeats the slot-0 position, so
    that ``empty_repeats(slates_to_action(s))`` gives back ``s`` wherever slot 0 is shown.

    Example:
        >>> slates_to_action(np.array([[4, -1, 2]]))
        array([[4, 4, 2]])
    """
    slates = np.asarray(slates)
    return np.where(slates >= 0, slates, slates[:, :1]).astype(np.int64)


def topic_diverse_top_k(scores: np.ndarray, topics: np.ndarray, k: int) -> np.ndarray:
    """Topic-diverse slates: (B, k) int64 positions. Each row takes the best-scored candidate
    of each topic first, best first, and only when there are fewer topics than ``k`` fills the
    remaining slots with the best of the rest. Ties go to the lower position.

    Args:
        scores: (B, C) finite scores, higher is better.
        topics: (B, C) integer topic of each candidate.
        k: slate size, at most C.

    Example:
        >>> topic_diverse_top_k(np.array([[0.9, 0.8, 0.1, 0.5]]), np.array([[0, 0, 1, 0]]), 3)
        array([[0, 2, 1]])
    """
    scores = np.asarray(scores)
    topics = np.asarray(topics)
    if scores.ndim != 2 or topics.shape != scores.shape:
        raise ValueError(
            f"scores and topics must both have shape (B, C), got {scores.shape} and {topics.shape}"
        )
    if not np.issubdtype(topics.dtype, np.integer):
        raise TypeError(f"topics must be integers, got dtype {topics.dtype}")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be in [1, {scores.shape[1]}] (the candidates), got {k}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (no NaN or infinity)")
    c = scores.shape[1]
    order = np.argsort(-scores, axis=1, kind="stable")  # rank -> position
    ranked_topics = np.take_along_axis(topics, order, axis=1).astype(np.int64)
    rank = np.arange(c, dtype=np.int64)
    # Group each row's ranks by topic (best rank first within a topic): a rank opens its group.
    grouped = np.argsort(ranked_topics * c + rank, axis=1, kind="stable")
    grouped_topics = np.take_along_axis(ranked_topics, grouped, axis=1)
    opens = np.ones_like(grouped_topics, dtype=bool)
    opens[:, 1:] = grouped_topics[:, 1:] != grouped_topics[:, :-1]
    first = np.zeros_like(opens)
    np.put_along_axis(first, grouped, opens, axis=1)  # by rank: best of its topic
    pick = np.argsort(np.where(first, 0, c) + rank, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(order, pick, axis=1)

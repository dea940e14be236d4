"""The spaces of one request and what an action means: shared by the single and the vector
environment."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from driftrec.simulators import WorldConfig
from driftrec.simulators.population import FEATURE_BOUND
from driftrec.simulators.requests import lean
from driftrec.slates import check_positions, empty_repeats

__all__ = ["action_to_slates", "observation_space"]


def observation_space(config: WorldConfig) -> spaces.Dict:
    """The observation space of one request for a world with ``config``."""
    c, h = config.num_candidates, config.history_length
    return spaces.Dict(
        {
            "user_id": spaces.Box(0, config.num_users - 1, (1,), np.int64),
            "user_features": spaces.Box(
                -FEATURE_BOUND, FEATURE_BOUND, (config.user_feature_dim,), np.float32
            ),
            "history": spaces.Box(-1, config.num_items - 1, (h,), np.int64),
            "candidate_ids": spaces.Box(0, config.num_items - 1, (c,), np.int64),
            "candidate_features": spaces.Box(
                -FEATURE_BOUND, FEATURE_BOUND, (c, config.item_feature_dim), np.float32
            ),
            "candidate_topics": spaces.Box(0, config.num_topics - 1, (c,), np.int64),
        }
    )


def action_to_slates(action: Any, batch: int, config: WorldConfig) -> np.ndarray:
    """Check an action batch (batch, k) and turn it into slates (-1 marks a repeated position).

    Raises:
        ValueError / TypeError naming what was expected; nothing in the world has changed.
    """
    if lean(batch):
        slate = _plain_slate(action, config)
        if slate is not None:
            return slate
    k = config.slate_size
    shape = (batch, k) if batch > 1 else (k,)
    arr = np.asarray(action)
    if batch == 1 and arr.shape == (1, k):
        shape = (1, k)
    arr = check_positions(arr, shape, config.num_candidates, name="action", empty=False)
    return empty_repeats(arr.reshape(batch, k))


def _plain_slate(action: Any, config: WorldConfig) -> np.ndarray | None:
    """The slate (1, k) of one plain action: a list or tuple of ``k`` Python ints, or an
    integer array of shape (k,) or (1, k), every position in range. None for anything else,
    which the general check then accepts or refuses with its message.

    The same checks and the same repeats rule as :func:`action_to_slates` and
    :func:`~driftrec.slates.empty_repeats`, in plain Python: for ``k`` of about 10 that is an
    order of magnitude cheaper than a dozen NumPy calls on a 10-element array.
    """
    k, c = config.slate_size, config.num_candidates
    positions: list[Any] | tuple[Any, ...]
    if isinstance(action, np.ndarray):
        if action.dtype.kind not in "iu" or action.shape not in ((k,), (1, k)):
            return None
        positions = action.ravel().tolist()
    elif type(action) is list or type(action) is tuple:
        positions = action
        if len(positions) != k:
            return None
    else:
        return None
    if set(map(type, positions)) != {int}:
        return None  # bools, NumPy scalars, ...
    if min(positions) < 0 or max(positions) >= c:
        return None
    if len(set(positions)) == k:
        return np.array([positions], dtype=np.int64)
    slate, seen = [], set()
    for position in positions:
        slate.append(-1 if position in seen else position)
        seen.add(position)
    return np.array([slate], dtype=np.int64)

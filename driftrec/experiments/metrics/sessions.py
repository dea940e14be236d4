"""Session return: what a policy earns per user session, the long-term counterpart of the
per-request regret.

Per-request regret compares a policy with the myopic oracle *in the policy's own world*: at
each request, the best expected reward of that request minus the served slate's. It cannot see
that today's slate changes tomorrow's requests (boredom, leaving). The reward a session earns
in total can: where monotony bores users, a diversifying policy has a positive per-request
regret and still earns more per session than the oracle (``docs/rl.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftrec.validation import check_integer

__all__ = ["SessionRecorder"]


class SessionRecorder:
    """A streaming metric over the sessions of a vector environment's slots: ``update`` after
    every step with the step's rewards and terminations, ``result`` for the completed sessions.

    A session is the run of requests of one slot up to and including the step at which it
    terminated; sessions still running at the end are not counted (a session cut short would
    bias the mean down). With next-step autoreset, rows whose action was not ``served`` do not
    belong to any session.

    Args:
        num_slots: concurrent sessions (the environment's ``num_envs``).

    Example:
        >>> recorder = SessionRecorder(2)
        >>> recorder.update(np.array([1.0, 0.0]), np.array([False, True]))
        >>> recorder.update(np.array([1.0, 1.0]), np.array([True, False]))
        >>> recorder.result()  # sessions (2 requests, reward 2) and (1 request, reward 0)
        {'session_return': 1.0, 'session_length': 1.5, 'sessions': 2}
    """

    def __init__(self, num_slots: int) -> None:
        self.num_slots = check_integer("num_slots", num_slots, minimum=1)
        self.reset()

    def __repr__(self) -> str:
        return f"SessionRecorder(num_slots={self.num_slots})"

    def reset(self) -> None:
        """Forget every session, completed or running."""
        self._return = np.zeros(self.num_slots)
        self._length = np.zeros(self.num_slots, dtype=np.int64)
        self._returns: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []

    def update(
        self, reward: np.ndarray, terminated: np.ndarray, served: np.ndarray | None = None
    ) -> None:
        """Add one step: ``reward`` (n,) observed rewards, ``terminated`` (n,) bool, ``served``
        (n,) bool (default: every row)."""
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool)
        shape = (self.num_slots,)
        if reward.shape != shape or terminated.shape != shape:
            raise ValueError(
                f"reward and terminated must have shape {shape}, got {reward.shape} and "
                f"{terminated.shape}"
            )
        if not np.isfinite(reward).all():
            raise ValueError("reward must be finite (no NaN or infinity)")
        counted = np.ones(shape, bool) if served is None else np.asarray(served, dtype=bool)
        self._return += np.where(counted, reward, 0.0)
        self._length += counted
        ended = terminated & counted
        if ended.any():
            self._returns.append(self._return[ended].copy())
            self._lengths.append(self._length[ended].copy())
            self._return[ended] = 0.0
            self._length[ended] = 0

    def result(self) -> dict[str, Any]:
        """``session_return`` (mean observed reward per completed session), ``session_length``
        (mean requests per completed session; both NaN before the first session ends) and
        ``sessions`` (how many completed)."""
        if not self._returns:
            return {"session_return": float("nan"), "session_length": float("nan"), "sessions": 0}
        returns = np.concatenate(self._returns)
        lengths = np.concatenate(self._lengths)
        return {
            "session_return": float(returns.mean()),
            "session_length": float(lengths.mean()),
            "sessions": len(returns),
        }

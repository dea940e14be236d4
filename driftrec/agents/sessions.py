"""A transition seen as steps of user sessions, for agents that learn across a session's requests
(the RL agents: :mod:`driftrec.agents.slateq`, :mod:`driftrec.agents.reinforce`).

A batched environment interleaves ``B`` sessions: row ``i`` of every step is the session running
in slot ``i``, until ``terminated[i]`` (the user left) ends it and the slot's next request starts
another user's session (gymnasium's same-step autoreset); under next-step autoreset the slot is
then not served for one step (``info["served"]`` False). :func:`check_session_step` checks a
transition as :func:`~driftrec.agents.checks.check_transition` does, plus what session learning
reads (the next observation, ``terminated``, ``truncated``), and keeps the served rows with the
slot each came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from driftrec.agents.checks import Feedback, check_transition, observation_batch
from driftrec.agents.protocol import TaskSizes, Transition

__all__ = ["RunningSessions", "SessionStep", "check_session_step"]


@dataclass(frozen=True)
class SessionStep:
    """The served rows of one step, as steps of the sessions in their slots.

    Attributes:
        feedback: the served rows' observation, slates, clicks and rewards (n rows).
        slots: (n,) int64 the slot (row of the batch) each served row came from.
        next_obs: the next observation of those rows (checked, ``user_id`` (n,)).
        ended: (n,) bool the session ended with this request (``terminated`` or
            ``truncated``): nothing after it belongs to the same session, so no value is
            bootstrapped from ``next_obs`` and returns stop here. (Under same-step autoreset
            the next observation of an ended row is already the next session's.)
    """

    feedback: Feedback
    slots: np.ndarray
    next_obs: dict[str, np.ndarray]
    ended: np.ndarray


def _flags(name: str, value: object, b: int) -> np.ndarray:
    flags = np.asarray(value)
    if flags.shape != (b,) or flags.dtype != bool:
        raise ValueError(
            f"observe: {name} must be a bool array of shape ({b},), got {flags.dtype} {flags.shape}"
        )
    return flags


def check_session_step(transition: Transition, sizes: TaskSizes) -> SessionStep:
    """Check ``transition`` (everything :func:`check_transition` checks, the next observation
    with finite features, ``terminated`` and ``truncated`` as (B,) bool) and return its served
    rows as session steps. Raises before anything is returned: an agent that calls this first
    is left unchanged by a bad transition."""
    feedback = check_transition(transition, sizes)
    b = transition.batch_size
    caller = "observe (next_obs)"
    next_obs = observation_batch(transition.next_obs, sizes, caller=caller, finite_features=True)
    if len(next_obs["user_id"]) != b:
        raise ValueError(
            f"{caller}: the next observation has {len(next_obs['user_id'])} rows, the step {b}"
        )
    ended = _flags("terminated", transition.terminated, b) | _flags(
        "truncated", transition.truncated, b
    )
    served = transition.info.get("served")
    slots = np.arange(b) if served is None else np.flatnonzero(np.asarray(served))
    if len(slots) < b:
        next_obs = {key: value[slots] for key, value in next_obs.items()}
        ended = ended[slots]
    return SessionStep(feedback, slots.astype(np.int64), next_obs, ended)


class RunningSessions:
    """The steps of the sessions running in each slot, kept until the session ends.

    Columns (any per-row arrays: observation rows, actions, rewards) are stored per slot in
    preallocated ``(slots, max_length, ...)`` arrays, so adding a step and ending sessions cost
    O(rows touched). The slot dimension grows with the largest slot seen.

    Args:
        max_length: steps a slot can hold; the caller ends a session that reaches it.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.columns: dict[str, np.ndarray] = {}
        self.length = np.zeros(0, dtype=np.int64)
        """(slots,) steps held for the session running in each slot."""

    def __len__(self) -> int:
        """Steps held, over all slots."""
        return int(self.length.sum())

    def _grow(self, slots: int, template: dict[str, np.ndarray]) -> None:
        if not self.columns:
            self.columns = {
                k: np.zeros((0, self.max_length, *v.shape[1:]), v.dtype)
                for k, v in template.items()
            }
        old = len(self.length)
        if slots <= old:
            return
        new = max(slots, 2 * old)
        for key, col in self.columns.items():
            grown = np.zeros((new, *col.shape[1:]), col.dtype)
            grown[:old] = col
            self.columns[key] = grown
        self.length = np.concatenate([self.length, np.zeros(new - old, np.int64)])

    def add(self, slots: np.ndarray, rows: dict[str, np.ndarray]) -> np.ndarray:
        """Append one step to the session of each of ``slots`` (distinct, (n,)); ``rows`` the
        columns of the n steps. Returns the slots whose session is now full (``max_length``
        steps)."""
        self._grow(int(slots.max()) + 1, rows)
        at = self.length[slots]
        for key, col in self.columns.items():
            col[slots, at] = rows[key]
        self.length[slots] += 1
        return slots[self.length[slots] >= self.max_length]

    def end(self, slots: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Remove the sessions of ``slots`` (distinct, (m,)); returns their steps, session
        after session in the order of ``slots``, each in time order, and each session's
        length (m,)."""
        steps, lengths = self.held(slots)
        self.length[slots] = 0
        return steps, lengths

    def held(self, slots: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """What :meth:`end` returns, without removing anything."""
        lengths = self.length[slots].copy()
        mask = np.arange(self.max_length)[None, :] < lengths[:, None]
        return {key: col[slots][mask] for key, col in self.columns.items()}, lengths

    def state_dict(self) -> dict[str, Any]:
        """The held steps as tensors (slot after slot, each in time order), the lengths, and
        each column's dtype and row shape: tensors and plain containers only."""
        steps, _ = self.held(np.flatnonzero(self.length))
        return {
            "length": torch.from_numpy(self.length.copy()),
            "steps": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in steps.items()},
            "shapes": {k: (str(v.dtype), list(v.shape[2:])) for k, v in self.columns.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also one read back by ``torch.load``)."""
        self.columns, self.length = {}, np.zeros(0, dtype=np.int64)
        length = state["length"].numpy().copy()
        template = {
            k: np.zeros((1, *shape), dtype=np.dtype(dtype))
            for k, (dtype, shape) in state["shapes"].items()
        }
        if not template:
            self.length = length
            return
        self._grow(len(length), template)
        self.length = length
        slots = np.flatnonzero(length)
        held = np.arange(self.max_length)[None, :] < length[slots][:, None]
        for key, col in self.columns.items():
            rows = col[slots]
            rows[held] = state["steps"][key].numpy()
            col[slots] = rows

"""Checks of everything that enters an agent: observation batches (the one place where their
layout is normalised), transitions and logged interactions.

Every entry point reads observations through :func:`observation_batch`: ``user_id`` comes as
(B,) or as (B, 1) per batch (the environment's layout, since RL libraries such as
Stable-Baselines3 take no 0-d observation; one request's ``user_id`` is then (1,)), and agents
read (B,). :func:`check_transition` checks a transition against the agent's sizes and keeps the
rows that were served (:class:`Feedback`), before the agent changes anything. What a slate
action means (a repeated position is an empty slot) is :func:`driftrec.slates.empty_repeats`,
the environments' own definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from driftrec.agents.protocol import OBSERVATION_KEYS, Observation, TaskSizes, Transition
from driftrec.slates import check_positions, empty_repeats

__all__ = [
    "Feedback",
    "LoggedData",
    "check_feedback",
    "check_logged",
    "check_served",
    "check_transition",
    "flat_user_ids",
    "observation_batch",
]


class LoggedData(Protocol):
    """Logged interactions as an environment's ``log_interactions(n)`` returns them (only the
    fields agents read)."""

    @property
    def observation(self) -> Mapping[str, np.ndarray]:
        """The observation batch of the logged requests (n rows)."""
        ...

    @property
    def slates(self) -> np.ndarray:
        """(n, k) candidate positions shown, -1 at empty slots."""
        ...

    @property
    def click_slot(self) -> np.ndarray:
        """(n,) observed clicked slot, -1 for none."""
        ...

    @property
    def reward(self) -> np.ndarray:
        """(n,) observed reward."""
        ...


_ID_KEYS = ("user_id", "history", "candidate_ids", "candidate_topics")
_MAX_REWARD = float(np.finfo(np.float32).max)
"""Rewards are learned from in float32: a larger one would become inf."""
_FEATURE_KEYS = ("user_features", "candidate_features")


def _served(keep: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """``rows`` (n,) bool, restricted to the served rows ``keep`` (None: all served)."""
    return rows if keep is None else rows & keep


def _rows(mask: np.ndarray | np.bool_) -> str:
    """The first rows where ``mask`` (B,) holds, for an error message."""
    rows = np.flatnonzero(mask)
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return f"{rows[:5].tolist()}{more}"


def flat_user_ids(user_id: Any, caller: str = "act") -> np.ndarray:
    """(B,) user ids from ``user_id`` of shape (B,) or (B, 1) (a view when it can be): the one
    place where the two layouts meet.

    Example:
        >>> flat_user_ids(np.array([[3], [5]]))
        array([3, 5])
    """
    ids = np.asarray(user_id)
    if ids.ndim == 2 and ids.shape[1] == 1:
        return ids.reshape(ids.shape[0])
    if ids.ndim != 1:
        raise ValueError(
            f"{caller}: user_id must have shape (B,) or (B, 1) for a batch of B requests, got "
            f"{ids.shape}"
        )
    return ids


def observation_batch(
    obs: Observation,
    sizes: TaskSizes | None = None,
    *,
    caller: str = "act",
    finite_features: bool = False,
) -> dict[str, np.ndarray]:
    """An observation batch as agents read it, checked: ``user_id`` (B,) (it may come as (B,)
    or (B, 1)), ids int64, features float32, only the keys of ``OBSERVATION_KEYS``.

    Checks, all vectorised (a few reductions per call): every key is there with B rows and the
    shape of ``sizes`` (if given), ids are integers, user and candidate ids >= 0, history ids
    >= -1 (padding), topics in [0, num_topics), and with ``finite_features`` that features are
    finite. Nothing is copied unless a dtype must change.

    Args:
        obs: the batch (B rows).
        sizes: the agent's sizes (None: shapes are checked against each other only).
        caller: the method that was called, for error messages.
        finite_features: check that features hold no NaN or inf: where they are learned from
            (``observe``, pretraining; a NaN there would spread to every parameter). Acting
            skips it: a NaN feature there spoils that request's slate only, and the check
            would cost about 2% of ``act``.

    Raises:
        KeyError: a key is missing. TypeError: ids that are not integers, features that are
        not real. ValueError: a shape or a value out of range, naming the key.
    """
    missing = [key for key in OBSERVATION_KEYS if key not in obs]
    if missing:
        raise KeyError(
            f"{caller}: the observation lacks {missing}; agents read a driftrec observation "
            f"with keys {list(OBSERVATION_KEYS)}"
        )
    arrays = {key: np.asarray(obs[key]) for key in OBSERVATION_KEYS}
    cands = arrays["candidate_ids"].shape
    c = cands[-1] if sizes is None and len(cands) == 2 else getattr(sizes, "num_candidates", None)
    if len(cands) != 2 or cands[1] != c:
        raise ValueError(
            f"{caller} takes a batch of requests: candidate_ids of shape (B, {c or 'C'}), got "
            f"{cands}; use act_one() for a single request"
        )
    b = cands[0]
    uid = arrays["user_id"]
    if uid.shape not in ((b,), (b, 1)):
        raise ValueError(
            f"{caller}: user_id must have shape ({b},) or ({b}, 1) for a batch of {b} "
            f"requests, got {uid.shape}"
        )
    expected: dict[str, tuple] = {"candidate_topics": (b, c)}
    if sizes is not None:
        expected.update(
            user_features=(b, sizes.user_feature_dim),
            history=(b, sizes.history_length),
            candidate_features=(b, c, sizes.item_feature_dim),
        )
    else:
        expected.update(
            user_features=(b, *arrays["user_features"].shape[1:2]),
            history=(b, *arrays["history"].shape[1:2]),
            candidate_features=(b, c, *arrays["candidate_features"].shape[2:3]),
        )
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ValueError(
                f"{caller}: {key} must have shape {shape} for a batch of {b} requests, got "
                f"{arrays[key].shape}"
            )
    for key in _ID_KEYS:
        if arrays[key].dtype.kind not in "iu":
            raise TypeError(f"{caller}: {key} must hold integer ids, got dtype {arrays[key].dtype}")
    for key in _FEATURE_KEYS:
        if arrays[key].dtype.kind not in "fiu":
            raise TypeError(
                f"{caller}: {key} must hold real numbers, got dtype {arrays[key].dtype}"
            )
    out = {key: np.asarray(arrays[key], dtype=np.int64) for key in _ID_KEYS}
    out["user_id"] = flat_user_ids(out["user_id"], caller)
    out.update({key: np.asarray(arrays[key], dtype=np.float32) for key in _FEATURE_KEYS})
    if b:
        lows = {"user_id": 0, "candidate_ids": 0, "history": -1, "candidate_topics": 0}
        for key, low in lows.items():
            if out[key].size and out[key].min() < low:
                raise ValueError(
                    f"{caller}: {key} must be >= {low}, got {out[key].min()} (ids are "
                    "non-negative; history pads with -1)"
                )
        topics = out["candidate_topics"]
        if sizes is not None and topics.max() >= sizes.num_topics:
            raise ValueError(
                f"{caller}: candidate_topics must be in [0, {sizes.num_topics}), got {topics.max()}"
            )
        for key in _FEATURE_KEYS if finite_features else ():
            if not np.isfinite(out[key]).all():
                bad = ~np.isfinite(out[key].reshape(b, -1)).all(axis=1)
                raise ValueError(
                    f"{caller}: {key} must be finite, got NaN or inf at rows {_rows(bad)}"
                )
    return {key: out[key] for key in OBSERVATION_KEYS}


@dataclass(frozen=True)
class Feedback:
    """The checked part of a step (or of logged data) that an agent learns from: the rows that
    were served, in order.

    Attributes:
        obs: the observation batch of those rows (``user_id`` (n,)).
        slates: (n, k) int64 candidate positions shown, -1 at empty slots.
        click_slot: (n,) int64 observed clicked slot, -1 for none (always a shown slot).
        reward: (n,) float32 observed reward (finite).
    """

    obs: dict[str, np.ndarray]
    slates: np.ndarray
    click_slot: np.ndarray
    reward: np.ndarray

    def __len__(self) -> int:
        return len(self.reward)


def check_feedback(
    obs: dict[str, np.ndarray],
    slates: np.ndarray,
    click_slot: Any,
    reward: Any,
    served: Any = None,
    *,
    caller: str = "observe",
    click_name: str = "info['click_slot']",
) -> Feedback:
    """Check observed feedback on ``slates`` (B, k) (-1 at empty slots) of a checked
    observation batch, and keep the rows that were ``served`` (all if None).

    Checks: ``reward`` (B,) real, finite, >= 0 and within float32's range (docs/world.md: a
    click pays 1, or the clicked item's engagement value, which is positive; no click pays 0);
    ``click_slot`` (B,) integer, each in [-1, k) and, if >= 0, a slot that showed an item, and
    the reward 0 where it is -1; ``served`` (B,) bool. Rows not served are checked for shapes
    and reward only (their action was ignored: nothing about them is learned).

    A click with reward 0 is accepted: an agent does not know whether the world pays clicks or
    engagement, and a sampled engagement can underflow to 0 in float32.

    Raises:
        TypeError / ValueError naming the field and the rows at fault.
    """
    b, k = slates.shape
    reward = np.asarray(reward)
    if reward.shape != (b,):
        raise ValueError(
            f"{caller}: reward must have shape ({b},) for {b} requests, got {reward.shape}"
        )
    if reward.dtype.kind not in "fiu":
        raise TypeError(f"{caller}: reward must hold real numbers, got dtype {reward.dtype}")
    wide = np.asarray(reward, dtype=np.float64)
    if not np.isfinite(wide).all():
        raise ValueError(
            f"{caller}: reward must be finite, got NaN or inf at rows {_rows(~np.isfinite(wide))}"
        )
    negative = wide < 0
    if negative.any():
        raise ValueError(
            f"{caller}: reward must be >= 0 (a click pays 1, or the clicked item's engagement "
            f"value, which is positive; no click pays 0: docs/world.md), got "
            f"{wide[negative][:5].tolist()} at rows {_rows(negative)}"
        )
    too_large = wide > _MAX_REWARD
    if too_large.any():
        raise ValueError(
            f"{caller}: reward is out of range: it must be at most {_MAX_REWARD:.3g} (float32's "
            f"largest value), got {wide[too_large][:5].tolist()} at rows {_rows(too_large)}"
        )
    reward = wide.astype(np.float32)
    slot = np.asarray(click_slot)
    if slot.shape != (b,):
        raise ValueError(
            f"{caller}: {click_name} must have shape ({b},) for {b} requests, got {slot.shape}"
        )
    if slot.dtype.kind not in "iu":
        raise TypeError(
            f"{caller}: {click_name} must hold integer slots (-1 for no click), got dtype "
            f"{slot.dtype}"
        )
    slot = np.asarray(slot, dtype=np.int64)
    keep: np.ndarray | None = None
    if served is not None:
        rows_served = np.asarray(served)
        if rows_served.shape != (b,) or rows_served.dtype != bool:
            raise ValueError(
                f"{caller}: info['served'] must be a bool array of shape ({b},), got "
                f"{rows_served.dtype} {rows_served.shape}"
            )
        keep = None if rows_served.all() else rows_served
    if b:
        out_of_range = _served(keep, (slot < -1) | (slot >= k))
        if out_of_range.any():
            raise ValueError(
                f"{caller}: {click_name} must be in [-1, {k}) (a slot of the slate, -1 for "
                f"none), got {slot[out_of_range][:5].tolist()} at rows {_rows(out_of_range)}"
            )
        paid = _served(keep, (slot < 0) & (reward != 0))
        if paid.any():
            raise ValueError(
                f"{caller}: reward must be 0 where {click_name} is -1 (no click pays 0: "
                f"docs/world.md), got {reward[paid][:5].tolist()} at rows {_rows(paid)}"
            )
        hit = np.flatnonzero(_served(keep, slot >= 0))
        empty = slates[hit, slot[hit]] < 0
        if empty.any():
            rows = hit[empty]
            raise ValueError(
                f"{caller}: {click_name} points at an empty slot (one that repeats an "
                f"earlier position of the action, which the environment shows once) at rows "
                f"{rows[:5].tolist()}: a click can only be on a shown item"
            )
    if keep is not None:
        obs = {key: value[keep] for key, value in obs.items()}
        slates, slot, reward = slates[keep], slot[keep], reward[keep]
    return Feedback(obs, slates, slot, reward)


def _check_positions(
    name: str, positions: Any, b: int, k: int | None, c: int, low: int, caller: str
) -> np.ndarray:
    """``positions`` as (b, k) int64 candidate positions in [low, c) (``k`` None: any width;
    ``low`` -1: empty slots allowed): :func:`driftrec.slates.check_positions`, its message
    prefixed with ``caller``."""
    arr = np.asarray(positions)
    if k is None and arr.ndim != 2:
        raise ValueError(f"{caller}: {name} must have shape ({b}, k), got {arr.shape}")
    width = arr.shape[1] if k is None else k
    try:
        checked = check_positions(arr, (b, width), c, name=name, empty=low < 0)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{caller}: {error}") from None
    return np.asarray(checked, dtype=np.int64)


def check_transition(transition: Transition, sizes: TaskSizes | None = None) -> Feedback:
    """Check a transition against an agent's sizes and return what it may learn from, before
    the agent changes anything (an agent's ``observe`` starts here).

    Checks the observation batch (:func:`observation_batch`), the action ((B, k) integer
    positions in [0, C)), and the feedback (:func:`check_feedback`: reward, ``click_slot``,
    ``served``). With ``info["served"]`` (gymnasium's next-step autoreset: a row whose session
    was being reset had its action ignored and a reward of 0 that is not a real no-click), the
    rows not served are dropped. Without ``sizes``, k and C are read from the transition.

    Raises:
        TypeError / ValueError naming the field; the agent is left exactly as it was.
    """
    obs = observation_batch(transition.obs, sizes, caller="observe", finite_features=True)
    b, c = obs["candidate_ids"].shape
    k = None if sizes is None else sizes.slate_size
    action = _check_positions("action", transition.action, b, k, c, 0, "observe")
    info = transition.info
    return check_feedback(
        obs,
        empty_repeats(action),
        info["click_slot"],
        transition.reward,
        info.get("served"),
    )


def check_logged(
    logged: LoggedData, sizes: TaskSizes | None = None, *, caller: str = "pretrain"
) -> Feedback:
    """Check logged interactions (``env.log_interactions(n)``: ``observation``, ``slates``
    (n, k) positions with -1 at empty slots, ``click_slot``, ``reward``) as
    :func:`check_transition` checks a step, for pretraining."""
    return check_served(
        logged.observation, logged.slates, logged.click_slot, logged.reward, sizes, caller=caller
    )


def check_served(
    observation: Observation,
    slates: Any,
    click_slot: Any,
    reward: Any,
    sizes: TaskSizes | None = None,
    *,
    caller: str,
) -> Feedback:
    """Check slates (n, k) served to an observation batch (positions, -1 at empty slots) and
    their feedback, as :func:`check_transition` checks a step (see :func:`check_logged`)."""
    obs = observation_batch(observation, sizes, caller=caller, finite_features=True)
    b, c = obs["candidate_ids"].shape
    k = None if sizes is None else sizes.slate_size
    positions = _check_positions("slates", slates, b, k, c, -1, caller)
    return check_feedback(
        obs, positions, click_slot, reward, caller=caller, click_name="click_slot"
    )

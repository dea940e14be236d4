"""The agent protocol: batch-first acting and observing, and the one-sample convenience.

Every agent answers a *batch* of ``B`` requests at once (the natively batched environment's
observation), and learns from a batch of transitions. The single-environment case is the batch
of one: :meth:`AgentBase.act_one` and :meth:`AgentBase.observe_one` add the batch axis, call
the batched method and strip the axis again, so the two paths cannot disagree.

What an agent may learn from is fixed here: :class:`Transition` drops the ground-truth keys of
``info`` (expected rewards, regime, drift events) when it is built, so that no agent can learn
from the evaluator's channel by accident; :func:`check_transition` checks a transition against
the agent's sizes and keeps the rows that were served (:class:`Feedback`), before the agent
changes anything.

Every entry point reads observations through :func:`observation_batch`, the one place where
the layout is normalised: ``user_id`` comes as (B,) or as (B, 1) per batch (the environment's
layout, since RL libraries such as Stable-Baselines3 take no 0-d observation; one request's
``user_id`` is then (1,)), and agents read (B,).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from driftrec.validation import check_integer

__all__ = [
    "PRIVILEGED_INFO_KEYS",
    "Agent",
    "AgentBase",
    "Feedback",
    "Observation",
    "TaskSizes",
    "Transition",
    "add_batch_axis",
    "check_feedback",
    "check_logged",
    "check_transition",
    "flat_user_ids",
    "observation_batch",
    "slates_from_action",
    "task_sizes",
]

Observation = Mapping[str, np.ndarray]
"""An observation batch: ``user_id`` (B,) or (B, 1), ``user_features`` (B, f_u), ``history``
(B, H), ``candidate_ids`` (B, C), ``candidate_features`` (B, C, f_i), ``candidate_topics``
(B, C). :func:`observation_batch` turns it into what agents read (``user_id`` (B,))."""

OBSERVATION_KEYS = (
    "user_id",
    "user_features",
    "history",
    "candidate_ids",
    "candidate_features",
    "candidate_topics",
)

PRIVILEGED_INFO_KEYS = ("expected_reward", "oracle_expected_reward", "regime", "drift_events")
"""``info`` keys that carry ground truth for the evaluator; agents never see them."""


@dataclass(frozen=True)
class TaskSizes:
    """The sizes an agent needs, read from the environment's (single-request) spaces.

    ``num_users`` and ``num_items`` are capacities: every id the environment can emit is below
    them (the observation space says so). Learning agents take them as hints only: their id
    tables start smaller and grow with the ids they meet, also beyond the capacities.
    """

    num_users: int
    num_items: int
    num_candidates: int
    slate_size: int
    user_feature_dim: int
    item_feature_dim: int
    num_topics: int
    history_length: int

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            low = 0 if f.name in ("user_feature_dim", "item_feature_dim", "history_length") else 1
            object.__setattr__(
                self, f.name, check_integer(f.name, getattr(self, f.name), minimum=low)
            )
        if self.slate_size > self.num_candidates:
            raise ValueError(
                f"slate_size ({self.slate_size}) must be at most num_candidates "
                f"({self.num_candidates}): a slate holds distinct candidates"
            )

    @classmethod
    def from_spaces(cls, observation_space: spaces.Dict, action_space: spaces.Space) -> TaskSizes:
        """Read the sizes from a single request's observation and action spaces."""
        missing = [key for key in OBSERVATION_KEYS if key not in observation_space.spaces]
        if missing:
            raise ValueError(
                f"the observation space lacks {missing}; agents need a driftrec observation "
                f"space with keys {list(OBSERVATION_KEYS)}"
            )
        if not isinstance(action_space, spaces.MultiDiscrete) or action_space.nvec.ndim != 1:
            raise ValueError(
                f"agents need a MultiDiscrete([C] * k) action space (one request), got "
                f"{action_space}; pass env.single_action_space for a vector environment"
            )
        obs = observation_space.spaces
        if obs["user_id"].shape not in ((), (1,)):
            raise ValueError(
                f"the user_id space of one request has shape () or (1,), got "
                f"{obs['user_id'].shape}; pass env.single_observation_space for a vector "
                "environment"
            )
        return cls(
            num_users=int(obs["user_id"].high.max()) + 1,
            num_items=int(obs["candidate_ids"].high.max()) + 1,
            num_candidates=int(obs["candidate_ids"].shape[0]),
            slate_size=int(action_space.nvec.shape[0]),
            user_feature_dim=int(obs["user_features"].shape[0]),
            item_feature_dim=int(obs["candidate_features"].shape[1]),
            num_topics=int(obs["candidate_topics"].high.max()) + 1,
            history_length=int(obs["history"].shape[0]),
        )


def task_sizes(env_or_spaces: Any) -> TaskSizes:
    """Sizes from a vector environment, a ``gymnasium.Env``, an ``(observation_space,
    action_space)`` pair of one request, or a :class:`TaskSizes` (returned as is)."""
    if isinstance(env_or_spaces, TaskSizes):
        return env_or_spaces
    if isinstance(env_or_spaces, tuple) and len(env_or_spaces) == 2:
        return TaskSizes.from_spaces(*env_or_spaces)
    if hasattr(env_or_spaces, "single_observation_space"):
        return TaskSizes.from_spaces(
            env_or_spaces.single_observation_space, env_or_spaces.single_action_space
        )
    if hasattr(env_or_spaces, "observation_space") and hasattr(env_or_spaces, "action_space"):
        return TaskSizes.from_spaces(env_or_spaces.observation_space, env_or_spaces.action_space)
    raise TypeError(
        "expected a driftrec environment (vector or single), an (observation_space, "
        f"action_space) pair for one request, or TaskSizes; got {type(env_or_spaces).__name__}"
    )


def add_batch_axis(obs: Observation) -> dict[str, np.ndarray]:
    """A single request's observation as a batch of one."""
    return {key: np.asarray(value)[None] for key, value in obs.items()}


def slates_from_action(action: np.ndarray) -> np.ndarray:
    """(B, k) slates of candidate positions from an action, -1 where a position repeats an
    earlier slot (the environment shows it once, at its first slot)."""
    slates = np.array(action, dtype=np.int64, copy=True)
    if slates.ndim != 2:
        raise ValueError(f"a batched action has shape (B, k), got {slates.shape}")
    ordered = np.sort(slates, axis=1)
    if (ordered[:, 1:] != ordered[:, :-1]).all():  # the common case: no repeats
        return slates
    repeated = np.tril(slates[:, :, None] == slates[:, None, :], -1).any(axis=2)
    slates[repeated] = -1
    return slates


_ID_KEYS = ("user_id", "history", "candidate_ids", "candidate_topics")
_FEATURE_KEYS = ("user_features", "candidate_features")


def _rows(mask: np.ndarray) -> str:
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

    Checks: ``reward`` (B,) real and finite; ``click_slot`` (B,) integer, each in [-1, k) and,
    if >= 0, a slot that showed an item; ``served`` (B,) bool. Rows not served are checked for
    shapes and finite reward only (their action was ignored: nothing about them is learned).

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
    reward = np.asarray(reward, dtype=np.float32)
    if not np.isfinite(reward).all():
        raise ValueError(
            f"{caller}: reward must be finite, got NaN or inf at rows {_rows(~np.isfinite(reward))}"
        )
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
    keep = None
    if served is not None:
        served = np.asarray(served)
        if served.shape != (b,) or served.dtype != bool:
            raise ValueError(
                f"{caller}: info['served'] must be a bool array of shape ({b},), got "
                f"{served.dtype} {served.shape}"
            )
        keep = None if served.all() else served
    if b:
        out_of_range = (slot < -1) | (slot >= k)
        if keep is not None:
            out_of_range &= keep
        if out_of_range.any():
            raise ValueError(
                f"{caller}: {click_name} must be in [-1, {k}) (a slot of the slate, -1 for "
                f"none), got {slot[out_of_range][:5].tolist()} at rows {_rows(out_of_range)}"
            )
        hit = np.flatnonzero(slot >= 0 if keep is None else (slot >= 0) & keep)
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
    """``positions`` as (b, k) int64 candidate positions in [low, c)."""
    arr = np.asarray(positions)
    k = arr.shape[1] if k is None and arr.ndim == 2 else k
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{caller}: {name} must be an integer array of shape ({b}, {k or 'k'}) (candidate "
            f"positions), got dtype {arr.dtype}"
        )
    if arr.shape != (b, k):
        raise ValueError(
            f"{caller}: {name} must have shape ({b}, {k or 'k'}) for a batch of {b} requests, "
            f"got {arr.shape}"
        )
    if arr.size and (arr.min() < low or arr.max() >= c):
        raise ValueError(
            f"{caller}: {name} positions must be in [{low}, {c}) (indices into candidate_ids), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return np.asarray(arr, dtype=np.int64)


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
        slates_from_action(action),
        info["click_slot"],
        transition.reward,
        info.get("served"),
    )


def check_logged(
    logged: Any, sizes: TaskSizes | None = None, *, caller: str = "pretrain"
) -> Feedback:
    """Check logged interactions (``World.log_interactions``: ``observation``, ``slates`` (n, k)
    positions with -1 at empty slots, ``click_slot``, ``reward``) as :func:`check_transition`
    checks a step, for pretraining."""
    obs = observation_batch(logged.observation, sizes, caller=caller, finite_features=True)
    b, c = obs["candidate_ids"].shape
    k = None if sizes is None else sizes.slate_size
    slates = _check_positions("slates", logged.slates, b, k, c, -1, caller)
    return check_feedback(
        obs, slates, logged.click_slot, logged.reward, caller=caller, click_name="click_slot"
    )


@dataclass(frozen=True)
class Transition:
    """One environment step over a batch of ``B`` requests, as an agent may learn from it.

    Attributes:
        obs: the observation batch the action answered (B rows).
        action: (B, k) int64 candidate positions served.
        reward: (B,) float32 observed reward (clicks, or sampled engagement).
        next_obs: the observation batch that followed (B rows).
        terminated: (B,) bool.
        truncated: (B,) bool.
        info: the environment's info without :data:`PRIVILEGED_INFO_KEYS` (removed when the
            transition is built). Agents read ``click_slot`` (B,) int64: the slot clicked, -1
            for none; and ``served`` (B,) bool if present (next-step autoreset: False where
            the row's action was ignored while its session was reset; agents do not learn
            from those rows).
    """

    obs: Observation
    action: np.ndarray
    reward: np.ndarray
    next_obs: Observation
    terminated: np.ndarray
    truncated: np.ndarray
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        allowed = {k: v for k, v in self.info.items() if k not in PRIVILEGED_INFO_KEYS}
        object.__setattr__(self, "info", allowed)
        if "click_slot" not in allowed:
            raise KeyError(
                "info has no 'click_slot': build transitions from a driftrec environment's info "
                "(it reports the observed clicked slot, -1 for none)"
            )

    @property
    def batch_size(self) -> int:
        return int(np.shape(self.action)[0])

    @classmethod
    def single(
        cls,
        obs: Observation,
        action: np.ndarray,
        reward: float,
        next_obs: Observation,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
    ) -> Transition:
        """A batch of one from a single environment's step (no batch axis anywhere)."""
        return cls(
            obs=add_batch_axis(obs),
            action=np.asarray(action, dtype=np.int64)[None],
            reward=np.asarray([reward], dtype=np.float32),
            next_obs=add_batch_axis(next_obs),
            terminated=np.asarray([terminated]),
            truncated=np.asarray([truncated]),
            info={k: np.asarray([v]) for k, v in info.items() if k not in PRIVILEGED_INFO_KEYS},
        )


@runtime_checkable
class Agent(Protocol):
    """What every agent does: answer a batch of requests, and observe what happened."""

    def act(self, obs: Observation) -> np.ndarray:
        """Slates for a batch of requests: (B, k) int64 positions into ``candidate_ids``."""
        ...

    def observe(self, transition: Transition) -> None:
        """See one step's outcome; the agent decides (through its strategy) when to learn."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue identically (parameters, buffers, random streams)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        ...

    def act_one(self, obs: Observation) -> np.ndarray:
        """The slate (k,) for one request (a batch of one)."""
        ...

    def observe_one(
        self,
        obs: Observation,
        action: np.ndarray,
        reward: float,
        next_obs: Observation,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
    ) -> None:
        """Observe one single-environment step (a batch of one)."""
        ...


class AgentBase:
    """The one-sample convenience, defined by the batched methods (subclasses implement
    ``act`` and ``observe``)."""

    pretrain_requests: int = 0
    """Logged requests the agent wants to pretrain on (``agent.pretrain(world.log_interactions(
    n))``) before the stream; 0 for agents that do not pretrain."""

    def act(self, obs: Observation) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def observe(self, transition: Transition) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def act_one(self, obs: Observation) -> np.ndarray:
        """The slate (k,) for one request (``user_id`` of shape () or (1,), ``candidate_ids``
        (C,)): ``act`` on a batch of one."""
        if np.ndim(obs["candidate_ids"]) != 1 or np.shape(obs["user_id"]) not in ((), (1,)):
            raise ValueError(
                "act_one takes one request (candidate_ids of shape (C,), user_id of shape () or "
                f"(1,)), got candidate_ids of shape {np.shape(obs['candidate_ids'])} and user_id "
                f"of shape {np.shape(obs['user_id'])}; use act() for a batch"
            )
        return self.act(add_batch_axis(obs))[0]

    def observe_one(
        self,
        obs: Observation,
        action: np.ndarray,
        reward: float,
        next_obs: Observation,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
    ) -> None:
        """``observe`` on a batch of one built from a single environment's step."""
        self.observe(Transition.single(obs, action, reward, next_obs, terminated, truncated, info))

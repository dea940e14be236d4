"""The agent protocol: batch-first acting and observing, and the one-sample convenience.

Every agent answers a *batch* of ``B`` requests at once (the natively batched environment's
observation), and learns from a batch of transitions. The single-environment case is the batch
of one: :meth:`AgentBase.act_one` and :meth:`AgentBase.observe_one` add the batch axis, call
the batched method and strip the axis again, so the two paths cannot disagree.

What an agent may learn from is fixed here: :class:`Transition` drops the ground-truth keys of
``info`` (expected rewards, regime, drift events) when it is built, so that no agent can learn
from the evaluator's channel by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

__all__ = [
    "PRIVILEGED_INFO_KEYS",
    "Agent",
    "AgentBase",
    "Observation",
    "TaskSizes",
    "Transition",
    "add_batch_axis",
    "slates_from_action",
    "task_sizes",
]

Observation = Mapping[str, np.ndarray]
"""An observation batch: ``user_id`` (B,), ``user_features`` (B, f_u), ``history`` (B, H),
``candidate_ids`` (B, C), ``candidate_features`` (B, C, f_i), ``candidate_topics`` (B, C)."""

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
            for none.
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
        """The slate (k,) for one request: ``act`` on a batch of one."""
        if np.ndim(obs["user_id"]) != 0:
            raise ValueError(
                f"act_one takes one request (user_id of shape ()), got user_id of shape "
                f"{np.shape(obs['user_id'])}; use act() for a batch"
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

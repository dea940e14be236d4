"""The agent protocol: batch-first acting and observing, and the one-sample convenience.

Every agent answers a *batch* of ``B`` requests at once (the natively batched environment's
observation), and learns from a batch of transitions. The single-environment case is the batch
of one: :meth:`AgentBase.act_one` and :meth:`AgentBase.observe_one` add the batch axis, call
the batched method and strip the axis again, so the two paths cannot disagree.

What an agent may learn from is fixed here: :class:`Transition` drops the ground-truth keys of
``info`` (expected rewards, regime, drift events) when it is built, so that no agent can learn
from the evaluator's channel by accident. How a transition is checked before an agent learns
from it, and how observations are normalised, is :mod:`driftrec.agents.checks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from driftrec.validation import check_integer

__all__ = [
    "OBSERVATION_KEYS",
    "PRIVILEGED_INFO_KEYS",
    "Agent",
    "AgentBase",
    "Observation",
    "TaskSizes",
    "Transition",
    "add_batch_axis",
    "task_sizes",
]

Observation = Mapping[str, np.ndarray]
"""An observation batch: ``user_id`` (B,) or (B, 1), ``user_features`` (B, f_u), ``history``
(B, H), ``candidate_ids`` (B, C), ``candidate_features`` (B, C, f_i), ``candidate_topics``
(B, C). ``driftrec.agents.checks.observation_batch`` turns it into what agents read
(``user_id`` (B,))."""

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
        boxes = {key: _box(observation_space, key) for key in OBSERVATION_KEYS}
        if boxes["user_id"].shape not in ((), (1,)):
            raise ValueError(
                f"the user_id space of one request has shape () or (1,), got "
                f"{boxes['user_id'].shape}; pass env.single_observation_space for a vector "
                "environment"
            )
        return cls(
            num_users=int(boxes["user_id"].high.max()) + 1,
            num_items=int(boxes["candidate_ids"].high.max()) + 1,
            num_candidates=int(boxes["candidate_ids"].shape[0]),
            slate_size=int(action_space.nvec.shape[0]),
            user_feature_dim=int(boxes["user_features"].shape[0]),
            item_feature_dim=int(boxes["candidate_features"].shape[1]),
            num_topics=int(boxes["candidate_topics"].high.max()) + 1,
            history_length=int(boxes["history"].shape[0]),
        )


def _box(observation_space: spaces.Dict, key: str) -> spaces.Box:
    """The ``Box`` of ``key`` in a driftrec observation space."""
    space = observation_space.spaces[key]
    if not isinstance(space, spaces.Box):
        raise ValueError(f"agents need a Box space for {key!r}, got {space}")
    return space


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
    """What every agent does: answer a batch of requests, and observe what happened.

    What the experiment runner reads besides, when an agent has it (a user's agent too):

    - ``greedy(obs) -> (B, k)`` slates without exploration or learning: scored on the probe
      sets (forgetting, BWT, ACC); without it those are NaN.
    - ``scores(obs) -> (B, C)`` a score per candidate: its ranking quality on the probe (AUC,
      precision/recall/F1/NDCG@k); without it those are NaN.
    - ``learns = True`` (a class attribute): the agent learns as it serves, so under
      ``twin: auto`` it also runs on the no-drift twin (the continual-learning strategies and
      the RL agents do).
    """

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

    learns: ClassVar[bool] = False
    """Whether the agent learns as it serves (see :class:`Agent`); learning agents say True."""

    @property
    def pretrain_requests(self) -> int:
        """Logged requests the agent wants to pretrain on before the stream, through the
        environment's documented channel: ``agent.pretrain(env.log_interactions(
        agent.pretrain_requests))``; 0 for agents that do not pretrain."""
        return 0

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

"""The oracles: agents that read the environment's ground truth through its one documented,
privileged channel (``env.oracle_action(snapshot=None)`` and ``env.ground_truth_snapshot()``).
No learning agent uses that channel; the oracles bound what learning can reach.

Both need the environment itself (vector or single, possibly wrapped by gymnasium: they read
``env.unwrapped``), not its spaces.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium.error import ResetNeeded

from driftrec.agents.checks import check_transition, observation_batch
from driftrec.agents.protocol import AgentBase, Observation, Transition, task_sizes
from driftrec.slates import topic_diverse_top_k

__all__ = [
    "DiverseOracleAgent",
    "FrozenOracleAgent",
    "GroundTruth",
    "OracleAgent",
    "ground_truth_channel",
]


@runtime_checkable
class GroundTruth(Protocol):
    """The ground-truth channel of a driftrec environment (see ``RecDriftVectorEnv``)."""

    def oracle_action(self, snapshot: Any = None) -> np.ndarray:
        """The exact best action for the pending request(s): (B, k), or (k,) for a single
        environment; under ``snapshot``'s state if given."""
        ...

    def ground_truth_snapshot(self) -> Any:
        """An opaque, independent copy of the world as it is now."""
        ...


def ground_truth_channel(env: Any, agent: str) -> GroundTruth:
    """The ground-truth channel of ``env`` (itself, or ``env.unwrapped`` through gymnasium's
    wrappers), for the baseline named ``agent`` (in messages).

    Raises:
        TypeError: ``env`` is a pair of spaces, or not a driftrec environment.
    """
    if isinstance(env, tuple):
        raise TypeError(
            f"the {agent} reads ground truth through env.oracle_action(): pass the environment, "
            "not its spaces"
        )
    for target in (env, getattr(env, "unwrapped", None)):
        if isinstance(target, GroundTruth):
            return target
    raise TypeError(
        f"the {agent} reads ground truth through env.oracle_action(); pass a driftrec "
        f"environment, got {type(env).__name__}"
    )


def _check_pending(answered: int, n: int, agent: str) -> None:
    """Refuse an answer about ``answered`` pending requests to a question about ``n``."""
    if answered != n:
        raise ValueError(
            f"the {agent} answers the environment's {answered} pending request(s), but was "
            f"asked for {n}: call act with the observation the environment just returned"
        )


def _pending_action(action: np.ndarray, n: int, agent: str) -> np.ndarray:
    """The channel's answer as (n, k) int64, if it answers the ``n`` requests asked about."""
    action = np.asarray(action, dtype=np.int64)
    if action.ndim == 1:
        action = action[None]
    _check_pending(action.shape[0], n, agent)
    return action


class OracleAgent(AgentBase):
    """The exact best slate for every pending request, read from the environment's one
    privileged channel, ``env.oracle_action()`` (the world's true utilities). No other agent
    but the frozen oracle uses it; it is the ceiling that normalised reward is measured
    against.

    Args:
        env: the environment whose pending requests ``act`` answers (vector or single,
            possibly wrapped).
    """

    name = "oracle"
    """How errors name the agent."""

    def __init__(self, env: Any) -> None:
        self._channel = ground_truth_channel(env, self.name)
        self.sizes = task_sizes(env)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def act(self, obs: Observation) -> np.ndarray:
        n = len(observation_batch(obs, self.sizes, caller="act")["user_id"])
        return _pending_action(self._answer(), n, self.name)

    def _answer(self) -> np.ndarray:
        """The channel's best action for the pending requests."""
        return self._channel.oracle_action()

    def observe(self, transition: Transition) -> None:
        """Checks the transition (as every agent does) and learns nothing."""
        check_transition(transition, self.sizes)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class FrozenOracleAgent(OracleAgent):
    """A perfect model that stops learning: the exact best slates for the pending requests
    under the world *as it was when the agent was built* (``env.ground_truth_snapshot()``,
    taken at construction, e.g. right after ``reset``), read through
    ``env.oracle_action(snapshot)``.

    It equals the oracle until the world drifts, and then measures what drift costs a
    recommender that never updates, however good it was: the gap between the oracle and the
    frozen oracle is the value of adapting at all (the "no retraining" control of drift
    studies, Gama et al. 2014, "A survey on concept drift adaptation", ACM CSUR, with the
    model error taken out), and a learning agent's distance below the frozen oracle's curve
    shows how much of its loss is its own error rather than the drift.

    The snapshot is the environment's ground truth, not learned state: it cannot travel in a
    plain checkpoint. :meth:`state_dict` records the world clock at which it was taken (when
    the environment reports its clock), and :meth:`load_state_dict` accepts a state only from
    a frozen oracle whose snapshot was taken at the same clock.

    Args:
        env: the environment (vector or single, possibly wrapped), already reset.

    Raises:
        TypeError: ``env`` is not a driftrec environment (or is a pair of spaces).
        gymnasium.error.ResetNeeded: the environment has not been reset (there is no world to
            take a snapshot of yet).
    """

    name = "frozen oracle"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        advice = (
            "the frozen oracle takes its snapshot of the world when it is built: call "
            "env.reset(seed=...) before make_agent('frozen_oracle', env)"
        )
        if getattr(self._channel, "started", True) is False:
            raise ResetNeeded(advice)
        try:
            self._snapshot = self._channel.ground_truth_snapshot()
        except ResetNeeded as error:
            raise ResetNeeded(advice) from error
        clock = getattr(self._channel, "clock", None)
        self.snapshot_clock = None if clock is None else int(clock)
        """The world clock when the snapshot was taken (None if the environment does not
        report it)."""

    def __repr__(self) -> str:
        return f"FrozenOracleAgent(snapshot_clock={self.snapshot_clock})"

    def _answer(self) -> np.ndarray:
        return self._channel.oracle_action(self._snapshot)

    def state_dict(self) -> dict[str, Any]:
        """The clock of the snapshot (plain values: the snapshot itself stays with the
        environment)."""
        return {"snapshot_clock": self.snapshot_clock}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check that ``state`` comes from a frozen oracle with a snapshot of the same time
        (nothing else to restore: the agent never changes).

        Raises:
            ValueError: the snapshots were taken at different clocks.
        """
        saved = state["snapshot_clock"]
        if None not in (saved, self.snapshot_clock) and saved != self.snapshot_clock:
            raise ValueError(
                f"this state's snapshot was taken at t={saved}, this agent's at "
                f"t={self.snapshot_clock}: a snapshot is the environment's ground truth and "
                f"cannot be restored from a checkpoint; build the frozen oracle when the "
                f"environment is at t={saved}"
            )


class DiverseOracleAgent(OracleAgent):
    """The oracle's true utilities, served as topic-diverse slates: the best candidate of each
    topic first (``driftrec.slates.topic_diverse_top_k``), so a slate repeats a topic only when
    the candidates hold fewer topics than slots.

    It gives up a little of the current request's expected reward to avoid monotonous slates.
    Where monotony bores users (``monotony_boredom`` > 0, the ``monotony`` scenario), that buys
    longer, richer sessions: its reward per session exceeds the myopic oracle's, although its
    per-request regret against the oracle (which is measured in its own world) stays positive.
    It is the simple diversity-aware reference of the long-term setting (docs/rl.md).

    Args:
        env: the environment whose pending requests ``act`` answers (vector or single,
            possibly wrapped); it reads ``env.oracle_scores()``.
    """

    name = "diverse oracle"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        if not callable(getattr(self._channel, "oracle_scores", None)):
            raise TypeError(
                "the diverse oracle reads env.oracle_scores() (true utilities per candidate); "
                f"{type(self._channel).__name__} has no such method"
            )

    def act(self, obs: Observation) -> np.ndarray:
        batch = observation_batch(obs, self.sizes, caller="act")
        scores = np.asarray(self._channel.oracle_scores(), dtype=np.float64)  # type: ignore[attr-defined]
        scores = scores[None] if scores.ndim == 1 else scores
        _check_pending(len(scores), len(batch["user_id"]), self.name)
        return topic_diverse_top_k(scores, batch["candidate_topics"], self.sizes.slate_size)

"""Adapters that let generic RL policies act on driftrec: a score action and a per-candidate
observation layout, as pure functions and as Gymnasium wrappers (single and vector).

A flat MLP over the native observation cannot learn which position holds which item: the same
item turns up at any of the ``C`` positions, and the action names positions. The adapters
re-express one request so that a policy can share one scoring function over the candidates:

- **Action**: a score per candidate, ``Box(-1, 1, (C,), float32)`` (:func:`score_action_space`);
  the slate is the top-``k`` candidates by descending score, ties to the lower position
  (:func:`scores_to_slates`). Only the order of the scores matters: any strictly increasing map
  of the scores gives the same slate.
- **Observation**: ``Dict(user=Box((f_u + 1,)), candidates=Box((C, f_i + T + 2)))``
  (:func:`candidate_observation_space`, :func:`to_candidate_layout`), one row per candidate.

What the layout loses (a policy over it cannot use these, by construction):

- **ids**: the user id and the item ids are dropped, so a policy cannot memorise a user or an
  item (no per-id embedding, hence nothing learnt about an item's hidden quality beyond what its
  features show); users and items with the same features look the same.
- **raw history**: the ids of the recently clicked items are reduced to how full the history is
  (user part) and, per candidate, whether it is in the history and how recently; the topics and
  features of clicked items that are not candidates now are lost.
- **positions**: a candidate row does not say at which position it sits; a policy that scores
  rows independently is equivariant to the candidates' order (which is what makes it learnable).

Example:
    >>> from driftrec.envs import RecDriftEnv
    >>> env = CandidateObservation(ScoreAction(RecDriftEnv(num_users=50, num_items=60,
    ...                                                     num_candidates=5, slate_size=2)))
    >>> obs, _ = env.reset(seed=0)
    >>> obs["user"].shape, obs["candidates"].shape  # f_u + 1, (C, f_i + T + 2)
    ((9,), (5, 30))
    >>> scores_to_slates(np.array([0.2, 0.9, 0.2, -1.0, 0.5]), 3).tolist()
    [1, 4, 0]
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorActionWrapper, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from driftrec.envs.spaces import observation_space
from driftrec.simulators import WorldConfig
from driftrec.validation import check_integer

__all__ = [
    "CandidateObservation",
    "ScoreAction",
    "VectorCandidateObservation",
    "VectorScoreAction",
    "candidate_layout_dims",
    "candidate_observation_space",
    "score_action_space",
    "scores_to_slates",
    "to_candidate_layout",
]

SCORE_BOUND = 1.0
"""Scores live in [-SCORE_BOUND, SCORE_BOUND]: the symmetric unit box that Gaussian policies
(Stable-Baselines3, RLlib) clip their samples to."""

NATIVE_KEYS = (
    "user_features",
    "history",
    "candidate_ids",
    "candidate_features",
    "candidate_topics",
)


def scores_to_slates(scores: Any, slate_size: int, num_candidates: int | None = None) -> np.ndarray:
    """The slate of the top-``slate_size`` candidates by descending score.

    Args:
        scores: (B, C) or (C,) finite real scores, one per candidate position.
        slate_size: k, 1 <= k <= C.
        num_candidates: C, when the caller knows it (an environment's candidates): scores of
            another length are refused instead of ranked.

    Returns:
        (B, k) or (k,) int64 candidate positions, best first; equal scores go to the lower
        position (a stable sort), so the result is deterministic.

    Raises:
        TypeError: scores are not real numbers (bool, complex, object); slate_size not an int.
        ValueError: wrong number of axes, k out of range, NaN or infinite scores.

    >>> scores_to_slates(np.array([[0.0, 0.5, 0.5], [3, 2, 1]]), 2).tolist()
    [[1, 2], [0, 1]]
    """
    slate_size = check_integer("slate_size", slate_size)
    arr = np.asarray(scores)
    if arr.dtype.kind not in "fiu":
        raise TypeError(
            f"scores must be a real-valued array of shape (C,) or (B, C), got dtype {arr.dtype}"
        )
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(
            f"scores must have shape (C,) or (B, C) with C >= 1 (one score per candidate "
            f"position), got shape {arr.shape}"
        )
    c = arr.shape[-1]
    if num_candidates is not None and c != num_candidates:
        raise ValueError(
            f"scores must have one entry per candidate, {num_candidates} in this environment, "
            f"got shape {arr.shape}: check the size of the policy's output layer"
        )
    if not 1 <= slate_size <= c:
        raise ValueError(
            f"slate_size must be in [1, {c}] (the number of candidates), got {slate_size}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "an infinite value"
        raise ValueError(
            f"scores contain {bad}; every candidate needs a finite score (check the policy's "
            f"outputs, e.g. with np.nan_to_num, before turning them into slates)"
        )
    order = np.argsort(-arr.astype(np.float64), axis=-1, kind="stable")
    return order[..., :slate_size].astype(np.int64)


def batch_scores_to_slates(
    scores: Any, num_envs: int, num_candidates: int, slate_size: int
) -> np.ndarray:
    """:func:`scores_to_slates` of a vector environment's actions: scores of exactly the shape
    (num_envs, C), else a ``ValueError`` that names it."""
    shape = np.shape(scores)
    if shape != (num_envs, num_candidates):
        raise ValueError(
            f"actions must be scores of shape (num_envs={num_envs}, C={num_candidates}), got "
            f"{shape}"
        )
    return scores_to_slates(scores, slate_size)  # the shape, C included, is checked


def score_action_space(num_candidates: int) -> spaces.Box:
    """``Box(-1, 1, (C,), float32)``: one score per candidate position. Only the order of the
    scores matters (see :func:`scores_to_slates`); the finite, symmetric unit bounds are what
    Gaussian policies expect (Stable-Baselines3 clips its samples to them)."""
    num_candidates = check_integer("num_candidates", num_candidates, minimum=1)
    return spaces.Box(-SCORE_BOUND, SCORE_BOUND, (num_candidates,), np.float32)


def _native_space(config_or_observation_space: WorldConfig | spaces.Dict) -> spaces.Dict:
    if isinstance(config_or_observation_space, WorldConfig):
        return observation_space(config_or_observation_space)
    space = config_or_observation_space
    if not isinstance(space, spaces.Dict) or any(key not in space.spaces for key in NATIVE_KEYS):
        raise TypeError(
            f"expected a WorldConfig or the observation space of one driftrec request (a Dict "
            f"with keys {list(NATIVE_KEYS)}, e.g. env.observation_space or, for a vector "
            f"environment, env.single_observation_space), got {space!r}"
        )
    if space["candidate_ids"].shape is None or len(space["candidate_ids"].shape) != 1:
        raise ValueError(
            "expected the space of one request (candidate_ids of shape (C,)); for a vector "
            "environment pass env.single_observation_space"
        )
    return space


def _num_topics(native: spaces.Dict) -> int:
    topics = native["candidate_topics"]
    assert isinstance(topics, spaces.Box)
    return int(np.max(topics.high)) + 1


def candidate_observation_space(
    config_or_observation_space: WorldConfig | spaces.Dict,
) -> spaces.Dict:
    """The per-candidate layout of one request: ``Dict(user, candidates)``.

    ``user``: (f_u + 1,) float32: the user features, then the fraction of the history that is
    filled (0 for a user who never clicked). ``candidates``: (C, f_i + T + 2) float32, one row
    per candidate position: its item features, a one-hot of its topic (T topics), whether it is
    in the user's history (0/1), and how recently (1 for the newest click, falling by 1/H per
    older slot, 0 if absent).

    Args:
        config_or_observation_space: a ``WorldConfig`` or the native observation space of one
            request (``env.observation_space``, ``vector_env.single_observation_space``).
    """
    native = _native_space(config_or_observation_space)
    user, items = native["user_features"], native["candidate_features"]
    assert isinstance(user, spaces.Box) and isinstance(items, spaces.Box)
    c, t = items.shape[0], _num_topics(native)
    extra_user = np.array([0.0]), np.array([1.0])
    extra_item = np.zeros((c, t + 2)), np.ones((c, t + 2))
    return spaces.Dict(
        {
            "user": spaces.Box(
                np.concatenate([user.low, extra_user[0]]).astype(np.float32),
                np.concatenate([user.high, extra_user[1]]).astype(np.float32),
                dtype=np.float32,
            ),
            "candidates": spaces.Box(
                np.concatenate([items.low, extra_item[0]], axis=1).astype(np.float32),
                np.concatenate([items.high, extra_item[1]], axis=1).astype(np.float32),
                dtype=np.float32,
            ),
        }
    )


def candidate_layout_dims(space: object) -> tuple[int, int, int]:
    """``(f_u, C, f_c)`` of a per-candidate observation space of one request,
    ``Dict(user=Box((f_u,)), candidates=Box((C, f_c)))`` (what
    :func:`candidate_observation_space` gives): what a network over the layout is sized by.

    Raises:
        TypeError: ``space`` is not a ``Dict`` of exactly ``user`` and ``candidates``.
        ValueError: they are not a ``Box`` of one axis and a ``Box`` of two.

    >>> space = candidate_observation_space(WorldConfig(num_candidates=5, slate_size=2))
    >>> candidate_layout_dims(space)
    (9, 5, 30)
    """
    if not isinstance(space, spaces.Dict) or set(space.spaces) != {"user", "candidates"}:
        raise TypeError(
            f"expected the per-candidate layout Dict(user, candidates) of "
            f"driftrec.rl.adapters.candidate_observation_space, got {space!r}"
        )
    user, candidates = space["user"], space["candidates"]
    if not (
        isinstance(user, spaces.Box)
        and isinstance(candidates, spaces.Box)
        and len(user.shape) == 1
        and len(candidates.shape) == 2
    ):
        raise ValueError(f"expected user (f_u,) and candidates (C, f_c), got {space!r}")
    return user.shape[0], candidates.shape[0], candidates.shape[1]


def to_candidate_layout(
    obs: dict[str, Any], config_or_observation_space: WorldConfig | spaces.Dict
) -> dict[str, np.ndarray]:
    """A driftrec observation in the layout of :func:`candidate_observation_space`.

    Args:
        obs: one request's observation, or a batch of them (every array with a leading axis B).
        config_or_observation_space: the world's config or the native space of one request
            (it gives the number of topics T).

    Returns:
        ``{"user": (f_u + 1,), "candidates": (C, f_i + T + 2)}`` float32, with a leading B
        when ``obs`` is batched.
    """
    if isinstance(config_or_observation_space, WorldConfig):
        t = config_or_observation_space.num_topics
    else:
        t = _num_topics(_native_space(config_or_observation_space))
    return _layout(obs, t)


def _layout(obs: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
    """:func:`to_candidate_layout` for a world of ``t`` topics (the wrappers' per-step path:
    the space was checked once, when they were built)."""
    missing = [key for key in NATIVE_KEYS if key not in obs]
    if missing:
        raise KeyError(f"obs lacks {missing}: expected a driftrec observation with {NATIVE_KEYS}")
    ids = np.asarray(obs["candidate_ids"])
    single = ids.ndim == 1
    expand = (lambda a: np.asarray(a)[None]) if single else np.asarray
    ids, history = expand(ids), expand(obs["history"])
    topics, items = expand(obs["candidate_topics"]), expand(obs["candidate_features"])
    user = expand(obs["user_features"])
    if topics.size and (topics.min() < 0 or topics.max() >= t):
        raise ValueError(
            f"candidate_topics must lie in [0, {t - 1}] (the space's topics), got values from "
            f"{topics.min()} to {topics.max()}: pass the space of the environment that made obs"
        )
    h = history.shape[-1]
    match = ids[:, :, None] == history[:, None, :]  # (B, C, H); padding (-1) matches no id
    recency = (1.0 - np.arange(h, dtype=np.float32) / max(h, 1)) * match
    last = recency.max(-1, keepdims=True, initial=0.0)
    candidates = np.concatenate(
        [
            items.astype(np.float32, copy=False),
            (topics[..., None] == np.arange(t)).astype(np.float32),
            (last > 0).astype(np.float32),  # in the history: the least recent slot is 1/H > 0
            last.astype(np.float32),
        ],
        axis=-1,
    )
    if h:
        fill = (history >= 0).mean(-1, keepdims=True, dtype=np.float32)
    else:
        fill = np.zeros((len(user), 1), np.float32)
    out = {
        "user": np.concatenate([user, fill], axis=-1).astype(np.float32),
        "candidates": candidates,
    }
    return {key: value[0] for key, value in out.items()} if single else out


def _slate_action(native: spaces.Space, wrapper: str, hint: str) -> tuple[int, int]:
    """(C, k) of a driftrec slate action space ``MultiDiscrete([C] * k)``; a ``TypeError`` that
    starts with ``wrapper`` otherwise."""
    if not isinstance(native, spaces.MultiDiscrete) or native.nvec.ndim != 1:
        raise TypeError(f"{wrapper} MultiDiscrete([C] * k), got {native!r}; {hint}")
    return int(native.nvec[0]), int(native.nvec.shape[0])


class ScoreAction(gym.ActionWrapper):
    """Takes a score per candidate (``Box(-1, 1, (C,))``) and serves the top-k slate
    (:func:`scores_to_slates`). Wrap a :class:`~driftrec.envs.RecDriftEnv` (or a wrapper of
    one)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.num_candidates, self.slate_size = _slate_action(
            env.action_space,
            "ScoreAction wraps a driftrec environment whose action space is",
            "apply it before other action wrappers",
        )
        self.action_space = score_action_space(self.num_candidates)

    def action(self, action: Any) -> np.ndarray:
        if np.ndim(action) != 1:
            raise ValueError(
                f"the action must be scores of shape (C={self.num_candidates},), got shape "
                f"{np.shape(action)}"
            )
        return scores_to_slates(action, self.slate_size, self.num_candidates)


class CandidateObservation(gym.ObservationWrapper):
    """Observations in the per-candidate layout (:func:`to_candidate_layout`)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.native_space = _native_space(env.observation_space)  # type: ignore[arg-type]
        self.num_topics = _num_topics(self.native_space)
        self.observation_space = candidate_observation_space(self.native_space)

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _layout(observation, self.num_topics)


class VectorScoreAction(VectorActionWrapper):
    """:class:`ScoreAction` for a :class:`~driftrec.envs.RecDriftVectorEnv`: takes (B, C)
    scores and serves (B, k) slates; either autoreset mode."""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self.num_candidates, self.slate_size = _slate_action(
            env.single_action_space,
            "VectorScoreAction wraps a driftrec vector environment whose single action space is",
            "apply it before other action wrappers",
        )
        self.single_action_space = score_action_space(self.num_candidates)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def actions(self, actions: Any) -> np.ndarray:
        return batch_scores_to_slates(actions, self.num_envs, self.num_candidates, self.slate_size)


class VectorCandidateObservation(VectorWrapper):
    """:class:`CandidateObservation` for a :class:`~driftrec.envs.RecDriftVectorEnv`, in
    either autoreset mode. (Gymnasium's ``VectorObservationWrapper`` refuses ``SAME_STEP``
    environments; this wrapper transforms the whole batch at once, and since the driftrec
    vector environment puts no ``final_obs`` in its info, there is nothing else to map.)"""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self.native_space = _native_space(env.single_observation_space)  # type: ignore[arg-type]
        self.num_topics = _num_topics(self.native_space)
        self.single_observation_space = candidate_observation_space(self.native_space)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return _layout(obs, self.num_topics), info

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return _layout(obs, self.num_topics), reward, terminated, truncated, info

"""Gymnasium environments over a drifting world: a natively batched vector environment, and the
single environment defined as its one-session case (one set of dynamics, not two)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from driftrec.simulators import SessionBatch, World, WorldConfig
from driftrec.simulators.population import FEATURE_BOUND
from driftrec.simulators.scenarios import build_world

__all__ = ["RecDriftEnv", "RecDriftVectorEnv", "observation_space"]


def observation_space(config: WorldConfig) -> spaces.Dict:
    """The observation space of one request for a world with ``config``."""
    c, h = config.num_candidates, config.history_length
    return spaces.Dict(
        {
            "user_id": spaces.Box(0, config.num_users - 1, (), np.int64),
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
    k, c = config.slate_size, config.num_candidates
    arr = np.asarray(action)
    expected = f"an integer array of shape {(batch, k) if batch > 1 else (k,)}"
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        hint = " (it contains NaN)" if arr.dtype.kind == "f" and np.isnan(arr).any() else ""
        raise TypeError(
            f"action must be {expected} of candidate positions in [0, {c - 1}], got dtype "
            f"{arr.dtype}{hint}; e.g. np.argsort(-scores)[..., :{k}]"
        )
    if arr.shape == (k,) and batch == 1:
        arr = arr[None]
    if arr.shape != (batch, k):
        raise ValueError(f"action must be {expected}, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= c):
        raise ValueError(
            f"action positions must be in [0, {c - 1}] (indices into the candidate list), got "
            f"values from {arr.min()} to {arr.max()}"
        )
    slates = arr.astype(np.int64)
    # A position already shown earlier in the slate is shown once only: the later slot is empty.
    # A stable sort keeps equal positions in slot order, so each repeat follows its first show.
    order = np.argsort(slates, axis=1, kind="stable")
    ordered = np.take_along_axis(slates, order, axis=1)
    repeat = ordered[:, 1:] == ordered[:, :-1]
    if repeat.any():
        rows = np.broadcast_to(np.arange(batch)[:, None], repeat.shape)
        slates[rows[repeat], order[:, 1:][repeat]] = -1
    return slates


def slates_to_action(slates: np.ndarray) -> np.ndarray:
    """Express slates with empty slots (-1) as actions: an empty slot repeats the first item."""
    return np.where(slates >= 0, slates, slates[:, :1]).astype(np.int64)


def _make_world(scenario: str, seed: int | None, params: dict[str, Any]) -> World:
    return build_world(scenario, seed=seed, **params)


class RecDriftVectorEnv(VectorEnv):
    """``num_envs`` concurrent user sessions over one shared, drifting world (natively batched).

    The spaces, rewards and info are those of :class:`RecDriftEnv`, batched over a leading axis
    of size ``num_envs``. All sessions share one world and its clock: one ``step`` serves
    ``num_envs`` requests and advances the clock by ``num_envs``.

    Autoreset: same step. When a session ends, ``terminations[i]`` is True and the observation
    returned for slot ``i`` is already the first request of the next user's session; there is no
    truncation and no ``final_obs`` (the user left: nothing of value follows).

    Info (arrays of length ``num_envs``): ``expected_reward``, ``oracle_expected_reward``,
    ``regime``, ``t`` (clock of the request), ``click_slot`` (observed clicked slot, -1 none),
    ``clicked_item``, ``drift_events`` (object array; each entry is the tuple of
    :class:`~driftrec.simulators.DriftEvent` fired by this step, the same for every slot).

    Args:
        num_envs: concurrent sessions B.
        scenario: a preset name (see ``driftrec.simulators.SCENARIOS``).
        **kwargs: world settings (``WorldConfig`` fields such as ``num_users``,
            ``num_items``, ``num_candidates``, ``slate_size``) and the scenario's parameters.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, scenario: str = "stationary", **kwargs: Any) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.scenario = scenario
        self.params = dict(kwargs)
        # Build once now so that bad parameters fail at construction, with the list of valid ones.
        self.world = _make_world(scenario, None, self.params)
        self.config = self.world.config
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.MultiDiscrete(
            np.full(self.config.slate_size, self.config.num_candidates, dtype=np.int64)
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.sessions: SessionBatch | None = None
        self._np_random_seed = None

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start sessions. ``seed`` rebuilds the world from that seed (a list: its first entry,
        since all sessions share one world); without a seed the world persists and only the
        sessions restart. ``options={"keep_sessions": True}`` keeps running sessions."""
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        if seed is not None or self.sessions is None:
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0])
            self._np_random_seed = seed
            self.world = _make_world(self.scenario, seed, self.params)
            self.sessions = SessionBatch(self.world, self.num_envs)
        elif not (options or {}).get("keep_sessions", False):
            self.sessions.restart(np.arange(self.num_envs))
        return self.world.observe(self.sessions.requests), {"t": self.sessions.requests.t}

    def step(self, actions: Any):
        sessions = self._require_sessions()
        slates = action_to_slates(actions, self.num_envs, self.config)
        t = sessions.requests.t
        result = sessions.serve(slates)
        r = result.response
        events = np.empty(self.num_envs, dtype=object)
        events.fill(r.events)
        info = {
            "expected_reward": r.expected_reward,
            "oracle_expected_reward": r.oracle_expected_reward,
            "regime": np.full(self.num_envs, self.world.regime(t), dtype=np.int64),
            "t": t + np.arange(self.num_envs, dtype=np.int64),
            "click_slot": r.click_slot,
            "clicked_item": r.clicked_item,
            "drift_events": events,
        }
        obs = self.world.observe(sessions.requests)
        return obs, r.reward, result.terminated, np.zeros(self.num_envs, bool), info

    def oracle_action(self) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (B, k) for the pending
        requests. Only the oracle baseline may use it; learning agents must not."""
        sessions = self._require_sessions()
        return slates_to_action(self.world.oracle(sessions.requests)[0])

    def _require_sessions(self) -> SessionBatch:
        if self.sessions is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        return self.sessions


class RecDriftEnv(gym.Env):
    """A recommendation environment whose users drift: one step is one request, one episode is
    one user session, and the world persists (and keeps drifting) across episodes.

    ## Description
    A population of users with hidden, drifting preferences visits a catalogue of items. Each
    request shows the agent one user and ``num_candidates`` retrieved candidate items; the agent
    answers with a slate of ``slate_size`` of them. The user clicks at most one item, following a
    multinomial logit (or cascade) choice model with position bias. How and when the world
    drifts is set by the ``scenario`` (see ``docs/scenarios.md``).

    ## Action Space
    ``MultiDiscrete([C] * k)``: for each slot, a position in the candidate list. Every sample is
    valid: a position repeated in the slate is shown once, at its first slot, and the later
    slot stays empty. Anything else (wrong shape, non-integer dtype, NaN, out of range) raises
    an error that says what was expected, and leaves the world unchanged.

    ## Observation Space
    ``Dict``:

    | key                | shape    | dtype   | meaning                                        |
    |--------------------|----------|---------|------------------------------------------------|
    | user_id            | ()       | int64   | id of the requesting user                      |
    | user_features      | (f_u,)   | float32 | noisy observable user features                 |
    | history            | (H,)     | int64   | recent clicked item ids, newest first, -1 pad  |
    | candidate_ids      | (C,)     | int64   | ids of the candidate items                     |
    | candidate_features | (C, f_i) | float32 | noisy observable item features                 |
    | candidate_topics   | (C,)     | int64   | topic of each candidate                        |

    ## Rewards
    With ``reward="click"`` (default): 1 if the user clicks an item of the slate, else 0. With
    ``reward="engagement"``: the clicked item's engagement (log-normal, mean 1). Observed clicks
    may be corrupted by the ``noisy`` scenario; ``info["expected_reward"]`` is always the true one.

    ## Episode End
    Terminated when the user's session budget (geometric, mean ``session_mean_length``) is spent
    or when, after a request without a click, the user leaves (``leave_prob``). Never truncated.
    On termination the observation returned is already the first request of the next session,
    which ``reset()`` (without a seed) then returns again: the world wastes no request.

    ## Info
    ``expected_reward`` (exact expected reward of the served slate under the true state),
    ``oracle_expected_reward`` (the exact best slate's), ``regime``, ``t`` (world clock of the
    request), ``click_slot`` (observed clicked slot or -1), ``clicked_item`` (id or -1),
    ``drift_events`` (tuple of ``DriftEvent`` fired by this step).

    ## Ground truth
    ``oracle_action()`` returns the exact best action for the current request. It is the one
    privileged channel, meant for the oracle baseline only.

    ## Arguments
    ``scenario`` (preset name), ``render_mode`` (``None`` or ``"ansi"``), world settings
    (``num_users``, ``num_items``, ``num_candidates``, ``slate_size``, ... any ``WorldConfig``
    field) and the scenario's parameters. Unknown names fail with the list of valid ones.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self, scenario: str = "stationary", render_mode: str | None = None, **kwargs: Any
    ) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.batch = RecDriftVectorEnv(1, scenario, **kwargs)
        self.config = self.batch.config
        self.observation_space = self.batch.single_observation_space
        self.action_space = self.batch.single_action_space
        self._pending_obs: dict[str, np.ndarray] | None = None
        self._last: dict[str, Any] = {}

    @property
    def world(self) -> World:
        return self.batch.world

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and self.batch.sessions is None:
            seed = int(self.np_random.integers(2**63))
        if seed is None and self._pending_obs is not None:
            obs_b = self._pending_obs  # the next session is already waiting
        else:
            obs_b, _ = self.batch.reset(seed=seed, options=options)
        self._pending_obs = None
        return _first(obs_b), {"t": int(self.batch.sessions.requests.t)}

    def step(self, action: Any):
        obs_b, reward, terminated, truncated, info_b = self.batch.step(action)
        info = {key: _scalar(value[0]) for key, value in info_b.items()}
        self._pending_obs = obs_b if terminated[0] else None
        self._last = info
        return _first(obs_b), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def oracle_action(self) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (k,) for this request."""
        return self.batch.oracle_action()[0]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self.batch.sessions is None:
            return "RecDriftEnv (not reset)"
        s = self.batch.sessions
        line = f"t={s.requests.t} user={s.users[0]} regime={self.world.regime()}"
        if self._last:
            line += (
                f" last: click_slot={self._last['click_slot']}"
                f" expected={self._last['expected_reward']:.3f}"
                f" oracle={self._last['oracle_expected_reward']:.3f}"
            )
        return line


def _first(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.asarray(value[0]) for key, value in batch.items()}


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

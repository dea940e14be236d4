"""Gymnasium environments over a drifting world: a natively batched vector environment, and the
single environment defined as its one-session case (one set of dynamics, not two)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from driftrec.envs.registration import env_id
from driftrec.simulators import LoggedInteractions, Requests, SessionBatch, World, WorldConfig
from driftrec.simulators.population import FEATURE_BOUND
from driftrec.simulators.scenarios import resolve_world
from driftrec.simulators.world import check_seed
from driftrec.slates import empty_repeats, slates_to_action
from driftrec.validation import check_integer

__all__ = [
    "DEFAULT_AUTORESET_MODE",
    "RecDriftEnv",
    "RecDriftVectorEnv",
    "observation_space",
    "resolve_scenario",
]


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
    return empty_repeats(arr)


def _gymnasium_version() -> tuple[int, ...]:
    return tuple(int(part) for part in gym.__version__.split(".")[:2] if part.isdigit())


DEFAULT_AUTORESET_MODE = (
    AutoresetMode.SAME_STEP if _gymnasium_version() >= (1, 4) else AutoresetMode.NEXT_STEP
)
"""The vector environment's autoreset mode when none is asked for: same-step on gymnasium >= 1.4,
whose vector wrappers handle it; next-step on 1.1-1.3, whose ``RecordEpisodeStatistics`` and
other vector wrappers assume next-step (same-step episodes would be counted one step short)."""


def resolve_scenario(scenario: str | None, preset: str | None) -> str:
    """The scenario of an environment: ``scenario``, or the ``preset`` of a per-scenario id
    (``driftrec/Sudden-v0`` is built with ``preset="sudden"``), which ``scenario`` may not swap."""
    if preset is not None:
        if scenario is not None and scenario != preset:
            raise ValueError(
                f"{env_id(preset)} is the {preset!r} preset; scenario={scenario!r} would swap "
                f"it for another. Use gymnasium.make('driftrec/RecDrift-v0', scenario="
                f"{scenario!r}, ...) to choose the scenario by name"
            )
        return preset
    return "stationary" if scenario is None else scenario


def _autoreset_mode(mode: AutoresetMode | str | None) -> AutoresetMode:
    if mode is None:
        return DEFAULT_AUTORESET_MODE
    try:
        mode = AutoresetMode(mode)
    except ValueError:
        mode = None
    if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
        raise ValueError(
            "autoreset_mode must be AutoresetMode.SAME_STEP or AutoresetMode.NEXT_STEP (or "
            "'SameStep' / 'NextStep')"
        )
    return mode


class RecDriftVectorEnv(VectorEnv):
    """``num_envs`` concurrent user sessions over one shared, drifting world (natively batched).

    The spaces, rewards and info are those of :class:`RecDriftEnv`, batched over a leading axis
    of size ``num_envs``. All sessions share one world and its clock: one ``step`` serves
    ``num_envs`` requests and advances the clock by ``num_envs``. (Gymnasium's
    ``make_vec(..., vectorization_mode="sync")`` instead builds ``num_envs`` separate worlds
    whose clocks each run ``num_envs`` times slower, so drift fires at the wrong step.)

    Autoreset (``autoreset_mode``, see https://farama.org/Vector-Autoreset-Mode):

    - ``SAME_STEP`` (the default on gymnasium >= 1.4): when a session ends, ``terminations[i]``
      is True and the observation returned for slot ``i`` is already the first request of the
      next user's session; no request is wasted. There is no truncation and no ``final_obs``
      (the user left: nothing of value follows).
    - ``NEXT_STEP`` (the default on gymnasium 1.1-1.3, and what gymnasium's stateful vector
      wrappers such as ``NormalizeObservation`` require): when a session ends, slot ``i``
      returns its terminal observation (the ended user, with the history updated by the last
      request, over that request's candidates); on the next step slot ``i``'s action is ignored,
      no request is served for it (the clock does not count it), its reward is 0, ``served[i]``
      is False, and it returns the first request of the next session.

    Info (every value an array of length ``num_envs``): ``expected_reward``,
    ``oracle_expected_reward`` (0 where not served), ``regime``, ``t`` (clock of the row's
    request; the step's starting clock where not served), ``click_slot`` (observed clicked slot,
    -1 none), ``clicked_item``, ``served`` (bool: the row's action was served), ``drift_events``
    (object array; each entry is the tuple of :class:`~driftrec.simulators.DriftEvent` fired by
    this step, the same for every slot). Reset info: ``t`` (the clock, per slot).

    Args:
        num_envs: concurrent sessions B.
        scenario: a preset name (see ``driftrec.simulators.SCENARIOS``; default
            ``"stationary"``).
        autoreset_mode: ``AutoresetMode.SAME_STEP`` or ``AutoresetMode.NEXT_STEP`` (default:
            :data:`DEFAULT_AUTORESET_MODE`).
        preset: set by the per-scenario ids (``driftrec/Sudden-v0``); a different ``scenario``
            is then an error.
        **kwargs: world settings (``WorldConfig`` fields such as ``num_users``,
            ``num_items``, ``num_candidates``, ``slate_size``) and the scenario's parameters.
            Every value is checked here, against the others: a bad one fails now, never
            mid-run. The world itself is drawn at the first ``reset``.
    """

    metadata = {"autoreset_mode": DEFAULT_AUTORESET_MODE, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | None = None,
        *,
        autoreset_mode: AutoresetMode | str | None = None,
        preset: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.num_envs = check_integer("num_envs", num_envs, minimum=1)
        self.scenario = resolve_scenario(scenario, preset)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.params = dict(kwargs)
        self.spec_ = resolve_world(self.scenario, **self.params)  # every check, nothing drawn
        self.config = self.spec_.config
        self.world: World | None = None
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.MultiDiscrete(
            np.full(self.config.slate_size, self.config.num_candidates, dtype=np.int64)
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.sessions: SessionBatch | None = None
        self._np_random_seed = None
        self._resetting = np.zeros(self.num_envs, dtype=bool)

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
            seed = check_seed(seed)
            self._np_random_seed = seed
            self.world = self.spec_.build(seed)
            self.sessions = SessionBatch(self.world, self.num_envs)
        elif not (options or {}).get("keep_sessions", False):
            self.sessions.restart(np.arange(self.num_envs))
        self._resetting[:] = False
        clock = np.full(self.num_envs, self.sessions.requests.t, dtype=np.int64)
        return self.world.observe(self.sessions.requests), {"t": clock}

    def step(self, actions: Any):
        obs, reward, terminated, truncated, info, _ = self._step(actions)
        return obs, reward, terminated, truncated, info

    def _step(self, actions: Any, final_obs: bool = False):
        """``step``, and with ``final_obs`` the terminal observations of the sessions that ended
        (a dict of (n_ended, ...) arrays, rows in slot order), else None."""
        sessions = self._require_sessions()
        slates = action_to_slates(actions, self.num_envs, self.config)
        world = self.world
        t = sessions.requests.t
        before = sessions.requests
        active = ~self._resetting if self._resetting.any() else None
        result = sessions.serve(slates, active)
        r = result.response
        rows = np.arange(self.num_envs) if active is None else np.flatnonzero(active)
        n = self.num_envs
        events = np.empty(n, dtype=object)
        events.fill(r.events)
        clock = np.full(n, t, dtype=np.int64)
        clock[rows] = t + np.arange(len(rows), dtype=np.int64)
        info = {
            "expected_reward": _scatter(r.expected_reward, rows, n, 0.0),
            "oracle_expected_reward": _scatter(r.oracle_expected_reward, rows, n, 0.0),
            "regime": np.full(n, world.regime(t), dtype=np.int64),
            "t": clock,
            "click_slot": _scatter(r.click_slot, rows, n, -1),
            "clicked_item": _scatter(r.clicked_item, rows, n, -1),
            "served": _scatter(np.ones(len(rows), bool), rows, n, False),
            "drift_events": events,
        }
        reward = _scatter(r.reward, rows, n, 0.0)
        obs = world.observe(sessions.requests)
        ended = np.flatnonzero(result.terminated)
        terminal = None
        if len(ended) and (final_obs or self.autoreset_mode == AutoresetMode.NEXT_STEP):
            terminal = world.observe(before.take(ended))  # the ended users, history updated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if terminal is not None:
                for key, value in terminal.items():
                    obs[key][ended] = value
            self._resetting = result.terminated.copy()
        return obs, reward, result.terminated, np.zeros(n, bool), info, terminal

    # ------------------------------------------------------------------ ground truth

    @property
    def started(self) -> bool:
        """Whether ``reset`` has drawn the world and started the sessions."""
        return self.sessions is not None

    @property
    def clock(self) -> int:
        """The world clock: requests served so far (the next request is served at it)."""
        return self._require_sessions().requests.t

    def pending_requests(self) -> Requests:
        """Ground truth of the requests waiting for an action (users, candidates, their true
        utilities): for evaluation and rendering, never for learning agents."""
        return self._require_sessions().requests

    def oracle_action(self, snapshot: World | None = None) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (B, k) for the pending
        requests. Only the oracle baselines may use it; learning agents must not.

        Args:
            snapshot: a world from :meth:`ground_truth_snapshot`: the best action for the same
                users and candidates under that earlier state of the world instead (what a
                perfect model that stopped learning then would serve).
        """
        requests = self.pending_requests()
        if snapshot is None:
            return slates_to_action(self.world.oracle(requests)[0])
        return slates_to_action(snapshot.oracle(snapshot.rescore(requests))[0])

    def ground_truth_snapshot(self) -> World:
        """An independent copy of the world as it is now, for :meth:`oracle_action`."""
        self._require_sessions()
        return self.world.snapshot()

    def log_interactions(
        self, n: int, policy: str | Any = "uniform", temperature: float = 1.0
    ) -> LoggedInteractions:
        """``n`` interactions logged under a logging policy from the current state, with exact
        slate propensities, as if they happened just before now (the world is not changed): the
        data for pretraining (``agent.pretrain(env.log_interactions(n))``) and off-policy work.
        See :meth:`driftrec.simulators.World.log_interactions` for ``policy`` and
        ``temperature``. Observations have this environment's layout."""
        self._require_sessions()
        return self.world.log_interactions(n, policy, temperature)

    def _require_sessions(self) -> SessionBatch:
        if self.sessions is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        return self.sessions


def _scatter(values: np.ndarray, rows: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """``values`` for ``rows``, ``fill`` elsewhere: an (n,) array (``values`` itself when every
    row is there)."""
    if len(rows) == n:
        return values
    out = np.full(n, fill, dtype=values.dtype)
    out[rows] = values
    return out


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
    | user_id            | (1,)     | int64   | id of the requesting user                      |
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
    privileged channel, meant for the oracle baseline only. Through ``gymnasium.make`` the
    environment is wrapped: call it as ``env.unwrapped.oracle_action()``.

    ## Arguments
    ``scenario`` (preset name; the per-scenario ids such as ``driftrec/Sudden-v0`` fix it and
    refuse another), ``render_mode`` (``None`` or ``"ansi"``), world settings (``num_users``,
    ``num_items``, ``num_candidates``, ``slate_size``, ... any ``WorldConfig`` field) and the
    scenario's parameters. Every value is checked at construction, against the others (unknown
    names fail with the list of valid ones; wrong types, NaN and infinities are refused); the
    world is drawn at the first ``reset``.

    ## Version History
    * v0: initial release. ``user_id`` has shape (1,) (Stable-Baselines3 cannot take a 0-d
      observation).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | None = None,
        render_mode: str | None = None,
        *,
        preset: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.batch = RecDriftVectorEnv(
            1, scenario, autoreset_mode=AutoresetMode.SAME_STEP, preset=preset, **kwargs
        )
        self.config = self.batch.config
        self.observation_space = self.batch.single_observation_space
        self.action_space = self.batch.single_action_space
        self._pending_obs: dict[str, np.ndarray] | None = None
        self._last: dict[str, Any] = {}
        self._last_slate: np.ndarray | None = None

    @property
    def world(self) -> World | None:
        """The world (None until the first ``reset``, which draws it)."""
        return self.batch.world

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and not self.batch.started:
            seed = int(self.np_random.integers(2**63))
        if seed is None and self._pending_obs is not None:
            obs_b = self._pending_obs  # the next session is already waiting
        else:
            obs_b, _ = self.batch.reset(seed=seed, options=options)
        self._pending_obs = None
        return _first(obs_b), {"t": self.batch.clock}

    def step(self, action: Any):
        obs_b, reward, terminated, truncated, info_b = self.batch.step(action)
        info = {key: _scalar(value[0]) for key, value in info_b.items()}
        self._pending_obs = obs_b if terminated[0] else None
        self._last = info
        if self.render_mode == "rgb_array":
            self._last_slate = action_to_slates(action, 1, self.config)[0]
        return _first(obs_b), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def oracle_action(self, snapshot: World | None = None) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (k,) for this request
        (under ``snapshot``'s state if given; see :meth:`RecDriftVectorEnv.oracle_action`)."""
        return self.batch.oracle_action(snapshot)[0]

    def ground_truth_snapshot(self) -> World:
        """An independent copy of the world as it is now, for :meth:`oracle_action`."""
        return self.batch.ground_truth_snapshot()

    def log_interactions(
        self, n: int, policy: str | Any = "uniform", temperature: float = 1.0
    ) -> LoggedInteractions:
        """Logged interactions from the current state (see
        :meth:`RecDriftVectorEnv.log_interactions`)."""
        return self.batch.log_interactions(n, policy, temperature)

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: a line of text (clock, user, regime, the last step's outcome).
        ``"rgb_array"``: a (3 * 8, C * 8, 3) uint8 image of the pending request, one 8x8 cell per
        candidate: top row the true click probability of each candidate shown alone (ground
        truth, brighter is likelier; for human eyes, not for agents), middle row the oracle's
        slate (brighter is earlier), bottom row the last served slate with its click in green."""
        if self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        if not self.batch.started:
            return "RecDriftEnv (not reset)"
        request = self.batch.pending_requests()
        line = f"t={request.t} user={request.users[0]} regime={self.world.regime()}"
        if self._last:
            line += (
                f" last: click_slot={self._last['click_slot']}"
                f" expected={self._last['expected_reward']:.3f}"
                f" oracle={self._last['oracle_expected_reward']:.3f}"
            )
        return line

    def _render_rgb(self) -> np.ndarray:
        c = self.config.num_candidates
        rows = np.zeros((3, c, 3), dtype=np.uint8)
        if self.batch.started:
            requests = self.batch.pending_requests()
            single = self.world.choice.slot_probabilities(
                requests.utilities.reshape(-1, 1), np.ones((c, 1), dtype=bool)
            ).reshape(c)
            rows[0, :, :] = (255 * single / max(single.max(), 1e-12)).astype(np.uint8)[:, None]
            oracle = self.world.oracle(requests)[0][0]
            shown = oracle[oracle >= 0]
            rows[1, shown, 2] = np.linspace(255, 80, max(len(shown), 1))[: len(shown)]
            last = self._last_slate
            if last is not None:
                rows[2, last[last >= 0], :] = 90
                slot = self._last.get("click_slot", -1)
                if slot >= 0 and last[slot] >= 0:
                    rows[2, last[slot]] = (0, 220, 0)
        return np.kron(rows, np.ones((8, 8, 1), dtype=np.uint8))


def _first(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.asarray(value[0]) for key, value in batch.items()}


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

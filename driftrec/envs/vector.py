"""The natively batched environment: ``num_envs`` concurrent user sessions over one shared,
drifting world. The single environment (:mod:`driftrec.envs.single`) is its one-session case."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from driftrec.envs.registration import env_id
from driftrec.envs.spaces import action_to_slates, observation_space
from driftrec.simulators import LoggedInteractions, Requests, SessionBatch, World
from driftrec.simulators.scenarios import resolve_world
from driftrec.simulators.streams import check_seed
from driftrec.slates import slates_to_action
from driftrec.validation import check_flag, check_integer

__all__ = ["DEFAULT_AUTORESET_MODE", "RecDriftVectorEnv", "keep_sessions", "resolve_scenario"]


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
    ``num_envs`` requests and advances the clock by ``num_envs``. The sessions draw their users
    from one population, so a user can be in several slots at once, and a click in one slot
    changes the history and boredom her other slot shows. (Gymnasium's
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
        twin: the no-drift twin: the same world with every drift process set up but never
            firing; from the same seed it is identical to the drifting world up to the first
            drift event (``driftrec.simulators.scenarios.WorldSpec.twin``).
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
        twin: bool = False,
        **kwargs: Any,
    ) -> None:
        self.num_envs = check_integer("num_envs", num_envs, minimum=1)
        self.scenario = resolve_scenario(scenario, preset)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        if kwargs.pop("render_mode", None) is not None:
            raise ValueError(
                "RecDriftVectorEnv does not render; render one RecDriftEnv instead "
                "(render_mode='ansi' or 'rgb_array')"
            )
        self.params = dict(kwargs)
        spec = resolve_world(self.scenario, **self.params)  # every check, nothing drawn
        self.twin = check_flag("twin", twin)
        self.world_spec = spec.twin() if self.twin else spec
        self.config = spec.config
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
        keep = keep_sessions(options)
        first = seed[0] if isinstance(seed, (list, tuple)) else seed
        if first is not None or self.sessions is None:
            if first is None:
                first = int(np.random.SeedSequence().generate_state(1)[0])
            world_seed = check_seed(first)
            self._np_random_seed = world_seed  # type: ignore[assignment]  # a SeedSequence too
            self.sessions = SessionBatch(self.world_spec.build(world_seed), self.num_envs)
        elif not keep:
            self.sessions.restart(np.arange(self.num_envs))
        self._resetting[:] = False
        sessions = self.sessions
        clock = np.full(self.num_envs, sessions.requests.t, dtype=np.int64)
        return sessions.world.observe(sessions.requests), {"t": clock}

    @property
    def world(self) -> World | None:
        """The shared world (None until the first ``reset`` draws it)."""
        return None if self.sessions is None else self.sessions.world

    def step(self, actions: Any):
        obs, reward, terminated, truncated, info, _ = self._step(actions)
        return obs, reward, terminated, truncated, info

    def _step(self, actions: Any, final_obs: bool = False):
        """``step``, and with ``final_obs`` the terminal observations of the sessions that ended
        (a dict of (n_ended, ...) arrays, rows in slot order), else None."""
        sessions = self._require_sessions("step()")
        slates = action_to_slates(actions, self.num_envs, self.config)
        world = sessions.world
        t = sessions.requests.t
        before = sessions.requests
        active = ~self._resetting if self._resetting.any() else None
        result = sessions.serve(slates, active, checked=True)
        r = result.response
        rows = np.arange(self.num_envs) if active is None else np.flatnonzero(active)
        n = self.num_envs
        events = np.empty(n, dtype=object)
        events.fill(r.events)
        clock = np.full(n, t, dtype=np.int64)
        clock[rows] = t + np.arange(len(rows), dtype=np.int64)
        info = _info(
            _scatter(r.expected_reward, rows, n, 0.0),
            _scatter(r.oracle_expected_reward, rows, n, 0.0),
            np.full(n, world.regime(t), dtype=np.int64),
            clock,
            _scatter(r.click_slot, rows, n, -1),
            _scatter(r.clicked_item, rows, n, -1),
            _scatter(np.ones(len(rows), bool), rows, n, False),
            events,
        )
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

    def _step_one(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], float, bool, dict[str, Any], dict[str, np.ndarray] | None]:
        """``step`` of the one session of a same-step environment, in the single environment's
        scalar form: the slot's observation, reward, termination and info as Python scalars
        (exactly ``step``'s first row: the parity test checks it), without building arrays of
        length 1 only to take their first entry; and, if the session ended, its terminal
        observation (``_step``'s ``final_obs`` row), else None."""
        if self.num_envs != 1 or self.autoreset_mode != AutoresetMode.SAME_STEP:
            raise RuntimeError("_step_one serves one same-step session")
        sessions = self._require_sessions("step()")
        slates = action_to_slates(action, 1, self.config)
        world = sessions.world
        before = sessions.requests
        t = before.t
        result = sessions.serve(slates, checked=True)
        r = result.response
        info = _info(
            float(r.expected_reward[0]),
            float(r.oracle_expected_reward[0]),
            world.regime(t),
            t,
            int(r.click_slot[0]),
            int(r.clicked_item[0]),
            True,
            r.events,
        )
        obs = world.observe_one(sessions.requests)
        terminated = bool(result.terminated[0])
        terminal = None
        if terminated:  # history updated; a copy (the last step's observation shares `before`)
            terminal = {key: value.copy() for key, value in world.observe_one(before).items()}
        return obs, float(r.reward[0]), terminated, info, terminal

    # ------------------------------------------------------------------ ground truth

    @property
    def started(self) -> bool:
        """Whether ``reset`` has drawn the world and started the sessions."""
        return self.sessions is not None

    @property
    def clock(self) -> int:
        """The world clock: requests served so far (the next request is served at it)."""
        return self._require_sessions("reading the clock").requests.t

    def pending_requests(self) -> Requests:
        """Ground truth of the requests waiting for an action (users, candidates, their true
        utilities): for evaluation and rendering, never for learning agents."""
        return self._require_sessions("pending_requests()").requests

    def oracle_action(self, snapshot: World | None = None) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (B, k) for the pending
        requests. Only the oracle baselines may use it; learning agents must not.

        Args:
            snapshot: a world from :meth:`ground_truth_snapshot`: the best action for the same
                users and candidates under that earlier state of the world instead (what a
                perfect model that stopped learning then would serve).
        """
        sessions = self._require_sessions("oracle_action()")
        requests = sessions.requests
        if snapshot is None:
            return slates_to_action(sessions.world.oracle(requests)[0])
        return slates_to_action(snapshot.oracle(snapshot.rescore(requests))[0])

    def oracle_scores(self) -> np.ndarray:
        """The privileged ground-truth channel, per candidate: (B, C) true utilities of the
        pending requests' candidates (what the oracle ranks; boredom included). For
        ground-truth baselines such as the diverse oracle; learning agents must not use it."""
        return self._require_sessions("oracle_scores()").requests.utilities.copy()

    def ground_truth_snapshot(self) -> World:
        """An independent copy of the world as it is now, for :meth:`oracle_action`."""
        return self._require_sessions("ground_truth_snapshot()").world.snapshot()

    def log_interactions(
        self, n: int, policy: str | Any = "uniform", temperature: float = 1.0
    ) -> LoggedInteractions:
        """``n`` interactions logged under a logging policy from the current state, with exact
        slate propensities, as if they happened just before now (the world is not changed): the
        data for pretraining (``agent.pretrain(env.log_interactions(n))``) and off-policy work.
        See :meth:`driftrec.simulators.World.log_interactions` for ``policy`` and
        ``temperature``. Observations have this environment's layout."""
        world = self._require_sessions("log_interactions()").world
        return world.log_interactions(n, policy, temperature)

    def _require_sessions(self, what: str) -> SessionBatch:
        if self.sessions is None:
            raise gym.error.ResetNeeded(
                f"call reset() before {what}: the world is drawn by the first reset"
            )
        return self.sessions


def keep_sessions(options: Any) -> bool:
    """``options["keep_sessions"]`` of ``reset`` (False if absent); anything else refused."""
    if options is None:
        return False
    if not isinstance(options, dict) or set(options) - {"keep_sessions"}:
        raise ValueError(
            f"reset options must be None or a dict with the key 'keep_sessions', got {options!r}"
        )
    keep = options.get("keep_sessions", False)
    if not isinstance(keep, (bool, np.bool_)):
        raise ValueError(f"options['keep_sessions'] must be True or False, got {keep!r}")
    return bool(keep)


def _info(
    expected_reward: Any,
    oracle_expected_reward: Any,
    regime: Any,
    t: Any,
    click_slot: Any,
    clicked_item: Any,
    served: Any,
    drift_events: Any,
) -> dict[str, Any]:
    """A step's info, in one place for the batched step (arrays) and the one-session step
    (scalars), so the two always have the same keys in the same order."""
    return {
        "expected_reward": expected_reward,
        "oracle_expected_reward": oracle_expected_reward,
        "regime": regime,
        "t": t,
        "click_slot": click_slot,
        "clicked_item": clicked_item,
        "served": served,
        "drift_events": drift_events,
    }


def _scatter(values: np.ndarray, rows: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """``values`` for ``rows``, ``fill`` elsewhere: an (n,) array (``values`` itself when every
    row is there)."""
    if len(rows) == n:
        return values
    out = np.full(n, fill, dtype=values.dtype)
    out[rows] = values
    return out

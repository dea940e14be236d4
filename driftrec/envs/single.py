"""The single environment: one step is one request, one episode one user session; defined as the
one-session case of the vector environment (one set of dynamics, not two)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from driftrec.envs.spaces import action_to_slates
from driftrec.envs.vector import RecDriftVectorEnv, keep_sessions
from driftrec.simulators import LoggedInteractions, World

__all__ = ["RecDriftEnv"]


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
    On termination the observation returned is the session's terminal observation: the ended
    user (her history updated by the last request) over the last request's candidates. Then
    ``reset()`` (without a seed: the world goes on) returns the next session's first request,
    already drawn: the world wastes no request. ``step`` after a termination without a
    ``reset()`` is refused.

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
        for name in ("num_envs", "autoreset_mode"):
            if name in kwargs:
                raise ValueError(
                    f"RecDriftEnv serves one session and takes no {name}: for several sessions "
                    "of one world use gymnasium.make_vec(id, num_envs=...) or "
                    "driftrec.envs.RecDriftVectorEnv(num_envs, ...)"
                )
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
    def started(self) -> bool:
        """Whether ``reset`` has drawn the world."""
        return self.batch.started

    @property
    def clock(self) -> int:
        """The world clock: requests served so far."""
        return self.batch.clock

    @property
    def world(self) -> World | None:
        """The world (None until the first ``reset``, which draws it)."""
        return self.batch.world

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        keep_sessions(options)  # checked whichever way the request comes
        if seed is None and not self.batch.started:
            seed = int(self.np_random.integers(2**63))
        if seed is None and self._pending_obs is not None:
            obs = dict(self._pending_obs)  # the next session is already waiting
        else:
            obs = _first(self.batch.reset(seed=seed, options=options)[0])
        self._pending_obs = None
        return obs, {"t": self.batch.clock}

    def step(self, action: Any):
        if self._pending_obs is not None:
            raise gym.error.ResetNeeded(
                "the session ended at the last step (terminated=True): call reset() to start "
                "the next one (without a seed the world goes on: it returns the next session's "
                "first request)"
            )
        obs, reward, terminated, info, terminal = self.batch._step_one(action)
        if terminal is not None:
            self._pending_obs, obs = obs, terminal
        self._last = info
        if self.render_mode == "rgb_array":
            self._last_slate = action_to_slates(action, 1, self.config)[0]
        return obs, reward, terminated, False, info

    def oracle_action(self, snapshot: World | None = None) -> np.ndarray:
        """The privileged ground-truth channel: the exact best action (k,) for this request
        (under ``snapshot``'s state if given; see :meth:`RecDriftVectorEnv.oracle_action`)."""
        return self.batch.oracle_action(snapshot)[0]

    def oracle_scores(self) -> np.ndarray:
        """The privileged per-candidate channel: (C,) true utilities of this request's
        candidates (see :meth:`RecDriftVectorEnv.oracle_scores`)."""
        return self.batch.oracle_scores()[0]

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
        world = self.batch.world
        if world is None:
            return "RecDriftEnv (not reset)"
        request = self.batch.pending_requests()
        line = f"t={request.t} user={request.users[0]} regime={world.regime()}"
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
        world = self.batch.world
        if world is not None:
            requests = self.batch.pending_requests()
            single = world.choice.slot_probabilities(requests.utilities.reshape(-1, 1)).reshape(c)
            rows[0, :, :] = (255 * single / max(single.max(), 1e-12)).astype(np.uint8)[:, None]
            oracle = world.oracle(requests)[0][0]
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

"""A Stable-Baselines3 ``VecEnv`` over the natively batched environment: ``n_envs`` sessions of
one shared world.

Stable-Baselines3's own ``make_vec_env("driftrec/Sudden-v0", n_envs=8)`` builds 8 separate
worlds, each with its own clock that advances once per step of its own: each clock then runs 8
times slower than the number of requests served, so a drift scheduled at ``t`` fires after
``8 t`` requests in total, and the 8 worlds drift independently. :class:`SB3VecEnv` keeps one
world whose clock counts every request, as the lab's experiments do.

Stable-Baselines3 is an optional dependency (``pip install stable-baselines3``); this module
imports it when loaded.

Example:
    >>> from driftrec.rl.sb3 import SB3VecEnv
    >>> venv = SB3VecEnv(4, "sudden", at=1_000, num_users=300, num_items=300,
    ...                  num_candidates=20, slate_size=3)
    >>> venv.seed(0)
    [0, 1, 2, 3]
    >>> obs = venv.reset()
    >>> obs["candidate_ids"].shape
    (4, 20)
    >>> obs, rewards, dones, infos = venv.step(venv.action_space.sample()[None].repeat(4, 0))
    >>> sorted(infos[0])[:3]
    ['TimeLimit.truncated', 'click_slot', 'clicked_item']

With ``adapters=True`` the sessions take a score per candidate and give observations in the
per-candidate layout of :mod:`driftrec.rl.adapters` (for
:class:`~driftrec.rl.sb3_policy.CandidateScoringPolicy`):

    >>> venv = SB3VecEnv(4, num_users=300, num_items=300, num_candidates=20, slate_size=3,
    ...                  adapters=True)
    >>> venv.action_space.shape, venv.observation_space["candidates"].shape
    ((20,), (20, 30))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from driftrec.envs.vector import RecDriftVectorEnv
from driftrec.rl.adapters import (
    batch_scores_to_slates,
    candidate_observation_space,
    score_action_space,
    to_candidate_layout,
)
from driftrec.validation import check_flag

__all__ = ["SB3VecEnv"]


class SB3VecEnv(VecEnv):
    """``num_envs`` concurrent sessions over one shared, drifting world, behind
    Stable-Baselines3's ``VecEnv`` API.

    Stable-Baselines3 resets finished episodes itself within the step (as the native
    environment's ``SAME_STEP`` mode does): when ``dones[i]``, ``obs[i]`` is the first request
    of the next session and ``infos[i]["terminal_observation"]`` the ended session's last
    observation. Each info dict holds the native info of its row (``expected_reward``,
    ``oracle_expected_reward``, ``regime``, ``t``, ...), ``drift_events`` (the tuple of drift
    events the step fired, the same for every row; empty on most steps) and
    ``"TimeLimit.truncated": False`` (sessions end, they are never cut).

    Args:
        num_envs: concurrent sessions.
        scenario: a scenario preset name.
        adapters: take (num_envs, C) scores instead of slates and give observations (terminal
            ones included) in the per-candidate layout of :mod:`driftrec.rl.adapters`; the
            same transformation as the ``ScoreAction`` and ``CandidateObservation`` wrappers.
        **kwargs: world settings and scenario parameters, as for
            :class:`~driftrec.envs.RecDriftVectorEnv`.
    """

    def __init__(
        self,
        num_envs: int = 8,
        scenario: str | None = None,
        *,
        adapters: bool = False,
        **kwargs: Any,
    ) -> None:
        self.env = RecDriftVectorEnv(
            num_envs, scenario, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
        )
        self.adapters = check_flag("adapters", adapters)
        native = self.env.single_observation_space
        obs_space, act_space = native, self.env.single_action_space
        if self.adapters:
            obs_space = candidate_observation_space(self.env.config)
            act_space = score_action_space(self.env.config.num_candidates)
        super().__init__(self.env.num_envs, obs_space, act_space)
        self._actions: np.ndarray | None = None

    def _observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.adapters:
            return obs
        return to_candidate_layout(obs, self.env.config)

    def reset(self) -> dict[str, np.ndarray]:
        seed = self._seeds[0] if self._seeds else None
        if seed is None and self.env.sessions is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        obs, _ = self.env.reset(seed=seed, options=self._options[0] or None)
        self._reset_seeds()
        self._reset_options()
        return self._observe(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        actions, self._actions = self._actions, None
        if self.adapters:
            cfg = self.env.config
            actions = batch_scores_to_slates(
                actions, self.num_envs, cfg.num_candidates, cfg.slate_size
            )
        obs, reward, terminated, truncated, info, final = self.env._step(actions, final_obs=True)
        keys = [key for key in info if key != "drift_events"]
        columns = [info[key].tolist() for key in keys]
        infos: list[dict[str, Any]] = [
            {**dict(zip(keys, row, strict=True)), "TimeLimit.truncated": False}
            for row in zip(*columns, strict=True)
        ]
        events = info["drift_events"][0]  # one tuple for every row (empty: no drift fired)
        for row in infos:
            row["drift_events"] = events
        if final is not None:
            final = self._observe(final)
            for j, i in enumerate(np.flatnonzero(terminated)):
                infos[i]["terminal_observation"] = {key: value[j] for key, value in final.items()}
        dones = terminated | truncated
        return self._observe(obs), reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The attribute of the shared environment, once per selected slot."""
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set the attribute on the shared environment (all slots share it)."""
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the method once on the shared environment; its result is given for every
        selected slot."""
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices

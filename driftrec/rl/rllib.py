"""RLlib (new API stack, ray >= 2.60, torch) on driftrec: an environment creator that remote env
runners call without the user importing driftrec there, an ``RLModule`` that scores every
candidate with shared weights, and a callback that reports the normalised reward.

- :func:`make_env`: the env creator, registered with Ray's registry under :data:`ENV_NAME` by
  :func:`register_env` (``config.environment(register_env(), env_config={...})``). The
  registry keeps the creator pickled by reference (``driftrec.rl.rllib.make_env``) in the
  cluster's store, so a remote env runner imports driftrec itself when it fetches the creator:
  the workers need driftrec installed, and no code of the user's imports it there. With
  ``gym_env_vectorize_mode="vector_entry_point"`` one runner's ``num_envs_per_env_runner``
  sessions share one world (one clock), as the lab's experiments do; the default ``"sync"``
  mode would build one world per session.
- :class:`CandidateScoringRLModule`: a ``TorchRLModule`` with ``ValueFunctionAPI`` (what PPO
  needs) over :class:`~driftrec.rl.candidate_scorer.CandidateScorer`, the network of the
  Stable-Baselines3 policy too. The policy is a diagonal Gaussian over real-valued scores, one
  per candidate, with a shared mean function and one shared log standard deviation; the
  environment serves the top-k by score.
- :class:`NormalisedRewardCallback` and :func:`normalised_reward`: the sum of
  ``expected_reward`` over the sum of ``oracle_expected_reward`` of an iteration's sampled
  requests (ground truth, never seen by the policy).

Requires ``pip install -e ".[rl]"`` (``ray[rllib]``, which pins gymnasium 1.2.2).

Usage (``examples/rllib_ppo.py`` is the whole script)::

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    config = ppo_config(PPOConfig(), {"scenario": "sudden", "num_candidates": 10},
                        num_env_runners=1).training(gamma=0.5, use_kl_loss=False)
    algo = config.build_algo()
    print(normalised_reward(algo.train()))

Example (the environment and the module, without Ray):
    >>> import torch
    >>> env = make_env(dict(num_users=100, num_items=80, num_candidates=6, slate_size=2,
    ...                     num_envs=4))
    >>> obs, _ = env.reset(seed=0)
    >>> obs["candidates"].shape, env.single_action_space.shape
    ((4, 6, 30), (6,))
    >>> module = CandidateScoringRLModule(
    ...     observation_space=env.single_observation_space,
    ...     action_space=env.single_action_space, model_config={"hidden": 16})
    >>> out = module.forward_inference({"obs": {k: torch.as_tensor(v) for k, v in obs.items()}})
    >>> out["action_dist_inputs"].shape  # C score means, then C log standard deviations
    torch.Size([4, 12])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorActionWrapper, VectorEnv
from gymnasium.vector.utils import batch_space
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS
from ray.tune.registry import register_env as _ray_register_env

from driftrec.envs import RecDriftEnv, RecDriftVectorEnv
from driftrec.rl.adapters import (
    CandidateObservation,
    ScoreAction,
    VectorCandidateObservation,
    VectorScoreAction,
    candidate_layout_dims,
)
from driftrec.rl.candidate_scorer import CandidateScorer
from driftrec.rl.normalised_reward import reward_sums

__all__ = [
    "ENV_NAME",
    "EXPECTED_REWARD",
    "ORACLE_EXPECTED_REWARD",
    "CandidateScoringRLModule",
    "NormalisedRewardCallback",
    "RealScoreAction",
    "VectorRealScoreAction",
    "make_env",
    "normalised_reward",
    "ppo_config",
    "real_score_space",
    "register_env",
]

ENV_NAME = "driftrec_rllib"
"""The name :func:`register_env` gives :func:`make_env` in Ray's registry."""

EXPECTED_REWARD = "driftrec_expected_reward"
"""Env-runner metric: the sum of ``info["expected_reward"]`` over an iteration's requests."""
ORACLE_EXPECTED_REWARD = "driftrec_oracle_expected_reward"
"""Env-runner metric: the sum of ``info["oracle_expected_reward"]`` over the same requests."""


def real_score_space(num_candidates: int) -> spaces.Box:
    """``Box(-inf, inf, (C,), float32)``: one real score per candidate position."""
    return spaces.Box(-np.inf, np.inf, (num_candidates,), np.float32)


def _squash(scores: Any) -> np.ndarray:
    # x / (1 + |x|) is strictly increasing and, in float64, keeps distinct float32 inputs
    # distinct: the slate is the top-k of the scores as given. Clipping a Gaussian sample to
    # [-1, 1] (what RLlib does for a bounded Box) would tie every score beyond the bound.
    x = np.asarray(scores, dtype=np.float64)
    return x / (1.0 + np.abs(x))


def _score_count(box: spaces.Space, wrapper: str, use: str) -> int:
    """C of a score action space ``Box((C,))``; a ``TypeError`` naming ``wrapper`` otherwise."""
    if not isinstance(box, spaces.Box) or box.shape is None or len(box.shape) != 1:
        raise TypeError(
            f"{wrapper} wraps a score-action environment (action space Box((C,))), got {box!r}: "
            f"use {use}"
        )
    return int(box.shape[0])


class RealScoreAction(gym.ActionWrapper):
    """Takes real-valued scores (:func:`real_score_space`) for a :class:`ScoreAction`
    environment: the slate is the top-k of the scores (a Gaussian policy's samples need no
    clipping, so no ties). Wrap ``ScoreAction(env)``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = real_score_space(
            _score_count(env.action_space, "RealScoreAction", "RealScoreAction(ScoreAction(env))")
        )

    def action(self, action: Any) -> np.ndarray:
        return _squash(action)


class VectorRealScoreAction(VectorActionWrapper):
    """:class:`RealScoreAction` for a :class:`VectorScoreAction` environment."""

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self.single_action_space = real_score_space(
            _score_count(
                env.single_action_space,
                "VectorRealScoreAction",
                "VectorRealScoreAction(VectorScoreAction(env))",
            )
        )
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def actions(self, actions: Any) -> np.ndarray:
        return _squash(actions)


def make_env(env_config: Mapping[str, Any]) -> gym.Env | VectorEnv:
    """RLlib's env creator: a driftrec environment with real-valued score actions and the
    per-candidate observation layout (``Dict(user, candidates)``).

    Args:
        env_config: ``scenario`` and any world setting or scenario parameter
            (``num_users``, ``num_items``, ``num_candidates``, ``slate_size``, ...); RLlib's
            ``EnvContext`` is a mapping of these. RLlib adds ``num_envs`` when it asks for a
            vector environment (``gym_env_vectorize_mode="vector_entry_point"``): then
            ``num_envs`` sessions share one world, in next-step autoreset mode (RLlib's).

    Returns:
        ``CandidateObservation(RealScoreAction(ScoreAction(RecDriftEnv(**env_config))))``, or
        the vector equivalent over :class:`~driftrec.envs.RecDriftVectorEnv`.
    """
    kwargs = dict(env_config)
    if "autoreset_mode" in kwargs:
        raise ValueError(
            "env_config must not set autoreset_mode: RLlib steps vector environments in "
            "next-step mode, which make_env sets itself"
        )
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is None:
        return CandidateObservation(RealScoreAction(ScoreAction(RecDriftEnv(**kwargs))))
    vector = RecDriftVectorEnv(num_envs, autoreset_mode=AutoresetMode.NEXT_STEP, **kwargs)
    return VectorCandidateObservation(VectorRealScoreAction(VectorScoreAction(vector)))


def register_env() -> str:
    """Register :func:`make_env` with Ray's registry under :data:`ENV_NAME` (idempotent; call it
    in the driver, before building the algorithm) and return the name, for
    ``config.environment(register_env(), env_config={...})``."""
    _ray_register_env(ENV_NAME, make_env)
    return ENV_NAME


class CandidateScoringRLModule(TorchRLModule, ValueFunctionAPI):
    """An RLModule that scores each candidate with one shared network: a diagonal Gaussian over
    (C,) real scores whose mean is :meth:`CandidateScorer.scores` and whose log standard
    deviation is one learnt scalar shared by all candidates; values from
    :meth:`CandidateScorer.value`.

    Spaces: observation ``Dict(user=Box((f_u,)), candidates=Box((C, f_c)))`` (what
    :func:`make_env` gives), action ``Box((C,))``. ``model_config`` keys: ``hidden`` (width of
    the scorer's embeddings and hidden layers, an int, default 64), ``initial_log_std``
    (default -0.5).
    """

    def setup(self) -> None:
        obs, action = self.observation_space, self.action_space
        try:
            user_dim, num_candidates, candidate_dim = candidate_layout_dims(obs)
        except (TypeError, ValueError):
            raise ValueError(
                f"CandidateScoringRLModule needs the per-candidate observation layout "
                f"Dict(user=(f_u,), candidates=(C, f_c)), got {obs!r}: build the environment "
                f"with driftrec.rl.rllib.make_env (or wrap it in CandidateObservation)"
            ) from None
        if not isinstance(action, spaces.Box) or action.shape != (num_candidates,):
            raise ValueError(
                f"CandidateScoringRLModule needs a score action Box(({num_candidates},)), one "
                f"score per candidate, got {action!r}: build the environment with "
                f"driftrec.rl.rllib.make_env"
            )
        # RLlib adds keys of its own (PPO: vf_share_layers) and its DefaultModelConfig has none
        # of this module's: only these two are read.
        raw = self.model_config
        config: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
        hidden = config.get("hidden", 64)
        self.scorer = CandidateScorer(user_dim, candidate_dim, hidden)
        initial_log_std = float(config.get("initial_log_std", -0.5))
        self.log_std = torch.nn.Parameter(torch.tensor(initial_log_std))

    def _inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        obs = batch[Columns.OBS]
        return obs["user"].float(), obs["candidates"].float()

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        scores = self.scorer.scores(*self._inputs(batch))
        log_std = self.log_std.expand_as(scores)
        return {Columns.ACTION_DIST_INPUTS: torch.cat([scores, log_std], dim=-1)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        return self.scorer.value(*self._inputs(batch))


class NormalisedRewardCallback(RLlibCallback):
    """Sums the ground truth of every sampled request (``info["expected_reward"]`` and
    ``info["oracle_expected_reward"]``; 0 for a next-step reset, where nothing was served) and
    logs the two sums per ``sample()`` call under :data:`EXPECTED_REWARD` and
    :data:`ORACLE_EXPECTED_REWARD`; read them with :func:`normalised_reward`."""

    def __init__(self) -> None:
        super().__init__()
        self._expected = 0.0
        self._oracle = 0.0

    def on_episode_step(self, *, episode: Any, **kwargs: Any) -> None:
        expected, oracle = reward_sums(episode.get_infos(-1))
        self._expected += expected
        self._oracle += oracle

    def on_sample_end(self, *, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is not None:
            metrics_logger.log_value(EXPECTED_REWARD, self._expected, reduce="sum")
            metrics_logger.log_value(ORACLE_EXPECTED_REWARD, self._oracle, reduce="sum")
        self._expected = self._oracle = 0.0


def normalised_reward(result: Mapping[str, Any]) -> float:
    """The normalised reward of one training iteration: the sum of the expected reward of the
    served slates over the sum of the oracle's, over the iteration's sampled requests.

    Args:
        result: what ``algo.train()`` returned, with :class:`NormalisedRewardCallback`
            configured.
    """
    runners = result.get(ENV_RUNNER_RESULTS, {})
    if EXPECTED_REWARD not in runners or ORACLE_EXPECTED_REWARD not in runners:
        raise KeyError(
            f"result[{ENV_RUNNER_RESULTS!r}] lacks {EXPECTED_REWARD!r}: configure the "
            f"callback, config.callbacks(NormalisedRewardCallback) (ppo_config does)"
        )
    oracle = float(runners[ORACLE_EXPECTED_REWARD])
    if oracle <= 0.0:
        raise ValueError(
            "the iteration sampled no served request (oracle expected reward 0): sample more "
            "steps per iteration"
        )
    return float(runners[EXPECTED_REWARD]) / oracle


def ppo_config(
    config: AlgorithmConfig,
    env_config: Mapping[str, Any],
    *,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 8,
    hidden: int = 64,
    initial_log_std: float = -0.5,
    seed: int | None = None,
) -> AlgorithmConfig:
    """``config`` (e.g. ``PPOConfig()``) wired for driftrec: :func:`make_env` (registered by
    :func:`register_env`) with ``env_config``, one shared world per env runner (vector entry
    point), the :class:`CandidateScoringRLModule`, the :class:`NormalisedRewardCallback`, real
    scores passed on unclipped, and ``seed``; ``hidden`` is the width of the scorer's
    embeddings and hidden layers. Training settings are left to the caller
    (``.training(...)``). ``env_config`` is checked here, in the driver (building the
    environment draws nothing): a bad value raises driftrec's own error at once, not an
    ``IndexError`` from RLlib after its env runners failed to start."""
    make_env(env_config)
    module = RLModuleSpec(
        module_class=CandidateScoringRLModule,
        model_config={"hidden": hidden, "initial_log_std": initial_log_std},
    )
    return (
        config.environment(
            register_env(),
            env_config=dict(env_config),
            normalize_actions=False,
            clip_actions=False,
        )
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .rl_module(rl_module_spec=module)
        .callbacks(NormalisedRewardCallback)
        .debugging(seed=seed)
    )

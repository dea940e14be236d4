"""A Stable-Baselines3 actor-critic policy that scores every candidate with one shared network,
for the per-candidate layout and score action of :mod:`driftrec.rl.adapters`.

The network is :class:`~driftrec.rl.candidate_scorer.CandidateScorer`, the one the RLlib module
uses too. The actor embeds the user and each candidate row, and one MLP over (user embedding,
candidate embedding, their elementwise product) gives each candidate's score: the Gaussian mean
of its entry of the score action. The same weights score every position, so permuting the
candidates permutes the means (the policy is equivariant to the candidates' order), and what is
learnt about an item at one position holds at every position. The log standard deviation is one
state-independent scalar shared by all positions. The critic reads its own user embedding and
the mean and max of its own candidate embeddings (pooling makes it invariant to the order); the
scorer's ``value_head`` is the policy's ``value_net``.

This is the Deep Sets construction (Zaheer et al. 2017, "Deep Sets") applied to slate scoring,
as in the per-item scorers of SlateQ (Ie et al. 2019), here trained with PPO.

Example:
    >>> from stable_baselines3 import PPO
    >>> from driftrec.rl.sb3 import SB3VecEnv
    >>> venv = SB3VecEnv(4, num_users=50, num_items=60, num_candidates=5, slate_size=2,
    ...                  adapters=True)
    >>> model = PPO(CandidateScoringPolicy, venv, n_steps=8, batch_size=16, seed=0)
    >>> model.policy.action_net  # the scorer outputs the means itself
    Identity()
    >>> model.policy.value_net is model.policy.mlp_extractor.scorer.value_head
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from driftrec.rl.adapters import candidate_layout_dims
from driftrec.rl.candidate_scorer import CandidateScorer

__all__ = ["CandidateFeatures", "CandidateNetworks", "CandidateScoringPolicy"]


def _layout(space: spaces.Space) -> tuple[int, int, int]:
    """(f_u, C, f_c) of a per-candidate observation space (:func:`candidate_layout_dims`); a
    space of another kind is a ``TypeError`` that says how to get the layout."""
    try:
        return candidate_layout_dims(space)
    except TypeError:
        raise TypeError(
            f"CandidateScoringPolicy needs the per-candidate layout Dict(user, candidates) of "
            f"driftrec.rl.adapters (use SB3VecEnv(..., adapters=True) or wrap the environment "
            f"with CandidateObservation and ScoreAction), got {space!r}"
        ) from None


class CandidateFeatures(BaseFeaturesExtractor):
    """Concatenates ``user`` (B, f_u) and the flattened ``candidates`` (B, C * f_c); the
    networks of :class:`CandidateNetworks` split them again."""

    def __init__(self, observation_space: spaces.Dict) -> None:
        f_u, c, f_c = _layout(observation_space)
        super().__init__(observation_space, features_dim=f_u + c * f_c)

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        user, cands = observations["user"], observations["candidates"]
        return th.cat([user, cands.flatten(1)], dim=1)


class CandidateNetworks(nn.Module):
    """SB3's ``mlp_extractor`` over the features of :class:`CandidateFeatures`: splits them into
    ``user`` (B, f_u) and ``candidates`` (B, C, f_c) and hands them to one
    :class:`~driftrec.rl.candidate_scorer.CandidateScorer` (:attr:`scorer`).

    ``forward_actor``: (B, C) scores. ``forward_critic``: (B, hidden) latent of the value, which
    the policy's ``value_net`` (the scorer's ``value_head``) reads.

    Args:
        user_dim: f_u. num_candidates: C. candidate_dim: f_c. hidden: embedding and layer width.
        activation: the hidden layers' activation.
    """

    def __init__(
        self,
        user_dim: int,
        num_candidates: int,
        candidate_dim: int,
        hidden: int = 64,
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        self.num_candidates = num_candidates
        self.scorer = CandidateScorer(user_dim, candidate_dim, hidden, activation)
        self.latent_dim_pi = num_candidates
        self.latent_dim_vf = hidden

    def _split(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        f_u, f_c = self.scorer.user_dim, self.scorer.candidate_dim
        return features[:, :f_u], features[:, f_u:].reshape(-1, self.num_candidates, f_c)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.scorer.scores(*self._split(features))

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.scorer.value_latent(*self._split(features))


class CandidateScoringPolicy(ActorCriticPolicy):
    """PPO / A2C policy for the per-candidate layout and the score action (see the module).

    Args:
        observation_space: ``Dict(user, candidates)`` of :mod:`driftrec.rl.adapters`.
        action_space: ``Box(-1, 1, (C,))`` of scores.
        lr_schedule: from the algorithm.
        hidden: width of the embeddings and hidden layers (default 64).
        log_std_init: initial log standard deviation of every score (default -1: samples
            rarely reach the bounds of [-1, 1], where clipped scores would tie).
        **kwargs: the rest of ``ActorCriticPolicy``'s arguments (``activation_fn``,
            ``ortho_init``, ``optimizer_kwargs``, ...); ``net_arch`` and
            ``features_extractor_class`` are fixed by this policy. The scorer is initialised
            orthogonally (SB3's gains, see :class:`CandidateScorer`) whether or not
            ``ortho_init`` is set.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        hidden: int = 64,
        log_std_init: float = -1.0,
        **kwargs: Any,
    ) -> None:
        f_u, c, f_c = _layout(observation_space)
        if not isinstance(action_space, spaces.Box) or action_space.shape != (c,):
            raise TypeError(
                f"CandidateScoringPolicy needs the score action Box(-1, 1, ({c},)) of "
                f"driftrec.rl.adapters.score_action_space, got {action_space!r}"
            )
        for fixed in ("net_arch", "features_extractor_class", "use_sde", "squash_output"):
            if kwargs.get(fixed):
                raise ValueError(f"CandidateScoringPolicy fixes {fixed}; do not pass it")
        self.hidden = hidden
        self._dims = (f_u, c, f_c)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=CandidateFeatures,
            log_std_init=log_std_init,
            **{
                k: v for k, v in kwargs.items() if k not in ("net_arch", "use_sde", "squash_output")
            },
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(hidden=self.hidden)
        for fixed in ("net_arch", "features_extractor_class", "features_extractor_kwargs"):
            data.pop(fixed, None)
        return data

    def _build_mlp_extractor(self) -> None:
        f_u, c, f_c = self._dims
        self.mlp_extractor = CandidateNetworks(  # type: ignore[assignment]
            f_u, c, f_c, self.hidden, self.activation_fn
        )

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        assert isinstance(self.action_dist, DiagGaussianDistribution)
        # The scorer's outputs are the means; one log std for all positions keeps the policy
        # equivariant to the candidates' order.
        self.action_net = nn.Identity()
        self.log_std = nn.Parameter(th.full((1,), float(self.log_std_init)))
        networks = self.mlp_extractor
        assert isinstance(networks, CandidateNetworks)
        # One network: SB3's value head is the scorer's (its Linear(hidden, 1) is dropped).
        self.value_net = networks.scorer.value_head
        if self.ortho_init:
            # SB3 has just redrawn the whole scorer with gain sqrt(2), its last layers included;
            # the scorer's own recipe is SB3's with the right gains at the outputs (0.01 for the
            # scores, as SB3 gives its action_net, and 1 for the value).
            networks.scorer.reset_parameters()
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def score_means(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, C) mean scores of a batch of per-candidate observations (no sampling)."""
        obs, _ = self.obs_to_tensor(observation)
        with th.no_grad():
            dist = self.get_distribution(obs)
        return dist.distribution.mean.cpu().numpy()  # type: ignore[union-attr]

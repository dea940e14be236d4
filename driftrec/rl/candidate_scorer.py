"""The torch network that scores every candidate of a request with one shared function, over the
per-candidate layout of :mod:`driftrec.rl.adapters` (``user`` (B, f_u), ``candidates``
(B, C, f_c)), and values the request by pooling over its candidates. It is the one network of
both RL library integrations, kept free of either so that it tests and runs with torch alone:

- Stable-Baselines3 (:class:`driftrec.rl.sb3_policy.CandidateScoringPolicy`): :meth:`scores`
  are the actor's Gaussian means, :meth:`value_latent` the critic's latent, and
  :attr:`CandidateScorer.value_head` is the policy's ``value_net``;
- RLlib (:class:`driftrec.rl.rllib.CandidateScoringRLModule`): :meth:`scores` are the means,
  :meth:`value` the values.

Weight sharing is what makes a slate policy learnable here: the same item turns up at any
candidate position, so a network with one output per position would have to learn each item's
worth ``C`` times. A shared scorer is equivariant to the candidates' order (permute the rows,
the scores permute with them), its size does not depend on ``C``, and the value pools over
candidates, so it is invariant to their order (Zaheer et al. 2017, "Deep Sets"; the per-item
scorers of SlateQ, Ie et al. 2019, are the same construction).

Example:
    >>> import torch
    >>> net = CandidateScorer(user_dim=9, candidate_dim=30, hidden=32)
    >>> user, candidates = torch.zeros(4, 9), torch.randn(4, 10, 30, generator=torch.Generator())
    >>> net.scores(user, candidates).shape, net.value_latent(user, candidates).shape
    (torch.Size([4, 10]), torch.Size([4, 32]))
    >>> net.value(user, candidates).shape
    torch.Size([4])
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["CandidateScorer"]


def _layer(n_in: int, n_out: int, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), activation())


def _orthogonal(module: nn.Module, gain: float) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


class CandidateScorer(nn.Module):
    """Scores each (user, candidate) pair with one shared function, and values a request from
    its user and its pooled candidates; actor and critic have their own weights.

    - ``scores(u, C)[b, j] = head([e_u, e_c, e_u * e_c])`` with ``e_u = act(W_u u)`` and
      ``e_c = act(W_c c_j)`` embeddings of the user and of candidate ``j``, and ``head`` one
      hidden layer then a linear output. The elementwise product ``e_u * e_c`` is the
      two-tower inductive bias (a click is likelier when the user's and the item's observable
      features align); the rest of the head learns topic, history flags and item quality as
      the features show them.
    - ``value_latent(u, C) = act(W [e'_u, mean_j e'_c, max_j e'_c])`` (B, hidden), from the
      critic's own embeddings ``e'``; ``value(u, C) = value_head(value_latent(u, C))`` (B,).
      The value's loss does not move the scorer.

    Initialisation is the PPO recipe (Engstrom et al. 2020, "Implementation Matters in Deep
    Policy Gradients"; Andrychowicz et al. 2021): orthogonal weights, gain sqrt(2) for the
    hidden layers, 0.01 for the score output (every candidate starts with about the same score:
    the first policy serves random slates) and 1 for the value head, zero biases.

    Args:
        user_dim: f_u, the length of the ``user`` vector.
        candidate_dim: f_c, the length of one ``candidates`` row.
        hidden: width of the embeddings and of the hidden layers (and of ``value_latent``).
        activation: the hidden layers' activation (default ``nn.Tanh``).

    Shapes: ``user`` (B, f_u) float32, ``candidates`` (B, C, f_c) float32 with any C >= 1;
    scores (B, C), value latents (B, hidden), values (B,).
    """

    def __init__(
        self,
        user_dim: int,
        candidate_dim: int,
        hidden: int = 64,
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        for name, value in (("user_dim", user_dim), ("candidate_dim", candidate_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(
                f"hidden must be a positive int (the width of the embeddings and hidden "
                f"layers), got {hidden!r}"
            )
        self.user_dim, self.candidate_dim, self.hidden = user_dim, candidate_dim, hidden
        self.activation = activation
        self.score_user = _layer(user_dim, hidden, activation)
        self.score_candidate = _layer(candidate_dim, hidden, activation)
        self.score_head = nn.Sequential(
            _layer(3 * hidden, hidden, activation), nn.Linear(hidden, 1)
        )
        self.value_user = _layer(user_dim, hidden, activation)
        self.value_candidate = _layer(candidate_dim, hidden, activation)
        self.value_body = _layer(3 * hidden, hidden, activation)
        self.value_head = nn.Linear(hidden, 1)
        self.reset_parameters()

    @property
    def score_output(self) -> nn.Linear:
        """The last layer of the scorer (one score per pair), initialised small."""
        last = self.score_head[-1]
        assert isinstance(last, nn.Linear)
        return last

    def reset_parameters(self) -> None:
        """Redraw every weight by the PPO recipe of the class docstring (from torch's RNG)."""
        _orthogonal(self, math.sqrt(2))
        _orthogonal(self.score_output, 0.01)
        _orthogonal(self.value_head, 1.0)

    def _check(self, user: torch.Tensor, candidates: torch.Tensor) -> None:
        if user.ndim != 2 or candidates.ndim != 3 or user.shape[0] != candidates.shape[0]:
            raise ValueError(
                f"expected user (B, {self.user_dim}) and candidates (B, C, {self.candidate_dim}) "
                f"(the layout of driftrec.rl.adapters.to_candidate_layout, batched), got "
                f"{tuple(user.shape)} and {tuple(candidates.shape)}"
            )
        if user.shape[1] != self.user_dim or candidates.shape[2] != self.candidate_dim:
            raise ValueError(
                f"this network was built for user_dim={self.user_dim} and candidate_dim="
                f"{self.candidate_dim}, got user {tuple(user.shape)} and candidates "
                f"{tuple(candidates.shape)}: build it from the environment's observation space"
            )
        if candidates.shape[1] < 1:
            raise ValueError(
                f"candidates {tuple(candidates.shape)} has no candidate: a request needs C >= 1"
            )

    def scores(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, C) one score per candidate, the same function of each (user, candidate) row."""
        self._check(user, candidates)
        c = self.score_candidate(candidates)
        u = self.score_user(user).unsqueeze(1).expand_as(c)
        return self.score_head(torch.cat([u, c, u * c], dim=-1)).squeeze(-1)

    def value_latent(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, hidden) the critic's latent, invariant to the order of the candidates (what
        Stable-Baselines3's ``value_net`` reads)."""
        self._check(user, candidates)
        c = self.value_candidate(candidates)
        pooled = torch.cat([self.value_user(user), c.mean(dim=1), c.amax(dim=1)], dim=-1)
        return self.value_body(pooled)

    def value(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B,) the value of each request, invariant to the order of its candidates."""
        return self.value_head(self.value_latent(user, candidates)).squeeze(-1)

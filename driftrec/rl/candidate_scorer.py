"""A torch network that scores every candidate of a request with one shared function, over the
per-candidate layout of :mod:`driftrec.rl.adapters` (``user`` (B, f_u), ``candidates``
(B, C, f_c)): the policy and value network inside the RLlib module
(:mod:`driftrec.rl.rllib`), kept free of RLlib so that it tests and runs with torch alone.

Weight sharing is what makes a slate policy learnable here: the same item turns up at any
candidate position, so a network with one output per position would have to learn each item's
worth ``C`` times. A shared scorer is equivariant to the candidates' order (permute the rows,
the scores permute with them), its size does not depend on ``C``, and the value head pools over
candidates, so it is invariant to their order (Zaheer et al. 2017, "Deep Sets").

Example:
    >>> import torch
    >>> net = CandidateScorer(user_dim=9, candidate_dim=30, hidden=(32, 32))
    >>> user, candidates = torch.zeros(4, 9), torch.randn(4, 10, 30, generator=torch.Generator())
    >>> net.scores(user, candidates).shape, net.value(user, candidates).shape
    (torch.Size([4, 10]), torch.Size([4]))
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CandidateScorer"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class CandidateScorer(nn.Module):
    """Scores each (user, candidate) pair with one shared function, and values a request by
    pooling over its candidates.

    ``score(u, c) = MLP([u, c]) + u^T W c``: the bilinear term is the inductive bias of a
    two-tower recommender (a click is likelier when the user's and the item's observable
    features align), the MLP learns the rest (topic, history flags, item quality as features
    show it). ``value(u, C) = head([mean_c h(u, c), max_c h(u, c)])`` with ``h`` a shared
    per-candidate encoder.

    Args:
        user_dim: f_u, the length of the ``user`` vector.
        candidate_dim: f_c, the length of one ``candidates`` row.
        hidden: widths of the hidden layers of the scorer and of the value encoder.

    Shapes: ``user`` (B, f_u) float32, ``candidates`` (B, C, f_c) float32; scores (B, C),
    values (B,).
    """

    def __init__(self, user_dim: int, candidate_dim: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        for name, value in (("user_dim", user_dim), ("candidate_dim", candidate_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        hidden = tuple(hidden)
        if not hidden or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden
        ):
            raise ValueError(
                f"hidden must be a non-empty sequence of positive ints (layer widths), got "
                f"{hidden!r}"
            )
        self.user_dim, self.candidate_dim, self.hidden = user_dim, candidate_dim, hidden
        pair = user_dim + candidate_dim
        self.score_mlp = _mlp((pair, *hidden, 1))
        # Starts at zero: the first policy scores every candidate alike (a random slate once
        # exploration noise is added) and learns the alignment from the rewards.
        self.bilinear = nn.Parameter(torch.zeros(user_dim, candidate_dim))
        last = self.score_mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.normal_(last.weight, std=0.01)
        nn.init.zeros_(last.bias)
        self.value_encoder = nn.Sequential(_mlp((pair, *hidden)), nn.Tanh())
        self.value_head = nn.Linear(2 * hidden[-1], 1)

    def _pairs(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
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
        expanded = user[:, None, :].expand(-1, candidates.shape[1], -1)
        return torch.cat([expanded, candidates], dim=-1)

    def scores(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, C) one score per candidate, the same function of each (user, candidate) row."""
        pairs = self._pairs(user, candidates)
        bilinear = torch.einsum("bu,uc,bkc->bk", user, self.bilinear, candidates)
        return self.score_mlp(pairs).squeeze(-1) + bilinear

    def value(self, user: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B,) the value of each request, invariant to the order of its candidates."""
        encoded = self.value_encoder(self._pairs(user, candidates))
        pooled = torch.cat([encoded.mean(dim=1), encoded.amax(dim=1)], dim=-1)
        return self.value_head(pooled).squeeze(-1)

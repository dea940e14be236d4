"""What every recommender model provides, and the pieces they share.

Every model here is *factorised*: a user side ``u`` (n, d) with a user bias (n,), an item side
``v`` (n, m, d) with item biases (n, m), and score ``<u, v> + b_item + b_user``. That form is
what lets exploration (Thompson sampling on the last layer) and ensembles treat the three models
alike.

Id-indexed tables are sized by the capacities of the observation space (``num_users``,
``num_items``), which bound every id the environment emits, including users and items that
only appear later; an id beyond a table (an environment whose space under-states its capacity)
is hashed into it (``id % rows``) instead of failing. Factor tables have sparse gradients, so an
update touches only the rows of the batch (lazy Adam); the one-column bias tables are small and
dense.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.examples import SlateExamples
from driftrec.agents.protocol import Observation, TaskSizes

__all__ = [
    "PARAMETER_GROUPS",
    "Adapter",
    "ItemBatch",
    "Recommender",
    "UserBatch",
    "candidate_items",
    "factorised_score",
    "init_module",
    "lookup",
    "shown_items",
    "user_batch",
]

PARAMETER_GROUPS = ("embeddings", "body", "head", "adapters", "feedback")
"""Named parameter groups every model reports. ``feedback`` holds the per-slot bias that
explains position effects in the observed clicks; it is part of every scope."""


@dataclass
class UserBatch:
    """The user side of n requests. ``user_id`` (n,), ``user_features`` (n, f_u), ``history``
    (n, H) item ids newest first, -1 padded."""

    user_id: Tensor
    user_features: Tensor
    history: Tensor

    def __len__(self) -> int:
        return self.user_id.shape[0]


@dataclass
class ItemBatch:
    """m items for each of n requests: ``ids`` (n, m) (-1 marks an empty slot), ``features``
    (n, m, f_i), ``topics`` (n, m)."""

    ids: Tensor
    features: Tensor
    topics: Tensor


def _tensor(x: np.ndarray, device: torch.device | str) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t if str(device) == "cpu" else t.to(device, non_blocking=True)


def user_batch(source: Observation | SlateExamples, device: torch.device | str) -> UserBatch:
    """The user side of an observation batch or of examples, as tensors on ``device``."""
    if isinstance(source, SlateExamples):
        uid, features, history = source.user_id, source.user_features, source.history
    else:
        uid, features, history = source["user_id"], source["user_features"], source["history"]
    return UserBatch(_tensor(uid, device), _tensor(features, device), _tensor(history, device))


def candidate_items(obs: Observation, device: torch.device | str) -> ItemBatch:
    """The candidates of an observation batch: (B, C) items."""
    return ItemBatch(
        _tensor(obs["candidate_ids"], device),
        _tensor(obs["candidate_features"], device),
        _tensor(obs["candidate_topics"], device),
    )


def shown_items(examples: SlateExamples, device: torch.device | str) -> ItemBatch:
    """The shown items of examples: (n, k) items, ids -1 at empty slots."""
    return ItemBatch(
        _tensor(examples.item_ids, device),
        _tensor(examples.item_features, device),
        _tensor(examples.item_topics, device),
    )


def lookup(table: nn.Embedding, ids: Tensor) -> Tensor:
    """Rows of ``table`` for ``ids`` (any shape) -> (*ids.shape, dim). Ids beyond the table are
    hashed into it (``id % rows``); -1 (padding, empty slot) reads the last row, which callers
    mask. With autograd on, the gradient is sparse if the table is; without it (acting), a
    plain ``index_select``, which is several times faster."""
    rows = table.num_embeddings
    if ids.numel():
        low, high = torch.aminmax(ids)
        if low < 0 or high >= rows:
            ids = ids.remainder(rows)
    weight = table.weight
    if torch.is_grad_enabled() and weight.requires_grad:
        return nn.functional.embedding(ids, weight, sparse=table.sparse)
    flat = ids.reshape(-1)
    if table.embedding_dim == 1:  # a 1-d gather is ~4x faster than a (rows, 1) one
        return weight.view(-1).index_select(0, flat).view(*ids.shape, 1)
    return weight.index_select(0, flat).view(*ids.shape, table.embedding_dim)


def factorised_score(u: Tensor, user_bias: Tensor, v: Tensor, item_bias: Tensor) -> Tensor:
    """<u, v> + b_item + b_user: u (n, d), user_bias (n,), v (n, m, d), item_bias (n, m) ->
    (n, m)."""
    return (v * u.unsqueeze(1)).sum(-1) + item_bias + user_bias.unsqueeze(1)


class Adapter(nn.Module):
    """A residual bottleneck x + W_up relu(W_down x) (Houlsby et al. 2019, "Parameter-efficient
    transfer learning for NLP"), with W_up initialised to zero so that adding it changes
    nothing until it is trained."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(torch.relu(self.down(x)))

    def zero_(self) -> None:
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)


def _uniform_(param: Tensor, bound: float, generator: torch.Generator) -> None:
    # Drawn on the generator's device (CPU) and copied, so a CUDA model inits identically.
    draw = torch.empty(param.shape, dtype=param.dtype).uniform_(-bound, bound, generator=generator)
    param.copy_(draw)


def _normal_(param: Tensor, std: float, generator: torch.Generator) -> None:
    param.copy_(torch.empty(param.shape, dtype=param.dtype).normal_(0.0, std, generator=generator))


def init_module(module: nn.Module, generator: torch.Generator, embedding_std: float) -> None:
    """Initialise every parameter of ``module`` from ``generator`` (a CPU generator; PyTorch's
    own defaults draw from the global RNG, which driftrec never uses): linear layers
    uniform(+-1/sqrt(fan_in)), embeddings normal(0, embedding_std), attention input projections
    Xavier-uniform, norms to identity, adapters to the identity map. Values do not depend on
    the module's device."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                bound = 1.0 / math.sqrt(sub.in_features)
                _uniform_(sub.weight, bound, generator)
                if sub.bias is not None:
                    _uniform_(sub.bias, bound, generator)
            elif isinstance(sub, nn.Embedding):
                _normal_(sub.weight, embedding_std, generator)
            elif isinstance(sub, nn.LayerNorm):
                nn.init.ones_(sub.weight)
                nn.init.zeros_(sub.bias)
            elif isinstance(sub, nn.MultiheadAttention):
                fan_out, fan_in = sub.in_proj_weight.shape
                _uniform_(sub.in_proj_weight, math.sqrt(6.0 / (fan_in + fan_out)), generator)
                nn.init.zeros_(sub.in_proj_bias)
        for sub in module.modules():
            if isinstance(sub, Adapter):
                sub.zero_()


@runtime_checkable
class Recommender(Protocol):
    """A scorer of (user, item) pairs in factorised form (see the module docstring).

    Attributes:
        sizes: the task's sizes.
        dim: dimension d of the user and item vectors.
        slot_bias: (k,) learned additive effect of each slate slot on the click logit; used in
            training only (it explains position bias), never in ranking.
    """

    sizes: TaskSizes
    dim: int
    slot_bias: nn.Parameter

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:
        """(u (n, d), user bias (n,))."""
        ...

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:
        """(v (n, m, d), item bias (n, m))."""
        ...

    def forward(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """Scores (n, m): ``factorised_score`` of the two encodings."""
        ...

    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names per group of :data:`PARAMETER_GROUPS` (each parameter in one)."""
        ...

    def table_ids(self, users: UserBatch, items: ItemBatch) -> dict[str, Tensor]:
        """For each sparse table (by parameter name), the ids that scoring this batch reads."""
        ...

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Re-initialise every parameter from ``generator``."""
        ...

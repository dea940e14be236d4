"""Matrix factorisation with biases."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.models.base import (
    MODELS,
    Adapter,
    FactorisedModel,
    ItemBatch,
    Scorer,
    UserBatch,
    check_model_sizes,
    group_by_prefix,
    init_module,
)
from driftrec.agents.models.tables import DEFAULT_INITIAL_ROWS, IdTable, lookup
from driftrec.agents.protocol import TaskSizes
from driftrec.validation import check_real

__all__ = ["MatrixFactorisation"]

MAX_INIT_STD = 10.0
"""The largest standard deviation of the initial factors (see ``init_std``)."""


@MODELS.register("mf")
class MatrixFactorisation(FactorisedModel):
    """Biased matrix factorisation, s_ui = <p_u, q_i> + b_u + b_i + b (Koren, Bell & Volinsky
    2009, "Matrix factorization techniques for recommender systems", IEEE Computer).

    It sees ids only: an id it has never trained on scores from its initial (small random)
    factors and zero bias, i.e. close to the global mean.

    Args:
        sizes: task sizes; ``num_users`` and ``num_items`` are the id tables' capacity hints
            (any non-negative id works: the tables grow, see ``driftrec.agents.models.base``).
        dim: number of latent factors d, in [1, 4096] (every width of every model is).
        init_std: standard deviation of the initial factors, in [0, 10] (a score sums ``dim``
            products of two factors: at 10 and the widest ``dim`` it is about 4e5, inside
            float32; ``init_std=1e30`` overflowed before any learning).
        adapter_dim: bottleneck of the residual adapters on p_u and q_i (0: no adapters; the
            ``adapters`` scope needs them).
        initial_rows: rows each id table starts with (its capacity hint if smaller).

    Parameter groups: ``embeddings`` = factors p, q; ``head`` = biases b_u, b_i, b;
    ``adapters``; ``feedback`` = slot bias.
    """

    def __init__(
        self,
        sizes: TaskSizes,
        dim: int = 32,
        init_std: float = 0.1,
        adapter_dim: int = 0,
        initial_rows: int = DEFAULT_INITIAL_ROWS,
    ) -> None:
        checked = check_model_sizes(
            sizes, initial_rows=initial_rows, adapter_dim=adapter_dim, dim=dim
        )
        dim, adapter_dim, initial_rows = (
            checked[k] for k in ("dim", "adapter_dim", "initial_rows")
        )
        init_std = check_real("init_std", init_std, low=0.0, high=MAX_INIT_STD)
        super().__init__()
        self.sizes, self.dim, self.init_std = sizes, dim, init_std
        self.initial_rows = initial_rows
        rows = initial_rows
        self.user_factors = IdTable.over("user", dim, sizes, rows, init_std=init_std, sparse=True)
        self.item_factors = IdTable.over("item", dim, sizes, rows, init_std=init_std, sparse=True)
        self.user_bias = IdTable.over("user", 1, sizes, rows)
        self.item_bias = IdTable.over("item", 1, sizes, rows)
        self.global_bias = nn.Parameter(torch.zeros(()))
        self.user_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.item_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.slot_bias = nn.Parameter(torch.zeros(sizes.slate_size))

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_module(self, generator, self.init_std)  # the bias tables start at zero
        with torch.no_grad():
            self.global_bias.zero_()
            self.slot_bias.zero_()

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:
        p = lookup(self.user_factors, users.user_id)
        if self.user_adapter is not None:
            p = self.user_adapter(p)
        return p, lookup(self.user_bias, users.user_id)[:, 0] + self.global_bias

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:
        q = lookup(self.item_factors, items.ids)
        if self.item_adapter is not None:
            q = self.item_adapter(q)
        return q, lookup(self.item_bias, items.ids)[..., 0]

    def numpy_scorer(self) -> Scorer | None:
        """``<P[u], Q[i]> + b_u + b_i`` in numpy over the tables as they are now (user
        factors (U, d), user bias incl. the global one (U,), item factors (I, d), item bias
        (I,)): the same score as ``forward`` (up to float summation order), 2-3x faster on CPU
        for small batches, because one numpy call costs about a microsecond where a torch op
        costs several. None with adapters (the score is then not a function of the tables
        alone) or off the CPU. The tables must hold every id scored (the agent grows them
        before acting); -1 reads the last row, as ``lookup`` does."""
        if self.user_adapter is not None or self.item_adapter is not None:
            return None
        if self.user_factors.weight.device.type != "cpu":
            return None
        with torch.no_grad():
            p = self.user_factors.weight.detach().numpy()
            bu = (self.user_bias.weight.detach()[:, 0] + self.global_bias.detach()).numpy()
            q = self.item_factors.weight.detach().numpy()
            bi = self.item_bias.weight.detach()[:, 0].numpy()

        def score(users: UserBatch, items: ItemBatch) -> Tensor:
            uid, cid = users.user_id.numpy(), items.ids.numpy()
            scores = np.einsum("bcd,bd->bc", q.take(cid, axis=0), p.take(uid, axis=0))
            scores += bi.take(cid)
            scores += bu.take(uid)[:, None]
            return torch.from_numpy(scores)

        return score

    def parameter_groups(self) -> dict[str, list[str]]:
        return group_by_prefix(self, embeddings=("user_factors", "item_factors"))

    def table_ids(self, users: UserBatch, items: ItemBatch) -> dict[str, Tensor]:
        return {"user_factors.weight": users.user_id, "item_factors.weight": items.ids}

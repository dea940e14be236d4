"""A small sequential transformer over the user's recent history (the "large model")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from driftrec.agents.models.base import (
    MODELS,
    Adapter,
    FactorisedModel,
    ItemBatch,
    UserBatch,
    check_model_sizes,
    group_by_prefix,
    init_module,
)
from driftrec.agents.models.tables import DEFAULT_INITIAL_ROWS, IdTable, lookup
from driftrec.agents.protocol import TaskSizes

__all__ = ["SequentialTransformer"]


@MODELS.register("sasrec")
class SequentialTransformer(FactorisedModel):
    """A SASRec-style self-attentive sequential recommender (Kang & McAuley 2018,
    "Self-attentive sequential recommendation", ICDM), the "large model" stand-in.

    The sequence is one user token (user-id residual, initialised to zero, plus a projection of
    the user's features) followed by the user's recently clicked items, newest first, each the
    shared item-id embedding plus a learned position embedding; padding is masked. A
    transformer encoder (pre-norm, no dropout: dropout would draw from torch's global RNG)
    reads it and the user token's output, through a linear head, is the user vector. An item
    is its id embedding (shared with the history, as in SASRec) plus a projection of its
    features and topic, so items never clicked still score from their features.

    Args:
        sizes: task sizes (``history_length`` fixes the sequence length).
        dim: model width d.
        layers: transformer layers.
        heads: attention heads (must divide ``dim``).
        adapter_dim: bottleneck of residual adapters on the user and item vectors (0: none).
        initial_rows: rows each id table starts with (its capacity hint if smaller; the
            tables grow with the ids, see ``driftrec.agents.models.base``).

    Parameter groups: ``embeddings`` = id tables, topic and position embeddings; ``body`` =
    transformer and feature projections; ``head`` = output layer and biases; ``adapters``;
    ``feedback``.
    """

    def __init__(
        self,
        sizes: TaskSizes,
        dim: int = 32,
        layers: int = 2,
        heads: int = 2,
        adapter_dim: int = 0,
        initial_rows: int = DEFAULT_INITIAL_ROWS,
    ) -> None:
        checked = check_model_sizes(
            sizes,
            initial_rows=initial_rows,
            adapter_dim=adapter_dim,
            dim=dim,
            layers=layers,
            heads=heads,
        )
        dim, layers, heads = checked["dim"], checked["layers"], checked["heads"]
        adapter_dim, initial_rows = checked["adapter_dim"], checked["initial_rows"]
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        super().__init__()
        self.sizes, self.dim = sizes, dim
        self.initial_rows = initial_rows
        rows = initial_rows
        self.item_emb = IdTable.over("item", dim, sizes, rows, init_std=0.1, sparse=True)
        # Zero-initialised, as the user-id residual.
        self.item_id_bias = IdTable.over("item", 1, sizes, rows)
        self.user_emb = IdTable.over("user", dim, sizes, rows, sparse=True)
        self.topic = nn.Embedding(sizes.num_topics, dim)
        self.position = nn.Embedding(sizes.history_length + 1, dim)
        self.user_proj = nn.Linear(sizes.user_feature_dim, dim)
        self.item_proj = nn.Linear(sizes.item_feature_dim, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        self.item_feature_bias = nn.Linear(sizes.item_feature_dim, 1)
        self.user_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.item_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.slot_bias = nn.Parameter(torch.zeros(sizes.slate_size))

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_module(self, generator, 0.1)
        with torch.no_grad():
            self.slot_bias.zero_()

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:
        history = users.history
        user_token = lookup(self.user_emb, users.user_id) + self.user_proj(users.user_features)
        tokens = torch.cat([user_token.unsqueeze(1), lookup(self.item_emb, history)], dim=1)
        tokens = tokens + self.position.weight.unsqueeze(0)
        pad = torch.cat([torch.zeros_like(history[:, :1], dtype=torch.bool), history < 0], dim=1)
        h = self.encoder(tokens, src_key_padding_mask=pad)
        u = self.out(self.norm(h[:, 0]))
        if self.user_adapter is not None:
            u = self.user_adapter(u)
        return u, torch.zeros_like(u[:, 0])

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:
        v = lookup(self.item_emb, items.ids) + self.item_proj(items.features)
        v = v + self.topic(items.topics)
        bias = (
            lookup(self.item_id_bias, items.ids)[..., 0]
            + self.item_feature_bias(items.features)[..., 0]
        )
        if self.item_adapter is not None:
            v = self.item_adapter(v)
        return v, bias

    def parameter_groups(self) -> dict[str, list[str]]:
        return group_by_prefix(
            self,
            embeddings=("item_emb", "item_id_bias", "user_emb", "topic", "position"),
            body=("encoder", "user_proj", "item_proj"),
        )

    def table_ids(self, users: UserBatch, items: ItemBatch) -> dict[str, Tensor]:
        return {
            "item_emb.weight": torch.cat([users.history.reshape(-1), items.ids.reshape(-1)]),
            "user_emb.weight": users.user_id,
        }

"""A two-tower scorer over the observable features, with id residuals."""

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
from driftrec.validation import check_flag

__all__ = ["TwoTower"]


def _mlp(inputs: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, out))


@MODELS.register("two_tower")
class TwoTower(FactorisedModel):
    """Two towers, one over the user's features, one over the item's features and topic, whose
    dot product is the score (Covington et al. 2016, "Deep neural networks for YouTube
    recommendations"; Yi et al. 2019, "Sampling-bias-corrected neural modeling for large corpus
    item recommendations").

    Each tower's output has a per-id residual (``use_ids``), initialised to zero: a user or item
    never trained on is scored from its features alone, so the model ranks unseen ids sensibly
    from the first request, while seen ids can learn what the noisy features miss (item
    quality, drifted tastes).

    Args:
        sizes: task sizes.
        dim: output dimension d of the towers.
        hidden: hidden width of each tower.
        topic_dim: dimension of the topic embedding fed to the item tower.
        use_ids: add the zero-initialised per-id residuals and biases.
        adapter_dim: bottleneck of the residual adapters on the tower outputs (0: none).
        initial_rows: rows each id table starts with (its capacity hint if smaller; the
            tables grow with the ids, see ``driftrec.agents.models.base``).

    Parameter groups: ``embeddings`` = id residuals, id biases, topic embedding; ``body`` =
    first tower layers; ``head`` = last tower layers and the feature biases; ``adapters``;
    ``feedback``.
    """

    def __init__(
        self,
        sizes: TaskSizes,
        dim: int = 32,
        hidden: int = 64,
        topic_dim: int = 8,
        use_ids: bool = True,
        adapter_dim: int = 0,
        initial_rows: int = DEFAULT_INITIAL_ROWS,
    ) -> None:
        checked = check_model_sizes(
            sizes,
            initial_rows=initial_rows,
            adapter_dim=adapter_dim,
            dim=dim,
            hidden=hidden,
            topic_dim=topic_dim,
        )
        dim, hidden, topic_dim = checked["dim"], checked["hidden"], checked["topic_dim"]
        adapter_dim, initial_rows = checked["adapter_dim"], checked["initial_rows"]
        use_ids = check_flag("use_ids", use_ids)
        super().__init__()
        self.sizes, self.dim, self.use_ids = sizes, dim, use_ids
        self.initial_rows = initial_rows
        self.topic = nn.Embedding(sizes.num_topics, topic_dim)
        item_in = sizes.item_feature_dim + topic_dim
        self.user_tower = _mlp(sizes.user_feature_dim, hidden, dim)
        self.item_tower = _mlp(item_in, hidden, dim)
        self.user_feature_bias = nn.Linear(sizes.user_feature_dim, 1)
        self.item_feature_bias = nn.Linear(item_in, 1)
        if use_ids:  # zero-initialised residuals and biases
            rows = initial_rows
            self.user_ids = IdTable.over("user", dim, sizes, rows, sparse=True)
            self.item_ids = IdTable.over("item", dim, sizes, rows, sparse=True)
            self.item_id_bias = IdTable.over("item", 1, sizes, rows)
        self.user_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.item_adapter = Adapter(dim, adapter_dim) if adapter_dim else None
        self.slot_bias = nn.Parameter(torch.zeros(sizes.slate_size))

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_module(self, generator, 0.1)  # the id tables start at zero
        with torch.no_grad():
            self.slot_bias.zero_()

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:
        u = self.user_tower(users.user_features)
        if self.use_ids:
            u = u + lookup(self.user_ids, users.user_id)
        if self.user_adapter is not None:
            u = self.user_adapter(u)
        return u, self.user_feature_bias(users.user_features)[:, 0]

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:
        x = torch.cat([items.features, self.topic(items.topics)], dim=-1)
        v = self.item_tower(x)
        bias = self.item_feature_bias(x)[..., 0]
        if self.use_ids:
            v = v + lookup(self.item_ids, items.ids)
            bias = bias + lookup(self.item_id_bias, items.ids)[..., 0]
        if self.item_adapter is not None:
            v = self.item_adapter(v)
        return v, bias

    def parameter_groups(self) -> dict[str, list[str]]:
        return group_by_prefix(
            self,
            embeddings=("user_ids", "item_ids", "item_id_bias", "topic"),
            body=("user_tower.0", "item_tower.0"),
        )

    def table_ids(self, users: UserBatch, items: ItemBatch) -> dict[str, Tensor]:
        if not self.use_ids:
            return {}
        return {"user_ids.weight": users.user_id, "item_ids.weight": items.ids}

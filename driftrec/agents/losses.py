"""Losses on the observed feedback of served slates.

The model's training logit for the item in slot j is ``score + slot_bias[j]``: the learned
slot bias absorbs the position effect in the clicks, so that the score itself ranks items by
appeal wherever they were shown (it is not used when ranking).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from driftrec.agents.examples import SlateExamples
from driftrec.agents.models.base import (
    ItemBatch,
    Recommender,
    UserBatch,
    candidate_items,
    shown_items,
    user_batch,
)
from driftrec.agents.protocol import Observation

__all__ = [
    "CLICK_LOSSES",
    "TrainingBatch",
    "candidates_of",
    "click_loss",
    "slot_logits",
    "training_batch",
]

CLICK_LOSSES = ("bce", "softmax", "mse")
"""``bce``: logistic loss per shown item, clicked or not (clicks). ``softmax``: a multinomial
logit over the shown items plus a no-click option with logit 0 (the shape of the world's own
click model). ``mse``: squared error between the logit and the observed reward per shown item,
the click's engagement value where clicked and 0 elsewhere (engagement)."""


@dataclass
class TrainingBatch:
    """Tensors of one gradient step.

    Attributes:
        users: the user side (n rows).
        items: the shown items (n, k); ids -1 at empty slots.
        shown: (n, k) bool, False at empty slots.
        click_slot: (n,) int64, -1 for no click.
        reward: (n,) float32.
        candidates: the fresh micro-batch's full candidate lists ``(users, items (B, C))``,
            for loss terms that look beyond the shown items (distillation); None if absent.
        rows: for each sparse table in the update's scope, the distinct rows this batch reads
            (so penalties touch only those rows, keeping gradients sparse).
    """

    users: UserBatch
    items: ItemBatch
    shown: Tensor
    click_slot: Tensor
    reward: Tensor
    candidates: tuple[UserBatch, ItemBatch] | None = None
    rows: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return self.click_slot.shape[0]


def training_batch(
    examples: SlateExamples,
    device: torch.device | str,
    candidates: tuple[UserBatch, ItemBatch] | None = None,
) -> TrainingBatch:
    items = shown_items(examples, device)
    return TrainingBatch(
        users=user_batch(examples, device),
        items=items,
        shown=items.ids >= 0,
        click_slot=torch.from_numpy(examples.click_slot).to(device),
        reward=torch.from_numpy(examples.reward).to(device),
        candidates=candidates,
    )


def candidates_of(obs: Observation, device: torch.device | str) -> tuple[UserBatch, ItemBatch]:
    """The users and full candidate lists (B, C) of an observation batch."""
    return user_batch(obs, device), candidate_items(obs, device)


def slot_logits(model: Recommender, batch: TrainingBatch) -> Tensor:
    """(n, k) training logits: score of each shown item plus its slot's bias."""
    return model(batch.users, batch.items) + model.slot_bias


def click_loss(
    kind: str, logits: Tensor, batch: TrainingBatch, per_request: bool = False
) -> Tensor:
    """The loss ``kind`` (see :data:`CLICK_LOSSES`) of ``logits`` (n, k) on the batch: the mean
    over the batch, or with ``per_request`` the (n,) loss of each request (for ``bce`` and
    ``mse``, the mean over its shown items)."""
    shown = batch.shown
    n, k = logits.shape
    clicked = batch.click_slot
    if kind == "softmax":
        masked = logits.masked_fill(~shown, float("-inf"))
        full = torch.cat([masked, torch.zeros_like(logits[:, :1])], dim=1)
        target = torch.where(clicked >= 0, clicked, torch.full_like(clicked, k))
        return nn.functional.cross_entropy(
            full, target, reduction="none" if per_request else "mean"
        )
    onehot = torch.zeros_like(logits)
    rows = torch.arange(n, device=logits.device)
    hit = clicked >= 0
    if kind == "bce":
        onehot[rows[hit], clicked[hit]] = 1.0
        per_item = nn.functional.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    elif kind == "mse":
        onehot[rows[hit], clicked[hit]] = batch.reward[hit]
        per_item = (logits - onehot) ** 2
    else:
        raise ValueError(f"unknown loss {kind!r}; valid losses are {list(CLICK_LOSSES)}")
    weight = shown.to(logits.dtype)
    if per_request:
        return (per_item * weight).sum(1) / weight.sum(1).clamp_min(1.0)
    return (per_item * weight).sum() / weight.sum().clamp_min(1.0)

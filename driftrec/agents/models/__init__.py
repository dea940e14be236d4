"""Recommender models (torch ``nn.Module``s): matrix factorisation, a two-tower feature scorer
and a SASRec-style sequential transformer. ``make_model`` builds one from plain configuration."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from driftrec.agents.models.base import (
    PARAMETER_GROUPS,
    ItemBatch,
    Recommender,
    UserBatch,
    candidate_items,
    shown_items,
    user_batch,
)
from driftrec.agents.models.mf import MatrixFactorisation
from driftrec.agents.models.sequential import SequentialTransformer
from driftrec.agents.models.two_tower import TwoTower
from driftrec.agents.protocol import TaskSizes

__all__ = [
    "MODELS",
    "PARAMETER_GROUPS",
    "ItemBatch",
    "MatrixFactorisation",
    "Recommender",
    "SequentialTransformer",
    "TwoTower",
    "UserBatch",
    "candidate_items",
    "make_model",
    "model_parameters",
    "shown_items",
    "user_batch",
]

MODELS: dict[str, type[nn.Module]] = {
    "mf": MatrixFactorisation,
    "two_tower": TwoTower,
    "sasrec": SequentialTransformer,
}
"""Model names and their classes."""


def model_parameters(name: str) -> dict[str, Any]:
    """The configuration parameters of model ``name`` and their defaults."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models are {sorted(MODELS)}")
    params = inspect.signature(MODELS[name].__init__).parameters
    return {k: p.default for k, p in params.items() if k not in ("self", "sizes")}


def make_model(
    name: str,
    sizes: TaskSizes,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    **params: Any,
) -> nn.Module:
    """Build model ``name`` for ``sizes``, initialised from ``generator``, on ``device``.

    Module construction runs inside ``torch.random.fork_rng`` (PyTorch's layers draw default
    initial values from the global RNG), so the global RNG is left exactly as it was; every
    parameter is then re-drawn from ``generator``.
    """
    valid = model_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for model {name!r}; its parameters are {sorted(valid)}"
        )
    with torch.random.fork_rng(devices=[]):
        model = MODELS[name](sizes, **params)
    model.reset_parameters(generator)
    return model.to(device)

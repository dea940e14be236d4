"""Recommender models (torch ``nn.Module``s): matrix factorisation, a two-tower feature scorer
and a SASRec-style sequential transformer. ``make_model`` builds one from plain configuration.

Adding a model: a class that follows :class:`~driftrec.agents.models.base.Recommender` (most
simply a :class:`~driftrec.agents.models.base.FactorisedModel` subclass), registered with
``@MODELS.register("name")``; nothing else changes (the agent tests are parametrised over
``MODELS``)."""

from __future__ import annotations

from typing import Any

import torch

from driftrec.agents.models.base import (
    MODELS,
    PARAMETER_GROUPS,
    FactorisedModel,
    ItemBatch,
    Recommender,
    Scorer,
    UserBatch,
    candidate_items,
    init_module,
    shown_items,
    user_batch,
)
from driftrec.agents.models.mf import MatrixFactorisation
from driftrec.agents.models.sequential import SequentialTransformer
from driftrec.agents.models.tables import IdTable
from driftrec.agents.models.two_tower import TwoTower
from driftrec.agents.protocol import TaskSizes

__all__ = [
    "MODELS",
    "PARAMETER_GROUPS",
    "FactorisedModel",
    "IdTable",
    "ItemBatch",
    "MatrixFactorisation",
    "Recommender",
    "Scorer",
    "SequentialTransformer",
    "TwoTower",
    "UserBatch",
    "candidate_items",
    "init_module",
    "make_model",
    "model_parameters",
    "shown_items",
    "user_batch",
]


def model_parameters(name: str) -> dict[str, Any]:
    """The configuration parameters of model ``name`` and their defaults."""
    return MODELS.parameters(name)


def make_model(
    name: str,
    sizes: TaskSizes,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    **params: Any,
) -> Recommender:
    """Build model ``name`` for ``sizes``, initialised from ``generator``, on ``device``
    (unknown names or parameters fail with the valid ones listed).

    Module construction runs inside ``torch.random.fork_rng`` (PyTorch's layers draw default
    initial values from the global RNG), so the global RNG is left exactly as it was; every
    parameter is then re-drawn from ``generator``.
    """
    with torch.random.fork_rng(devices=[]):
        model = MODELS.build(name, sizes, **params)
    model.reset_parameters(generator)
    model.to(device)
    return model

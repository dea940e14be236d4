"""What every recommender model provides, and the pieces they share.

Every model here is *factorised*: a user side ``u`` (n, d) with a user bias (n,), an item side
``v`` (n, m, d) with item biases (n, m), and score ``<u, v> + b_item + b_user``. That form is
what lets exploration (Thompson sampling on the last layer) and ensembles treat the models
alike. :class:`Recommender` is the contract the agent, its trainer, exploration and loss terms
rely on; :class:`FactorisedModel` is a base that provides ``forward`` and the defaults.

A model registers itself in :data:`MODELS` (``@MODELS.register("name")`` on its class; its
constructor takes the task's sizes first, then its configuration as keyword parameters) and is
then built by name: ``make_agent(..., model="name")``. Its id tables grow with the ids they
meet (:mod:`driftrec.agents.models.tables`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.checks import flat_user_ids
from driftrec.agents.examples import SlateExamples
from driftrec.agents.models.tables import IdTable, resize_to_state
from driftrec.agents.protocol import Observation, TaskSizes
from driftrec.registry import Registry
from driftrec.validation import MAX_SIZE, MAX_WIDTH, check_integer

__all__ = [
    "MODELS",
    "PARAMETER_GROUPS",
    "Adapter",
    "FactorisedModel",
    "ItemBatch",
    "Recommender",
    "Scorer",
    "UserBatch",
    "candidate_items",
    "check_model_sizes",
    "factorised_score",
    "frozen_copy",
    "group_by_prefix",
    "init_module",
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
    """The user side of an observation batch (``user_id`` (B,) or (B, 1)) or of examples, as
    tensors on ``device``: ``user_id`` (B,)."""
    if isinstance(source, SlateExamples):
        uid, features, history = source.user_id, source.user_features, source.history
    else:
        uid = flat_user_ids(source["user_id"], "user_batch")
        features, history = source["user_features"], source["history"]
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
    Xavier-uniform, norms to identity, adapters to the identity map; id tables
    (:class:`IdTable`) draw a seed and take their own initial rows. Values do not depend on the
    module's device."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, IdTable):
                sub.reset_rows(generator)
            elif isinstance(sub, nn.Linear):
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


Scorer = Callable[[UserBatch, ItemBatch], Tensor]
"""A scoring function with the signature of a model's ``forward``: (n, m) scores."""


@runtime_checkable
class Recommender(Protocol):
    """What the agent, its trainer, exploration and loss terms ask of a model: an
    ``nn.Module`` that scores (user, item) pairs in factorised form (see the module docstring).
    :class:`FactorisedModel` provides ``forward`` and :meth:`numpy_scorer`; a model defines the
    rest.

    Attributes:
        sizes: the task's sizes.
        dim: dimension d of the user and item vectors.
        initial_rows: rows each id table starts with (the agent starts its per-user state,
            e.g. Thompson sampling's counts, at the same size).
        slot_bias: (k,) learned additive effect of each slate slot on the click logit; used in
            training only (it explains position bias), never in ranking.
    """

    sizes: TaskSizes
    dim: int
    initial_rows: int

    @property
    def slot_bias(self) -> Tensor: ...

    def __call__(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """Scores (n, m): ``factorised_score`` of the two encodings."""
        ...

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:
        """(u (n, d), user bias (n,))."""
        ...

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:
        """(v (n, m, d), item bias (n, m))."""
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

    def numpy_scorer(self) -> Scorer | None:
        """A faster equivalent of ``forward`` for acting (no autograd, no per-op dispatch),
        valid until the parameters change or the tables grow; None if the model has none
        (the agent then calls the model)."""
        ...

    # The ``nn.Module`` methods the agent uses.
    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]: ...

    def named_modules(
        self, memo: set[nn.Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Module]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any: ...

    def requires_grad_(self, requires_grad: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, device: torch.device | str) -> Any: ...


class FactorisedModel(nn.Module):
    """Base of the models here: the score is ``factorised_score`` of the user and item
    encodings, which subclasses define (``encode_users``, ``encode_items``, and the rest of
    :class:`Recommender`). There is no fast scoring path unless a subclass provides one."""

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """Scores (n, m) of every user's items."""
        return factorised_score(*self.encode_users(users), *self.encode_items(items))

    def numpy_scorer(self) -> Scorer | None:
        """None: the agent scores with ``forward``."""
        return None


MODELS: Registry[Recommender] = Registry("model", skip=1)
"""Model names and their classes; a class's constructor parameters after ``sizes`` are the
model's parameters. Register a model with ``@MODELS.register("name")`` on its class."""


def check_model_sizes(
    sizes: TaskSizes, *, initial_rows: Any, adapter_dim: Any, **dims: Any
) -> dict[str, int]:
    """The integer configuration of a model, checked: each of ``dims`` (widths, layer counts)
    in [1, 4096] (``MAX_WIDTH``), ``adapter_dim`` in [0, 4096] (0: no adapters),
    ``initial_rows`` in [1, 10**8] (``MAX_SIZE``); ``sizes`` must be a :class:`TaskSizes`.
    Returns them as Python ints, by name."""
    if not isinstance(sizes, TaskSizes):
        raise TypeError(f"sizes must be TaskSizes (driftrec.agents.task_sizes(env)), got {sizes!r}")
    out = {
        name: check_integer(name, value, minimum=1, maximum=MAX_WIDTH)
        for name, value in dims.items()
    }
    out["adapter_dim"] = check_integer("adapter_dim", adapter_dim, minimum=0, maximum=MAX_WIDTH)
    out["initial_rows"] = check_integer("initial_rows", initial_rows, minimum=1, maximum=MAX_SIZE)
    return out


def group_by_prefix(
    model: nn.Module, embeddings: tuple[str, ...], body: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """The parameter groups of ``PARAMETER_GROUPS`` by name prefix: ``embeddings`` and ``body``
    as given; every model's residual adapters (``user_adapter``, ``item_adapter``) and slot bias
    (``feedback``) alike; anything else is the head."""
    groups: dict[str, list[str]] = {g: [] for g in PARAMETER_GROUPS}
    for name, _ in model.named_parameters():
        if name.startswith(embeddings):
            groups["embeddings"].append(name)
        elif body and name.startswith(body):
            groups["body"].append(name)
        elif name.startswith(("user_adapter", "item_adapter")):
            groups["adapters"].append(name)
        elif name == "slot_bias":
            groups["feedback"].append(name)
        else:
            groups["head"].append(name)
    return groups


def frozen_copy(model: Recommender, state: Mapping[str, Tensor] | None = None) -> Recommender:
    """An independent copy of ``model`` that is never trained (a target network, an ensemble
    member, a teacher); holding the values of ``state`` (a ``state_dict`` of such a copy, its
    id tables resized to fit first) if given."""
    frozen = copy.deepcopy(model)
    frozen.requires_grad_(False)
    if state is not None:
        resize_to_state(frozen, state)
        frozen.load_state_dict(state)
    return frozen

"""What every recommender model provides, and the pieces they share.

Every model here is *factorised*: a user side ``u`` (n, d) with a user bias (n,), an item side
``v`` (n, m, d) with item biases (n, m), and score ``<u, v> + b_item + b_user``. That form is
what lets exploration (Thompson sampling on the last layer) and ensembles treat the three models
alike.

Id-indexed tables (:class:`IdTable`: user and item factors, id residuals, id biases) start
small and grow when an id at or beyond their rows appears, so any non-negative id works; the
observation space's capacities (``num_users``, ``num_items``) are only a hint of how far they
will grow. A table starts with ``min(initial_rows, capacity)`` rows (``initial_rows`` is a
model parameter, default :data:`DEFAULT_INITIAL_ROWS`) and grows geometrically (see
:func:`grown_rows`), so growth costs amortised O(1) per id. Row ``r`` of a table always starts
from the same value, a function of the table's seed and of ``r`` only
(:meth:`IdTable.initial_values`), whatever the table's size when the row was added: a grown
table is exactly the table that would have been there had it been large from the start.
-1 (padding, an empty slot) reads the last row, which callers mask. Factor tables have sparse
gradients, so an update touches only the rows of the batch (lazy Adam); the one-column bias
tables are small and dense.

Whoever holds per-row state of a model (optimisers, EWC anchors, frozen copies) follows its
growth: the trainer grows the model before each batch and then every such piece of state
(``driftrec.agents.trainer.Trainer.ensure_rows``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.examples import SlateExamples
from driftrec.agents.protocol import Observation, TaskSizes, flat_user_ids
from driftrec.validation import check_integer

__all__ = [
    "DEFAULT_INITIAL_ROWS",
    "PARAMETER_GROUPS",
    "Adapter",
    "FactorisedModel",
    "IdTable",
    "ItemBatch",
    "Recommender",
    "UserBatch",
    "candidate_items",
    "check_model_sizes",
    "factorised_score",
    "group_by_prefix",
    "grow_tables",
    "grown_rows",
    "id_tables_of",
    "init_module",
    "lookup",
    "match_rows",
    "resize_to_state",
    "shown_items",
    "user_batch",
]

DEFAULT_INITIAL_ROWS = 1024
"""Rows an id table starts with (or its capacity hint, if smaller): 1,024 rows of 32 factors are
128 KiB, small enough that an agent for a large catalogue starts cheaply, large enough that a
small world never grows."""

_INIT_BLOCK = 1024
"""Initial values are drawn in blocks of this many rows, each block from its own seed (see
:meth:`IdTable.initial_values`)."""

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


def grown_rows(rows: int, needed: int, capacity: int) -> int:
    """The rows a table of ``rows`` rows grows to so as to hold ``needed`` rows: at least
    double and at least ``needed`` (geometric growth: amortised O(1) per id), except that a
    table below its ``capacity`` hint stops there when that is enough (the observation space
    says no id reaches beyond it; if one does later, growth resumes doubling)."""
    if needed <= rows:
        return rows
    new = max(2 * rows, needed)
    if rows < capacity:
        new = min(new, max(capacity, needed))
    return new


class IdTable(nn.Embedding):
    """An embedding table over an open id space (users or items) that grows on demand.

    It starts with ``min(initial_rows, capacity)`` rows and grows (:meth:`ensure_rows`, which
    :func:`lookup` calls) when an id at or beyond its rows is read. Growth replaces the data of
    the same ``weight`` parameter, so optimisers and scopes that hold the parameter keep it;
    their per-row state must follow (the trainer does it).

    Row ``r`` starts from ``normal(0, init_std)`` (zeros if ``init_std`` is 0) drawn from a
    seed that depends on the table's ``init_seed`` and on ``r // 1024`` only: the same value
    whether the row was there from the start or added by growth. ``init_seed`` (a buffer, so
    that it travels in the ``state_dict`` and in copies) is redrawn from the model's generator
    by :meth:`reset_rows`.

    Args:
        dim: embedding dimension.
        space: ``"user"`` or ``"item"``: which ids index the table.
        capacity: the observation space's capacity for those ids (a hint).
        initial_rows: rows to start with (at most ``capacity``).
        init_std: standard deviation of the initial rows (0: zeros).
        sparse: sparse gradients (factor tables, trained by lazy Adam).
    """

    def __init__(
        self,
        dim: int,
        *,
        space: str,
        capacity: int,
        initial_rows: int = DEFAULT_INITIAL_ROWS,
        init_std: float = 0.0,
        sparse: bool = False,
    ) -> None:
        if space not in ("user", "item"):
            raise ValueError(f"space must be 'user' or 'item', got {space!r}")
        if initial_rows < 1 or capacity < 1:
            raise ValueError(
                f"initial_rows and capacity must be >= 1, got {initial_rows}, {capacity}"
            )
        rows = min(initial_rows, capacity)
        # An explicit weight: nn.Embedding would otherwise draw one from the global RNG.
        super().__init__(rows, dim, sparse=sparse, _weight=torch.zeros(rows, dim))
        self.space, self.capacity, self.init_std = space, capacity, init_std
        self.register_buffer("init_seed", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, space={self.space}, capacity={self.capacity}"

    def initial_values(self, start: int, stop: int) -> Tensor:
        """The initial values of rows ``start`` to ``stop`` (CPU, ``(stop - start, dim)``)."""
        dim, dtype = self.embedding_dim, self.weight.dtype
        out = torch.zeros((max(0, stop - start), dim), dtype=dtype)
        if self.init_std == 0 or stop <= start:
            return out
        seed = int(self.init_seed)
        for block in range(start // _INIT_BLOCK, (stop - 1) // _INIT_BLOCK + 1):
            state = np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)
            gen = torch.Generator().manual_seed(int(state[0]))
            values = torch.empty((_INIT_BLOCK, dim), dtype=dtype)
            values.normal_(0.0, self.init_std, generator=gen)
            first = block * _INIT_BLOCK
            lo, hi = max(start, first), min(stop, first + _INIT_BLOCK)
            out[lo - start : hi - start] = values[lo - first : hi - first]
        return out

    def reset_rows(self, generator: torch.Generator) -> None:
        """Draw a new ``init_seed`` from ``generator`` and set every row to its initial value."""
        seed = torch.randint(0, 2**63 - 1, (), generator=generator, dtype=torch.int64)
        with torch.no_grad():
            self.init_seed.copy_(seed)
            self.weight.copy_(self.initial_values(0, self.num_embeddings))

    def ensure_rows(self, needed: int) -> bool:
        """Grow (by :func:`grown_rows`) so that the table holds ``needed`` rows; whether it
        grew. Rows that existed keep their values; new rows get their initial values."""
        if needed <= self.num_embeddings:
            return False
        self.resize_rows(grown_rows(self.num_embeddings, needed, self.capacity))
        return True

    def resize_rows(self, rows: int) -> None:
        """Resize to exactly ``rows`` rows (keeping the first ones, adding initial values):
        growth, or matching a state before ``load_state_dict``. Call it between gradient
        steps, not inside a graph that already read the table."""
        old = self.num_embeddings
        if rows == old:
            return
        # Outside inference mode even when acting: the new data must stay trainable.
        with torch.inference_mode(False), torch.no_grad():
            weight = self.weight
            new = torch.empty((rows, self.embedding_dim), dtype=weight.dtype, device=weight.device)
            keep = min(old, rows)
            new[:keep] = weight[:keep]
            if rows > old:
                new[old:] = self.initial_values(old, rows).to(weight.device)
            weight.data = new
        self.num_embeddings = rows


def id_tables_of(model: nn.Module) -> dict[str, IdTable]:
    """The growable id tables of ``model``, by module name."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, IdTable)}


def grow_tables(tables: Iterable[IdTable], users: int, items: int) -> bool:
    """Grow each of ``tables`` to hold ``users`` (user tables) or ``items`` (item tables) rows,
    i.e. the largest id + 1 of a batch; whether any grew."""
    grew = False
    for table in tables:
        grew |= table.ensure_rows(users if table.space == "user" else items)
    return grew


def match_rows(copy: nn.Module, model: nn.Module) -> None:
    """Grow the id tables of ``copy`` (a frozen copy of ``model``: a teacher, an ensemble
    member) to the rows of ``model``'s, so that it scores every id ``model`` can; the rows it
    gains hold the copy's own initial values (those ids were unseen when it was taken)."""
    rows = {name: table.num_embeddings for name, table in id_tables_of(model).items()}
    for name, table in id_tables_of(copy).items():
        if name in rows and rows[name] > table.num_embeddings:
            table.resize_rows(rows[name])


def resize_to_state(model: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Resize ``model``'s id tables to the rows they have in ``state`` (a ``state_dict``), so
    that ``model.load_state_dict(state)`` fits: a fresh model's tables are still small."""
    for name, table in id_tables_of(model).items():
        key = f"{name}.weight" if name else "weight"
        if key in state:
            table.resize_rows(state[key].shape[0])


def lookup(table: IdTable, ids: Tensor) -> Tensor:
    """Rows of ``table`` for ``ids`` (any shape) -> (*ids.shape, dim). An id at or beyond the
    table's rows grows it (:meth:`IdTable.ensure_rows`; the agent grows its tables before a
    batch, so this only happens for a model used on its own); -1 (padding, empty slot) reads
    the last row, which callers mask. With autograd on, the gradient is sparse if the table
    is; without it (acting), a plain ``index_select``, which is several times faster."""
    if ids.numel():
        low, high = torch.aminmax(ids)
        if high >= table.num_embeddings:
            table.ensure_rows(int(high) + 1)
        if low < 0:
            ids = ids.remainder(table.num_embeddings)
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


class FactorisedModel(nn.Module):
    """Base of the models here: the score is ``factorised_score`` of the user and item
    encodings, which subclasses define (``encode_users``, ``encode_items``)."""

    def encode_users(self, users: UserBatch) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def encode_items(self, items: ItemBatch) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """Scores (n, m) of every user's items."""
        return factorised_score(*self.encode_users(users), *self.encode_items(items))


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


def check_model_sizes(
    sizes: TaskSizes, *, initial_rows: Any, adapter_dim: Any, **dims: Any
) -> dict[str, int]:
    """The integer configuration of a model, checked: each of ``dims`` (widths, layer counts)
    >= 1, ``adapter_dim`` >= 0 (0: no adapters), ``initial_rows`` >= 1; ``sizes`` must be a
    :class:`TaskSizes`. Returns them as Python ints, by name."""
    if not isinstance(sizes, TaskSizes):
        raise TypeError(f"sizes must be TaskSizes (driftrec.agents.task_sizes(env)), got {sizes!r}")
    out = {name: check_integer(name, value, minimum=1) for name, value in dims.items()}
    out["adapter_dim"] = check_integer("adapter_dim", adapter_dim, minimum=0)
    out["initial_rows"] = check_integer("initial_rows", initial_rows, minimum=1)
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

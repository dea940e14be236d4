"""Id tables over an open id space: they start small and grow when a larger id appears.

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

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.protocol import TaskSizes

__all__ = [
    "DEFAULT_INITIAL_ROWS",
    "IdTable",
    "ModuleTree",
    "check_model_state",
    "grow_tables",
    "grown_rows",
    "id_tables_of",
    "lookup",
    "match_rows",
    "resize_to_state",
]

DEFAULT_INITIAL_ROWS = 1024
"""Rows an id table starts with (or its capacity hint, if smaller): 1,024 rows of 32 factors are
128 KiB, small enough that an agent for a large catalogue starts cheaply, large enough that a
small world never grows."""

_INIT_BLOCK = 1024
"""Initial values are drawn in blocks of this many rows, each block from its own seed (see
:meth:`IdTable.initial_values`)."""


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

    init_seed: Tensor

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

    @classmethod
    def over(
        cls,
        space: str,
        dim: int,
        sizes: TaskSizes,
        initial_rows: int,
        *,
        init_std: float = 0.0,
        sparse: bool = False,
    ) -> IdTable:
        """A table over the user or item ids of a task (``space``), its capacity hint read
        from ``sizes``."""
        capacity = sizes.num_users if space == "user" else sizes.num_items
        return cls(
            dim,
            space=space,
            capacity=capacity,
            initial_rows=initial_rows,
            init_std=init_std,
            sparse=sparse,
        )

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


class ModuleTree(Protocol):
    """Anything that lists its submodules as ``nn.Module`` does (a model, a frozen copy)."""

    def named_modules(
        self, memo: set[nn.Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Module]]: ...


def id_tables_of(model: ModuleTree) -> dict[str, IdTable]:
    """The growable id tables of ``model``, by module name."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, IdTable)}


def grow_tables(tables: Iterable[IdTable], users: int, items: int) -> bool:
    """Grow each of ``tables`` to hold ``users`` (user tables) or ``items`` (item tables) rows,
    i.e. the largest id + 1 of a batch; whether any grew."""
    grew = False
    for table in tables:
        grew |= table.ensure_rows(users if table.space == "user" else items)
    return grew


def match_rows(copy: ModuleTree, model: ModuleTree) -> None:
    """Grow the id tables of ``copy`` (a frozen copy of ``model``: a teacher, an ensemble
    member) to the rows of ``model``'s, so that it scores every id ``model`` can; the rows it
    gains hold the copy's own initial values (those ids were unseen when it was taken)."""
    rows = {name: table.num_embeddings for name, table in id_tables_of(model).items()}
    for name, table in id_tables_of(copy).items():
        if name in rows and rows[name] > table.num_embeddings:
            table.resize_rows(rows[name])


def resize_to_state(model: ModuleTree, state: Mapping[str, Tensor]) -> None:
    """Resize ``model``'s id tables to the rows they have in ``state`` (a ``state_dict``), so
    that ``model.load_state_dict(state)`` fits: a fresh model's tables are still small."""
    for name, table in id_tables_of(model).items():
        key = f"{name}.weight" if name else "weight"
        if key in state:
            table.resize_rows(state[key].shape[0])


def check_model_state(
    own: Mapping[str, Tensor], saved: Mapping[str, Tensor], tables: Iterable[str]
) -> None:
    """Raise ValueError, saying what differs, unless ``saved`` has the tensors of ``own`` (two
    ``state_dict``s of a model), with the same shapes but for the rows of the id ``tables``
    (their module names)."""
    if set(own) != set(saved):
        raise ValueError(
            f"the saved model has tensors {sorted(set(saved) - set(own))} that this one "
            f"lacks and lacks {sorted(set(own) - set(saved))}: build the agent with the "
            "same model and model parameters"
        )
    rows = {f"{n}.weight" if n else "weight" for n in tables}
    for key, tensor in own.items():
        mine, theirs = tuple(tensor.shape), tuple(saved[key].shape)
        if key in rows:
            mine, theirs = mine[1:], theirs[1:]
        if mine != theirs:
            raise ValueError(
                f"the saved model's {key} has shape {tuple(saved[key].shape)}, this "
                f"model's {tuple(tensor.shape)}: build the agent with the same model "
                "parameters (e.g. dim)"
            )


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

"""Extra loss terms of an update, and the L1 / L2 weight penalty.

A loss term is a frozen configuration. Its ``memory`` (anchors, Fisher information, a teacher
model) is owned by the trainer: the term computes a penalty from it, and, every
``consolidate_every`` requests, returns a new memory from the current model. Terms never mutate
the model or the trainer. A term declares what it needs (recent examples to consolidate on,
the full candidate lists) as attributes of the :class:`LossTerm` protocol; adding a term
touches neither the trainer nor the agent.

On id tables with sparse gradients, penalties read only the rows the batch reads (``batch.rows``),
so an update stays sparse: this is the "lazy" regularisation used with sparse embeddings.

When the model's id tables grow, the trainer passes every memory through the term's ``grow``,
which must return a memory for the grown model that treats the new rows as never seen (no
anchor pull on them, a teacher that scores them as it would have at its own start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from driftrec.agents.examples import SlateExamples
from driftrec.agents.losses import TrainingBatch
from driftrec.agents.models.base import Recommender
from driftrec.agents.scopes import ParameterScope
from driftrec.validation import check_real

__all__ = ["LossFunction", "LossTerm", "Memoryless", "WeightPenalty", "penalised_values"]

LossFunction = Callable[[TrainingBatch], Tensor]
"""The update's click loss on a batch (the model is closed over)."""


class LossTerm(Protocol):
    """An extra loss term of an update rule. It declares what it needs from the trainer (the
    trainer reads these declarations, never the term's type) and computes its penalty from a
    memory that the trainer owns.

    A term without memory (a fixed penalty) can inherit :class:`Memoryless` and define
    :meth:`penalty` only.
    """

    @property
    def consolidate_every(self) -> int | None:
        """Requests between consolidations (None: the term never consolidates)."""
        ...

    @property
    def consolidation_examples(self) -> int:
        """How many of the most recent examples :meth:`consolidate` reads (0: none, it is
        passed None); the trainer keeps a window of the largest such need."""
        ...

    @property
    def needs_candidates(self) -> bool:
        """Whether :meth:`penalty` reads the fresh micro-batch's full candidate lists
        (``batch.candidates``); the trainer then keeps them with the pending examples."""
        ...

    def penalty(
        self, model: Recommender, scope: ParameterScope, batch: TrainingBatch, memory: Any
    ) -> Tensor:
        """The term's value on ``batch`` (a scalar tensor, differentiable in the scope)."""
        ...

    def consolidate(
        self,
        model: Recommender,
        scope: ParameterScope,
        recent: SlateExamples | None,
        loss_fn: LossFunction,
        memory: Any,
        device: torch.device | str,
    ) -> Any:
        """The new memory after consolidating on ``recent`` examples (the last
        :attr:`consolidation_examples` or fewer; None if nothing was seen or none asked)."""
        ...

    def grow(self, model: Recommender, memory: Any) -> Any:
        """The memory for ``model`` after its id tables grew (it may be ``memory``, updated in
        place: the trainer owns it)."""
        ...

    def memory_state_dict(self, memory: Any) -> Any:
        """``memory`` as tensors and plain containers (for a checkpoint that ``torch.load``
        reads with ``weights_only=True``); references are fine, the agent deep-copies."""
        ...

    def load_memory_state_dict(self, model: Recommender, state: Any) -> Any:
        """The memory that :meth:`memory_state_dict` described (``model``, already restored,
        is the template of anything that must be rebuilt)."""
        ...


class Memoryless:
    """The memory handling of a term that keeps none: it never consolidates, needs neither
    candidate lists nor recent examples, and its memory is always None."""

    consolidate_every: ClassVar[int | None] = None
    consolidation_examples: ClassVar[int] = 0
    needs_candidates: ClassVar[bool] = False

    def consolidate(
        self,
        model: Recommender,
        scope: ParameterScope,
        recent: SlateExamples | None,
        loss_fn: LossFunction,
        memory: None,
        device: torch.device | str,
    ) -> None:
        return None

    def grow(self, model: Recommender, memory: None) -> None:
        return None

    def memory_state_dict(self, memory: None) -> None:
        return None

    def load_memory_state_dict(self, model: Recommender, state: None) -> None:
        return None


def penalised_values(
    scope: ParameterScope, batch: TrainingBatch
) -> Iterator[tuple[str, Tensor, Tensor | None]]:
    """``(name, values, rows)`` for each penalised parameter: the whole tensor (rows None), or
    for a sparse table the batch's rows, read with a sparse gradient."""
    batch_rows = batch.rows or {}
    for name, param in scope.named():
        if name not in scope.penalised:
            continue
        if name in scope.sparse:
            rows = batch_rows[name]
            yield name, nn.functional.embedding(rows, param, sparse=True), rows
        else:
            yield name, param, None


@dataclass(frozen=True)
class WeightPenalty(Memoryless):
    """``l1 * sum |w| + l2 * sum w^2`` over the update's parameters (lazy on id tables)."""

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", check_real("l1", self.l1, low=0.0))
        object.__setattr__(self, "l2", check_real("l2", self.l2, low=0.0))

    def penalty(
        self, model: Recommender, scope: ParameterScope, batch: TrainingBatch, memory: None
    ) -> Tensor:
        total = torch.zeros((), device=batch.reward.device)
        for _, values, _ in penalised_values(scope, batch):
            if self.l1:
                total = total + self.l1 * values.abs().sum()
            if self.l2:
                total = total + self.l2 * (values * values).sum()
        return total

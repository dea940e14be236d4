"""Learning without forgetting: distil the previous model's rankings into the current one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from driftrec.agents.examples import SlateExamples
from driftrec.agents.losses import TrainingBatch
from driftrec.agents.models.base import Recommender, frozen_copy
from driftrec.agents.models.tables import match_rows
from driftrec.agents.scopes import ParameterScope
from driftrec.agents.terms import LossFunction
from driftrec.validation import MAX_WEIGHT, check_real, check_time

__all__ = ["MAX_TEMPERATURE", "MIN_TEMPERATURE", "Distillation"]

MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 1e3
"""Distillation temperatures run from 1e-3 to 1e3 (Hinton et al. use 1 to 20): at 1e-3 a score
of 1e5 becomes 1e8, still far inside float32. Far outside the range the scaled scores or
``T^2`` overflow (``temperature=1e-300`` made the term NaN, ``1e308`` raised OverflowError)."""


@dataclass(frozen=True)
class Distillation:
    """LwF-style distillation (Li & Hoiem 2017, "Learning without forgetting", TPAMI; knowledge
    distillation, Hinton et al. 2015).

    The teacher is a frozen copy of the model, refreshed every ``every`` requests. On the fresh
    micro-batch's full candidate lists (the new data, as in LwF), the term is
    ``strength * T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the candidates:
    the student keeps the teacher's ranking of the candidates while it fits the new clicks.
    Without candidate lists in the batch (pretraining), it uses the shown items.

    When the model's id tables grow, the teacher's grow with them (``match_rows``): it scores
    an id it never saw from that row's initial value, as it would have in a table that was large
    from the start.

    Args:
        strength: weight of the term, in [0, 1e6] (``MAX_WEIGHT``).
        temperature: T, in [1e-3, 1e3].
        every: requests between teacher refreshes, in [1, 10**15].
    """

    strength: float = 1.0
    temperature: float = 2.0
    every: int = 5_000

    def __post_init__(self) -> None:
        strength = check_real("strength", self.strength, low=0.0, high=MAX_WEIGHT)
        object.__setattr__(self, "strength", strength)
        temperature = check_real(
            "temperature", self.temperature, low=MIN_TEMPERATURE, high=MAX_TEMPERATURE
        )
        object.__setattr__(self, "temperature", temperature)
        object.__setattr__(self, "every", check_time("every", self.every))

    needs_candidates: ClassVar[bool] = True
    """The trainer attaches the fresh micro-batch's candidate lists to every batch."""
    consolidation_examples: ClassVar[int] = 0
    """The teacher is a copy of the model: consolidating reads no data."""

    @property
    def consolidate_every(self) -> int:
        return self.every

    def consolidation_cost(self, examples: int) -> tuple[int, int]:
        """(backward passes, examples passed) of one consolidation: none, it copies the model."""
        return 0, 0

    def penalty(
        self,
        model: Recommender,
        scope: ParameterScope,
        batch: TrainingBatch,
        memory: Recommender | None,
    ) -> Tensor:
        if memory is None:
            return torch.zeros((), device=batch.reward.device)
        if batch.candidates is not None:
            users, items = batch.candidates
            mask = None
        else:
            users, items, mask = batch.users, batch.items, batch.shown
        with torch.no_grad():
            teacher = memory(users, items) / self.temperature
        student = model(users, items) / self.temperature
        if mask is not None:
            teacher = teacher.masked_fill(~mask, -1e9)
            student = student.masked_fill(~mask, -1e9)
        kl = nn.functional.kl_div(
            nn.functional.log_softmax(student, dim=1),
            nn.functional.log_softmax(teacher, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        return self.strength * self.temperature**2 * kl

    def consolidate(
        self,
        model: Recommender,
        scope: ParameterScope,
        recent: SlateExamples | None,
        loss_fn: LossFunction,
        memory: Recommender | None,
        device: torch.device | str,
    ) -> Recommender:
        """A frozen copy of the model (the data and the previous teacher are not needed)."""
        return _frozen_teacher(model)

    def grow(self, model: Recommender, memory: Recommender | None) -> Recommender | None:
        if memory is not None:
            match_rows(memory, model)
        return memory

    def memory_state_dict(self, memory: Recommender | None) -> dict[str, Any] | None:
        """The teacher's ``state_dict`` (None before the first consolidation)."""
        return None if memory is None else memory.state_dict()

    def load_memory_state_dict(
        self, model: Recommender, state: dict[str, Tensor] | None
    ) -> Recommender | None:
        """A frozen copy of ``model`` holding the teacher's saved values."""
        return None if state is None else _frozen_teacher(model, state)


def _frozen_teacher(model: Recommender, state: dict[str, Tensor] | None = None) -> Recommender:
    """A frozen copy of ``model`` in eval mode (holding ``state`` if given)."""
    teacher = frozen_copy(model, state)
    teacher.eval()
    return teacher

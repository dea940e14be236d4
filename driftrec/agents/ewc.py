"""Online elastic weight consolidation: a quadratic pull toward past parameters, weighted by
how much each parameter mattered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from driftrec.agents.examples import SlateExamples
from driftrec.agents.losses import TrainingBatch, training_batch
from driftrec.agents.models.base import Recommender
from driftrec.agents.scopes import ParameterScope
from driftrec.agents.terms import LossFunction, penalised_values
from driftrec.validation import (
    MAX_SIZE,
    MAX_WEIGHT,
    check_fraction,
    check_integer,
    check_real,
    check_time,
)

Memory = dict[str, dict[str, Tensor]]
"""EWC's memory: ``{"anchor": {name: theta*}, "fisher": {name: F}}``."""

__all__ = ["EWC"]


@dataclass(frozen=True)
class EWC:
    """Online EWC (Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural
    networks", PNAS; the online form with one running Fisher: Schwarz et al. 2018, "Progress &
    compress", ICML).

    Penalty ``strength / 2 * sum_i F_i (theta_i - theta*_i)^2``. Every ``every`` requests the
    term consolidates: ``theta*`` becomes the current parameters and ``F <- decay * F + F_new``,
    where ``F_new`` is the diagonal empirical Fisher on the last ``fisher_samples`` requests
    (squared mini-batch gradients of the click loss, times the mini-batch size). A stream has
    no task boundaries, so consolidation is periodic.

    When an id table grows, its new rows get Fisher 0 and anchor = their current (initial)
    value: no pull on rows that did not exist at the last consolidation, exactly as for rows of
    a large table that no consolidation had seen.

    Cost: the estimate is one backward pass per mini-batch of ``batch_size`` over the
    ``fisher_samples`` requests kept for it (:meth:`consolidation_cost`).

    Args:
        strength: lambda, in [0, 1e6] (``MAX_WEIGHT``).
        decay: gamma, how much of the old Fisher is kept at each consolidation, in [0, 1].
        every: requests between consolidations, in [1, 10**15].
        fisher_samples: requests the Fisher is estimated on, in [1, 10**8] (``MAX_SIZE``).
        batch_size: requests per mini-batch of the estimate, in [1, 10**8].
    """

    strength: float = 10.0
    decay: float = 0.9
    every: int = 5_000
    fisher_samples: int = 2_048
    batch_size: int = 256

    def __post_init__(self) -> None:
        strength = check_real("strength", self.strength, low=0.0, high=MAX_WEIGHT)
        object.__setattr__(self, "strength", strength)
        decay = check_fraction("decay", self.decay, closed_below=True)
        object.__setattr__(self, "decay", decay)
        object.__setattr__(self, "every", check_time("every", self.every))
        for name in ("fisher_samples", "batch_size"):
            value = check_integer(name, getattr(self, name), minimum=1, maximum=MAX_SIZE)
            object.__setattr__(self, name, value)

    needs_candidates: ClassVar[bool] = False

    @property
    def consolidate_every(self) -> int:
        return self.every

    @property
    def consolidation_examples(self) -> int:
        """The Fisher is estimated on the last ``fisher_samples`` requests."""
        return self.fisher_samples

    def consolidation_cost(self, examples: int) -> tuple[int, int]:
        """(backward passes, examples passed) of one consolidation on ``examples`` recent
        requests (at most ``fisher_samples`` are read): the Fisher estimate's work, which a
        cost report counts with the gradient steps and the examples trained on."""
        n = min(int(examples), self.fisher_samples)
        return -(-n // self.batch_size), n

    def penalty(
        self,
        model: Recommender,
        scope: ParameterScope,
        batch: TrainingBatch,
        memory: Memory | None,
    ) -> Tensor:
        total = torch.zeros((), device=batch.reward.device)
        if memory is None:
            return total
        anchor, fisher = memory["anchor"], memory["fisher"]
        for name, values, rows in penalised_values(scope, batch):
            if name not in fisher:
                continue
            f, a = fisher[name], anchor[name]
            if rows is not None:
                f, a = f[rows], a[rows]
            total = total + (f * (values - a) ** 2).sum()
        return 0.5 * self.strength * total

    def consolidate(
        self,
        model: Recommender,
        scope: ParameterScope,
        recent: SlateExamples | None,
        loss_fn: LossFunction,
        memory: Memory | None,
        device: torch.device | str,
    ) -> Memory | None:
        if recent is None:
            return memory
        recent = recent.take(slice(max(0, len(recent) - self.fisher_samples), None))
        params = [p for n, p in scope.named() if n in scope.penalised]
        names = [n for n in scope.names if n in scope.penalised]
        fisher = {n: torch.zeros_like(p) for n, p in zip(names, params, strict=True)}
        batches = 0
        for start in range(0, len(recent), self.batch_size):
            part = recent.take(slice(start, start + self.batch_size))
            batch = training_batch(part, device)
            grads = torch.autograd.grad(loss_fn(batch), params, allow_unused=True)
            for name, grad in zip(names, grads, strict=True):
                if grad is None:
                    continue
                if grad.is_sparse:
                    grad = grad.coalesce()
                    fisher[name].index_add_(0, grad.indices()[0], grad.values() ** 2 * len(part))
                else:
                    fisher[name] += grad**2 * len(part)
            batches += 1
        for name in names:
            fisher[name] /= max(batches, 1)
            if memory is not None and name in memory["fisher"]:
                fisher[name] += self.decay * memory["fisher"][name]
        anchor = {n: p.detach().clone() for n, p in zip(names, params, strict=True)}
        return {"anchor": anchor, "fisher": fisher}

    def grow(self, model: Recommender, memory: Memory | None) -> Memory | None:
        if memory is None:
            return None
        params = dict(model.named_parameters())
        anchor, fisher = dict(memory["anchor"]), dict(memory["fisher"])
        for name, f in memory["fisher"].items():
            param = params[name].detach()
            if f.dim() == 0 or f.shape[0] >= param.shape[0]:
                continue
            old = f.shape[0]
            fisher[name] = torch.cat([f, f.new_zeros((param.shape[0] - old, *f.shape[1:]))])
            anchor[name] = torch.cat([anchor[name], param[old:]])
        return {"anchor": anchor, "fisher": fisher}

    def memory_state_dict(self, memory: Memory | None) -> Memory | None:
        return memory  # None, or dicts of tensors: plain already

    def load_memory_state_dict(self, model: Recommender, state: Memory | None) -> Memory | None:
        return state

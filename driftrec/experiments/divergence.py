"""What a cell's non-finite scores say and what to check (the cell's warning and the report's):
scores not finite from the start (at t=0, before any update) are the model's initial parameters
or the agent's scores method; a model that diverged as it learned has an unstable update rule,
and an agent with a learning rate is told to lower it."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftrec.experiments.spec import Cell

__all__ = ["divergence_cause", "has_lr", "warn_diverged"]


def warn_diverged(cell: Cell, clock: int, pretrained: bool) -> None:
    from_start = clock == 0 and not pretrained
    if from_start:
        when = "from the start, before it learned anything"
    elif clock == 0:
        when = "during the warm start"
    else:
        when = "first seen at this probe evaluation"
    warnings.warn(
        f"cell {cell.id}: agent {cell.agent.key}'s scores became non-finite at t={clock:,} "
        f"({when}): {divergence_cause(from_start, has_lr(cell.agent.name))}. The cell goes on "
        "(its ranking metrics are NaN from then on, its rewards those of the slates it serves) "
        "and the report lists it",
        RuntimeWarning,
        stacklevel=2,
    )


def has_lr(agent: str) -> bool:
    """Whether agent ``agent`` (a name of ``AGENTS``) has a learning rate setting ``lr``
    (False for a name not registered in this process)."""
    from driftrec.agents import AGENTS

    try:
        return "lr" in AGENTS.parameters(agent)
    except (KeyError, TypeError, ValueError):
        return False


def divergence_cause(from_start: bool, lr: bool) -> str:
    """What non-finite scores say about an agent and what to check: ``from_start``, at t=0
    before any update (no warm start, or an agent that does not pretrain), or after it learned
    (``lr``: the agent has a learning rate setting)."""
    if from_start:
        return (
            "its scores were not finite from the start, before it learned anything, so no "
            "update rule is to blame; check its model's initial parameters and its scores "
            "method"
        )
    if lr:
        return (
            "its model diverged: its update rule is unstable at these settings (most often, a "
            "learning rate too high); lower its learning rate (lr) for a stable run"
        )
    return (
        "its model diverged as it learned: its update rule is unstable at these settings; "
        "check how it updates (its step sizes and what it learns from)"
    )

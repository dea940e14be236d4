"""What the trainer keeps for each update rule of a strategy, in one record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftrec.agents.data import Store
from driftrec.agents.models.base import Recommender
from driftrec.agents.optimisers import SplitOptimiser
from driftrec.agents.scopes import ParameterScope
from driftrec.agents.strategies import UpdateRule
from driftrec.agents.terms import LossTerm

__all__ = ["RuleState"]


@dataclass
class RuleState:
    """Everything the trainer keeps for one update rule.

    Attributes:
        rule: the rule (frozen configuration).
        scope: the parameters it trains.
        terms: its loss terms, then the learner's L1/L2 penalty (if any).
        optimiser: the optimiser over ``scope``.
        store: the store its data source reads.
        trigger_state: its trigger's state (a drift detector; None for stateless triggers).
        memories: one memory per term (anchors, a teacher; None before consolidating).
        updates: how many times the rule has trained.
    """

    rule: UpdateRule
    scope: ParameterScope
    terms: tuple[LossTerm, ...]
    optimiser: SplitOptimiser
    store: Store
    trigger_state: Any
    memories: list[Any]
    updates: int = 0

    @property
    def needs_candidates(self) -> bool:
        """Whether a term reads the full candidate lists of the fresh micro-batch."""
        return any(term.needs_candidates for term in self.terms)

    @property
    def parameters_in_scope(self) -> int:
        return sum(p.numel() for p in self.scope.params)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain containers (some are references; the agent deep-copies)."""
        return {
            "store": self.store.state_dict(),
            "trigger": self.rule.trigger.state_dict(self.trigger_state),
            "optimiser": self.optimiser.state_dict(),
            "memories": [
                term.memory_state_dict(memory)
                for term, memory in zip(self.terms, self.memories, strict=True)
            ],
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any], model: Recommender) -> None:
        """Restore a :meth:`state_dict` (``model``, already restored, rebuilds the memories)."""
        self.store.load_state_dict(state["store"])
        self.trigger_state = self.rule.trigger.load_state_dict(state["trigger"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.memories = [
            term.load_memory_state_dict(model, saved)
            for term, saved in zip(self.terms, state["memories"], strict=True)
        ]
        self.updates = state["updates"]

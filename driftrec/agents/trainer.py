"""The trainer: runs a strategy's update rules on a model and owns every piece of learning state.

Strategies, data sources, triggers, loss terms and merges are frozen configuration; everything
that changes (the model's parameters, the stores, detectors, optimisers, anchors, teachers,
ensemble members, the random streams) lives here, and only the trainer changes it. What a
component needs from the trainer it declares (a merge's ``needs_previous`` and ``members``, a
loss term's ``needs_candidates`` and ``consolidation_examples``, a trigger's ``signal``): the
trainer reads the declarations and never inspects a component's type, so a new component
works without a change here.

Flow per observed batch: examples wait in a pending list until a micro-batch is full; then each
rule's trigger is checked in order and, if it fires, the rule trains; then the micro-batch is
added to the rules' stores and to the recent window that loss terms consolidate on.

Before a batch is used, :meth:`Trainer.ensure_rows` grows the model's id tables to hold its ids,
and with them every piece of per-row state: optimiser moments, loss-term memories (EWC anchors,
distillation teachers) and ensemble members. Growth never happens inside a gradient step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from driftrec.agents.buffers import RecentWindow
from driftrec.agents.examples import SlateExamples, as_tensor
from driftrec.agents.losses import (
    TrainingBatch,
    candidates_of,
    click_loss,
    slot_logits,
    training_batch,
)
from driftrec.agents.models.base import ItemBatch, Recommender, UserBatch, frozen_copy
from driftrec.agents.models.tables import (
    check_model_state,
    grow_tables,
    id_tables_of,
    match_rows,
    resize_to_state,
)
from driftrec.agents.optimisers import SplitOptimiser
from driftrec.agents.protocol import Observation
from driftrec.agents.rule_state import RuleState
from driftrec.agents.scopes import ParameterScope, resolve_scope
from driftrec.agents.strategies import LearnerConfig, Strategy, UpdateRule
from driftrec.agents.terms import LossTerm, WeightPenalty

__all__ = ["COUNTERS", "Trainer"]

COUNTERS = ("gradient_steps", "examples_trained", "optimiser_steps", "parameters_updated")
"""The trainer's learning counters (:meth:`Trainer.cost`), saved with its state."""


def _concat_obs(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return dict(parts[0])
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _slice_obs(obs: Observation, part: slice) -> dict[str, np.ndarray]:
    return {key: value[part] for key, value in obs.items()}


class Trainer:
    """Applies ``strategy`` to ``model``.

    Args:
        model: the recommender (a ``driftrec.agents.models.Recommender``).
        strategy: the update rules.
        learner: loss, optimiser and batch sizes.
        rng: the trainer's numpy stream (shuffling, replay sampling).
        generator: the torch stream that re-initialises the model (from-scratch rules).
        device: where the model lives.
    """

    def __init__(
        self,
        model: Recommender,
        strategy: Strategy,
        learner: LearnerConfig,
        rng: np.random.Generator,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model
        self.strategy = strategy
        self.learner = learner
        self.rng = rng
        self.generator = generator
        self.device = device
        penalty = (WeightPenalty(learner.l1, learner.l2),) if learner.l1 or learner.l2 else ()
        for rule in strategy.rules:
            # A component that the micro-batch would silently override refuses it (a trigger
            # every 10 requests checked once per 256, a window of 10 that trains on 256).
            for component in (rule.trigger, rule.data):
                check = getattr(component, "check_micro_batch", None)
                if check is not None:
                    check(learner.micro_batch)
        self.rule_states = [self._rule_state(rule, penalty) for rule in strategy.rules]
        self.members: list[Recommender] = []
        need = max(
            (
                term.consolidation_examples
                for state in self.rule_states
                for term in state.terms
                if term.consolidate_every
            ),
            default=0,
        )
        # Recent examples for loss terms to consolidate on (kept only if a term needs them).
        self.recent = RecentWindow(need) if need else None
        # The streams the triggers watch, each computed once per micro-batch.
        self.signals = sorted(
            {s.rule.trigger.signal for s in self.rule_states if s.rule.trigger.signal is not None}
        )
        self.keeps_candidates = any(state.needs_candidates for state in self.rule_states)
        self.seen = 0
        self.pending: list[tuple[SlateExamples, dict[str, np.ndarray]]] = []
        self.pending_rows = 0
        self.gradient_steps = self.optimiser_steps = self.parameters_updated = 0
        self.examples_trained = 0
        self.id_tables = list(id_tables_of(model).values())
        self._synced_rows = self._table_rows()

    def _rule_state(self, rule: UpdateRule, penalty: tuple[LossTerm, ...]) -> RuleState:
        scope = resolve_scope(self.model, rule.scope, rule.freeze)
        terms = (*rule.terms, *penalty)
        return RuleState(
            rule=rule,
            scope=scope,
            terms=terms,
            optimiser=self._optimiser(scope, rule.lr),
            store=rule.data.make_store(),
            trigger_state=rule.trigger.init_state(),
            memories=[None] * len(terms),
        )

    def _optimiser(self, scope: ParameterScope, lr: float | None = None) -> SplitOptimiser:
        lr = self.learner.lr if lr is None else lr
        return SplitOptimiser(scope.named(), scope.sparse, self.learner.optimiser, lr)

    def cost(self) -> dict[str, Any]:
        """Learning cost so far.

        ``gradient_steps`` and ``examples_trained`` (both including loss terms' consolidation
        passes, e.g. EWC's Fisher estimate); ``optimiser_steps`` (the steps that update the
        model) and ``parameters_updated`` (the scalar parameters they wrote, in all: see
        :func:`~driftrec.agents.optimisers.written_parameters`); ``updates`` (per rule);
        ``parameters_in_scope``:
        the distinct scalar parameters that some rule trains, each counted once however many
        rules share it (a hybrid's two rules over the whole model count it once), id tables at
        their current size. It bounds the parameters one step updates: a step on sparse id
        tables changes only the rows of the batch's ids.
        ``stored_examples``: the requests held in the rules' stores and in the recent window
        kept for loss terms to consolidate on (EWC's Fisher samples). ``drift_alarms``: the
        alarms of the rules' drift detectors (``DriftAlarm``; each starts a hold of learning)."""
        distinct = {id(p): p.numel() for state in self.rule_states for p in state.scope.params}
        triggers = [state.trigger_state for state in self.rule_states]
        return {
            "gradient_steps": self.gradient_steps,
            "examples_trained": self.examples_trained,
            "optimiser_steps": self.optimiser_steps,
            "parameters_updated": self.parameters_updated,
            "updates": [state.updates for state in self.rule_states],
            "parameters_in_scope": sum(distinct.values()),
            "drift_alarms": sum(t.get("alarms", 0) for t in triggers if isinstance(t, dict)),
            "stored_examples": sum(len(state.store) for state in self.rule_states)
            + (0 if self.recent is None else len(self.recent)),
        }

    # ------------------------------------------------------------------ growing

    def _table_rows(self) -> tuple[int, ...]:
        return tuple(table.num_embeddings for table in self.id_tables)

    def ensure_rows(self, users: int, items: int) -> None:
        """Grow the model's id tables to hold ``users`` user rows and ``items`` item rows (the
        largest ids of a batch, + 1), and every piece of per-row state with them. Cheap when
        nothing grows: a comparison per table."""
        grow_tables(self.id_tables, users, items)
        if self._table_rows() != self._synced_rows:
            self._follow_growth()

    def _follow_growth(self) -> None:
        """Bring per-row state to the tables' new sizes: zero optimiser moments and EWC Fisher
        for the new rows, anchors at their initial values, teachers and ensemble members grown
        (their new rows hold their own initial values: those ids are unseen for them)."""
        for state in self.rule_states:
            state.optimiser.grow()
            state.memories = [
                term.grow(self.model, memory)
                for term, memory in zip(state.terms, state.memories, strict=True)
            ]
        for member in self.members:
            match_rows(member, self.model)
        self._synced_rows = self._table_rows()

    # ------------------------------------------------------------------ observing

    def observe(self, examples: SlateExamples, obs: Observation) -> None:
        """Queue a batch of served requests; run the rules for every full micro-batch.

        ``obs`` (the full candidate lists) is kept, as a copy, only if a loss term needs it."""
        kept = {key: np.array(value) for key, value in obs.items()} if self.keeps_candidates else {}
        self.pending.append((examples, kept))
        self.pending_rows += len(examples)
        size = self.learner.micro_batch
        if self.pending_rows < size:
            return
        if len(self.pending) == 1:
            rows, batch_obs = self.pending[0]
        else:
            rows = SlateExamples.concat([p[0] for p in self.pending])
            batch_obs = _concat_obs([p[1] for p in self.pending])
        full = (self.pending_rows // size) * size
        if full == len(rows) == size:
            self._step(rows, batch_obs)
        else:
            for start in range(0, full, size):
                part = slice(start, start + size)
                self._step(rows.take(part), _slice_obs(batch_obs, part))
        if full < len(rows):
            rest = slice(full, None)
            self.pending = [(rows.take(rest), _slice_obs(batch_obs, rest))]
        else:
            self.pending = []
        self.pending_rows = len(rows) - full

    def _step(self, fresh: SlateExamples, fresh_obs: Observation) -> None:
        before, after = self.seen, self.seen + len(fresh)
        values = {signal: self._signal(signal, fresh) for signal in self.signals}
        for state in self.rule_states:
            trigger = state.rule.trigger
            signal = trigger.signal
            value = values[signal] if signal is not None else None
            if trigger.fires(state.trigger_state, before, after, value):
                self._update(state, fresh, fresh_obs)
            state.store.add(fresh, self.rng)
        self.seen = after
        if self.recent is not None:
            self.recent.add(fresh)
        for state in self.rule_states:
            for j, term in enumerate(state.terms):
                every = term.consolidate_every
                if every and before // every < after // every:
                    state.memories[j] = self._consolidate(state, term, state.memories[j])

    def _signal(self, signal: str, fresh: SlateExamples) -> np.ndarray:
        """(n,) per-request values of a trigger's stream, in [0, 1] for clicks: the observed
        reward, or the prequential surprise 1 - exp(-loss) of the model (before it learns from
        the micro-batch); ADWIN's bound assumes values in [0, 1]."""
        if signal == "reward":
            return fresh.reward.astype(np.float64)
        with torch.no_grad():
            batch = training_batch(fresh, self.device)
            loss = click_loss(
                self.learner.loss, slot_logits(self.model, batch), batch, per_request=True
            )
            return (1.0 - torch.exp(-loss)).cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ updating

    def _update(self, state: RuleState, fresh: SlateExamples, fresh_obs: Observation) -> None:
        rule, scope = state.rule, state.scope
        data = rule.data.training_data(state.store, fresh, self.rng)
        if rule.from_scratch:
            self.model.reset_parameters(self.generator)
            state.optimiser = self._optimiser(scope, rule.lr)
        merge = rule.merge
        old = {n: p.detach().clone() for n, p in scope.named()} if merge.needs_previous else None
        candidates = candidates_of(fresh_obs, self.device) if state.needs_candidates else None
        self._fit(
            data, rule.epochs, scope, state.optimiser, state.terms, state.memories, candidates
        )
        if old is not None:
            new = {n: p.detach() for n, p in scope.named()}
            merged = merge.merge(old, new)
            with torch.no_grad():
                for name, param in scope.named():
                    param.copy_(merged[name])
        if merge.members > 1:
            self.members.append(frozen_copy(self.model))
            del self.members[: max(0, len(self.members) - (merge.members - 1))]
        state.updates += 1

    def _fit(
        self,
        data: SlateExamples,
        epochs: int,
        scope: ParameterScope,
        optimiser: SplitOptimiser,
        terms: tuple[LossTerm, ...],
        memories: list[Any],
        candidates: tuple[UserBatch, ItemBatch] | None = None,
    ) -> None:
        n, size = len(data), self.learner.batch_size
        for _ in range(epochs):
            if n <= size:
                self._gradient_step(data, scope, optimiser, terms, memories, candidates)
                continue
            order = self.rng.permutation(n)
            for start in range(0, n, size):
                part = data.take(order[start : start + size])
                self._gradient_step(part, scope, optimiser, terms, memories, candidates)

    def _gradient_step(
        self,
        examples: SlateExamples,
        scope: ParameterScope,
        optimiser: SplitOptimiser,
        terms: tuple[LossTerm, ...],
        memories: list[Any],
        candidates: tuple[UserBatch, ItemBatch] | None,
    ) -> None:
        batch = training_batch(examples, self.device, candidates)
        if scope.sparse and terms:
            batch.rows = self._rows(batch, scope)
        loss = self._loss(batch)
        for term, memory in zip(terms, memories, strict=True):
            loss = loss + term.penalty(self.model, scope, batch, memory)
        # Gradients of the scope only: out-of-scope parameters neither get nor pile up grads.
        grads = torch.autograd.grad(loss, scope.params, allow_unused=True)
        for param, grad in zip(scope.params, grads, strict=True):
            param.grad = grad
        self.parameters_updated += optimiser.step()
        optimiser.zero_grad()
        self.gradient_steps += 1
        self.optimiser_steps += 1
        self.examples_trained += len(examples)

    def _loss(self, batch: TrainingBatch) -> torch.Tensor:
        return click_loss(self.learner.loss, slot_logits(self.model, batch), batch)

    def _rows(self, batch: TrainingBatch, scope: ParameterScope) -> dict[str, torch.Tensor]:
        """The distinct rows of each sparse table in scope that the batch reads (padding out;
        the tables already hold every id of the batch)."""
        ids = self.model.table_ids(batch.users, batch.items)
        rows = {}
        for name in scope.sparse:
            used = ids[name]
            rows[name] = torch.unique(used[used >= 0])
        return rows

    def _consolidate(self, state: RuleState, term: LossTerm, memory: Any) -> Any:
        recent = None
        if self.recent is not None and term.consolidation_examples:
            recent = self.recent.recent()
        self._count_consolidation(term, recent)
        return term.consolidate(self.model, state.scope, recent, self._loss, memory, self.device)

    def _count_consolidation(self, term: LossTerm, recent: SlateExamples | None) -> None:
        """Count the work a term declares for a consolidation (``consolidation_cost``)."""
        cost = getattr(term, "consolidation_cost", None)
        if cost is not None:
            passes, examples = cost(0 if recent is None else len(recent))
            self.gradient_steps += passes
            self.examples_trained += examples

    # ------------------------------------------------------------------ pretraining

    def pretrain(self, examples: SlateExamples, epochs: int | None = None) -> None:
        """Train on logged examples before the stream (the strategy's pretraining scope and
        epochs), then consolidate every loss term on them (EWC anchors, distillation teacher)."""
        epochs = self.strategy.pretrain_epochs if epochs is None else epochs
        scope = resolve_scope(self.model, self.strategy.pretrain_scope)
        self._fit(examples, epochs, scope, self._optimiser(scope), (), [])
        for state in self.rule_states:
            for j, term in enumerate(state.terms):
                if term.consolidate_every:
                    keep = term.consolidation_examples
                    tail = examples.take(slice(max(0, len(examples) - keep), None))
                    recent = tail if keep else None
                    self._count_consolidation(term, recent)
                    state.memories[j] = term.consolidate(
                        self.model, state.scope, recent, self._loss, state.memories[j], self.device
                    )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """All learning state, as tensors and plain containers (some are references; the agent
        deep-copies)."""
        return {
            "model": self.model.state_dict(),
            "seen": self.seen,
            "pending": [
                {
                    "examples": examples.state_dict(),
                    "obs": {k: as_tensor(v) for k, v in obs.items()},
                }
                for examples, obs in self.pending
            ],
            "pending_rows": self.pending_rows,
            "rules": [state.state_dict() for state in self.rule_states],
            "members": [m.state_dict() for m in self.members],
            "recent": None if self.recent is None else self.recent.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            **{key: getattr(self, key) for key in COUNTERS},
        }

    def check_state(self, state: dict[str, Any]) -> None:
        """Raise ValueError, saying what differs, if ``state`` cannot be this trainer's: the
        model's tensors (names, and shapes but for the id tables' rows), the number of rules
        and of optimiser parts. Mutates nothing."""
        check_model_state(self.model.state_dict(), state["model"], id_tables_of(self.model))
        if len(state["rules"]) != len(self.rule_states):
            raise ValueError(
                f"the state has {len(state['rules'])} update rules, this strategy "
                f"{len(self.rule_states)}"
            )
        for i, (rule, saved) in enumerate(zip(self.rule_states, state["rules"], strict=True)):
            parts, saved_parts = len(rule.optimiser.state_dict()), len(saved["optimiser"])
            if saved_parts != parts:
                raise ValueError(
                    f"rule {i}'s saved optimiser has {saved_parts} part(s), this one "
                    f"({self.learner.optimiser}) {parts}: build the agent with the same optimiser"
                )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (check it first with :meth:`check_state`; the agent
        rolls back a load that fails half-way)."""
        resize_to_state(self.model, state["model"])  # a fresh model's tables are still small
        self.model.load_state_dict(state["model"])
        self.seen = state["seen"]
        self.pending = [
            (
                SlateExamples.from_state_dict(p["examples"]),
                {k: v.numpy().copy() for k, v in p["obs"].items()},
            )
            for p in state["pending"]
        ]
        self.pending_rows = state["pending_rows"]
        for rule_state, saved in zip(self.rule_states, state["rules"], strict=True):
            # A fresh optimiser over the (resized) parameters, then its saved moments.
            rule_state.optimiser = self._optimiser(rule_state.scope, rule_state.rule.lr)
            rule_state.load_state_dict(saved, self.model)
        self.members = [frozen_copy(self.model, s) for s in state["members"]]
        if self.recent is not None:
            self.recent.load_state_dict(state["recent"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        for key in COUNTERS:  # states saved before a counter existed load with 0
            setattr(self, key, state.get(key, 0))
        self._synced_rows = self._table_rows()

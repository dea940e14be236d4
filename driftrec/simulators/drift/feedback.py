"""Feedback drift: preferences pulled by what users consume (a feedback loop), and corrupted
observations of clicks (noise, bots) that leave the truth unchanged."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift.base import (
    DriftEvent,
    DriftProcess,
    Memory,
    periodic_indices,
    preference_event,
    set_param,
    time_param,
)
from driftrec.simulators.population import NEVER, ItemCatalogue, UserPopulation, unit_rows
from driftrec.validation import check_fraction, check_real

__all__ = ["ClickNoise", "FeedbackLoop"]


@dataclass(frozen=True)
class FeedbackLoop(DriftProcess):
    """Preferences move toward what is consumed: on each click,
    theta_u <- normalise(theta_u + strength * phi_i).

    Every ``report_every`` requests an event reports how far present users' preferences moved
    since the previous report: ``similarity`` is their mean cosine similarity (1: nothing
    moved), ``magnitude`` is ``1 - similarity``.
    """

    strength: float = 0.05
    report_every: int = 20_000
    kind: ClassVar[str] = "feedback_loop"
    touches: ClassVar[frozenset[str]] = frozenset({"users.theta"})

    def __post_init__(self) -> None:
        # Beyond about 100 each click replaces the user's taste by the item's vector; far beyond,
        # the float32 update overflows.
        set_param(self, "strength", check_real("strength", self.strength, low=0.0, high=1e3))
        time_param(self, "report_every")

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
        memory["reference"] = users.theta.copy()

    def on_consumption(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        moved = users.theta[user_ids] + self.strength * items.phi[item_ids]
        users.theta[user_ids] = unit_rows(moved).astype(np.float32)

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        events = []
        for j in periodic_indices(t0, t1, self.report_every, self.report_every):
            t = self.report_every * (j + 1)
            present = (users.arrival <= t) & users.alive
            cos = (users.theta[present] * memory["reference"][present]).sum(axis=1)
            similarity = float(np.clip(cos.mean(), -1.0, 1.0)) if len(cos) else 1.0
            events.append(preference_event(t, self.kind, similarity))
            memory["reference"] = users.theta.copy()
        return events

    def no_op(self, config: WorldConfig) -> DriftProcess:
        return replace(self, strength=0.0)


@dataclass(frozen=True)
class ClickNoise(DriftProcess):
    """Between ``start`` and ``end``, the clicks the agent observes are corrupted: with
    probability ``flip_prob`` a click is dropped or a non-click becomes a click on a random
    shown slot; with probability ``bot_fraction`` the request is answered by a bot that clicks a
    uniformly random shown slot. The true clicks, and so expected rewards, are unchanged. Event
    magnitude: ``flip_prob + bot_fraction`` at ``start``, 0 at ``end``."""

    start: int
    end: int = NEVER
    flip_prob: float = 0.1
    bot_fraction: float = 0.1
    kind: ClassVar[str] = "click_noise"

    def __post_init__(self) -> None:
        time_param(self, "start")
        time_param(self, "end")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        for name in ("flip_prob", "bot_fraction"):
            value = check_fraction(name, getattr(self, name), closed_below=True)
            set_param(self, name, value)

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        events = []
        if t0 < self.start <= t1:
            events.append(DriftEvent(self.start, self.kind, self.flip_prob + self.bot_fraction))
        if t0 < self.end <= t1:
            events.append(DriftEvent(self.end, self.kind + "_end", 0.0))
        return events

    def corrupt_feedback(
        self,
        t: int,
        click_slot: np.ndarray,
        shown: np.ndarray,
        memory: Memory,
        rng: np.random.Generator,
    ) -> np.ndarray:
        if not self.start <= t < self.end:
            return click_slot
        n, _k = shown.shape
        u = rng.random((n, 3))
        n_shown = shown.sum(axis=1)
        random_slot = np.minimum((u[:, 2] * n_shown).astype(np.int64), np.maximum(n_shown - 1, 0))
        # Shown slots are a prefix after compaction only if the slate has no gaps; map the
        # r-th shown slot to its position.
        rank = np.cumsum(shown, axis=1) - 1
        pick = np.argmax((rank == random_slot[:, None]) & shown, axis=1)
        flipped = np.where(click_slot >= 0, -1, pick)
        observed = np.where(u[:, 0] < self.flip_prob, flipped, click_slot)
        observed = np.where(u[:, 1] < self.bot_fraction, pick, observed)
        return np.where(n_shown > 0, observed, -1)

    def boundaries(self, until: int) -> list[int]:
        return [t for t in (self.start, self.end) if t <= until]

    def no_op(self, config: WorldConfig) -> DriftProcess:
        return replace(self, flip_prob=0.0, bot_fraction=0.0)

"""Catalogue drift: items retire and new ones arrive; item quality changes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift.base import (
    DriftEvent,
    DriftProcess,
    Memory,
    periodic_indices,
    set_param,
    time_param,
)
from driftrec.simulators.population import NEVER, ItemCatalogue, UserPopulation
from driftrec.validation import check_fraction, check_real

__all__ = ["CatalogChurn", "QualityShift"]


@dataclass(frozen=True)
class CatalogChurn(DriftProcess):
    """Every ``every`` requests, a ``fraction`` of the live items retire and as many new items
    are released from the reserve (so the live catalogue keeps its size). The reserve is the
    part of the catalogue not live at t=0 (``1 - initial_item_fraction``; a world without one
    is refused when configured). When the reserve runs out, churn stops, with a warning.
    Event magnitude: the fraction replaced; ``items``: how many."""

    every: int = 20_000
    fraction: float = 0.1
    kind: ClassVar[str] = "catalog_churn"
    touches: ClassVar[frozenset[str]] = frozenset({"items.arrival", "items.retirement"})

    def __post_init__(self) -> None:
        time_param(self, "every")
        set_param(self, "fraction", check_fraction("fraction", self.fraction))

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        live = round(config.num_items * config.initial_item_fraction)
        if live >= config.num_items:
            raise ValueError(
                f"catalog churn releases new items from a reserve, but initial_item_fraction="
                f"{config.initial_item_fraction} leaves none (all {config.num_items} items are "
                "live at t=0); use initial_item_fraction < 1 (e.g. 0.5)"
            )
        if round(self.fraction * live) < 1:
            raise ValueError(
                f"fraction={self.fraction} of the {live} live items rounds to 0 items per "
                "churn round; raise fraction or num_items"
            )

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
        for j in periodic_indices(t0, t1, self.every, self.every):
            t = self.every * (j + 1)
            live = np.flatnonzero(items.available(t - 1))
            reserve = np.flatnonzero(items.arrival == NEVER)
            n = min(round(self.fraction * len(live)), len(reserve))
            if n == 0:
                if not memory.get("warned"):
                    memory["warned"] = True
                    warnings.warn(
                        f"catalog churn stopped at t={t}: the reserve of unreleased items is "
                        "used up (raise num_items or lower initial_item_fraction for longer runs)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                continue
            items.retirement[rng.choice(live, n, replace=False)] = t
            items.arrival[rng.choice(reserve, n, replace=False)] = t
            events.append(DriftEvent(t, self.kind, n / len(live), (), n))
        return events


@dataclass(frozen=True)
class QualityShift(DriftProcess):
    """At clock ``at``, the quality of a ``fraction`` of the live items is redrawn with standard
    deviation ``scale`` (popularity shocks: some items become hits, others flops). Event
    magnitude: ``fraction``."""

    at: int
    fraction: float = 0.2
    scale: float = 1.0
    kind: ClassVar[str] = "quality_shift"
    touches: ClassVar[frozenset[str]] = frozenset({"items.quality"})

    def __post_init__(self) -> None:
        time_param(self, "at")
        set_param(self, "fraction", check_fraction("fraction", self.fraction))
        # Qualities are utilities (logits), bounded as the world's quality_scale is.
        set_param(self, "scale", check_real("scale", self.scale, low=0.0, high=100.0))

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        if not t0 < self.at <= t1:
            return []
        live = np.flatnonzero(items.available(self.at))
        chosen = rng.choice(live, round(self.fraction * len(live)), replace=False)
        items.quality[chosen] = (self.scale * rng.standard_normal(len(chosen))).astype(np.float32)
        return [DriftEvent(self.at, self.kind, self.fraction, (), len(chosen))]

    def boundaries(self, until: int) -> list[int]:
        return [self.at] if self.at <= until else []

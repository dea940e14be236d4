"""Regimes: the stretches of the world clock between scheduled changes (or equal slices of
continuous drift), which probe sets and forgetting are measured on."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from driftrec.simulators.drift import DriftProcess

__all__ = ["RegimeSchedule"]


class RegimeSchedule:
    """Regime boundaries of a set of drift processes, plus slices of ``regime_every`` requests.

    Boundaries are derived once up to a horizon that doubles when a later clock is asked for,
    so ``regime(t)`` costs a binary search, not a pass over every boundary, however long the
    run.
    """

    def __init__(self, processes: Sequence[DriftProcess], regime_every: int | None = None) -> None:
        self.processes = tuple(processes)
        self.regime_every = regime_every
        self._until = -1
        self._bounds: list[int] = []

    def boundaries(self, until: int) -> list[int]:
        """Clocks at which a new regime starts, up to ``until``, sorted."""
        self._extend(until)
        return self._bounds[: bisect.bisect_right(self._bounds, until)]

    def between(self, t0: int, t1: int) -> list[int]:
        """Boundaries strictly inside ``(t0, t1)``, sorted."""
        self._extend(t1)
        lo = bisect.bisect_right(self._bounds, t0)
        hi = bisect.bisect_left(self._bounds, t1)
        return self._bounds[lo:hi]

    def regime(self, t: int) -> int:
        """Index of the regime in force at ``t``; 0 before any change."""
        self._extend(t)
        return bisect.bisect_right(self._bounds, t)

    def _extend(self, t: int) -> None:
        if t <= self._until:
            return
        until = max(t, 2 * self._until + 1024)
        bounds = {b for p in self.processes for b in p.boundaries(until)}
        if self.regime_every:
            bounds.update(range(self.regime_every, until + 1, self.regime_every))
        self._bounds = sorted(bounds)
        self._until = until

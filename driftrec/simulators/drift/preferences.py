"""Preference drift: the same users' tastes change (sudden, gradual, incremental, recurring).

Preference drift rotates preferences: ``theta <- R theta`` where R rotates by the same angle
``alpha`` in d/2 orthogonal planes of a random basis, so that *every* affected user's cosine
similarity between old and new preferences is exactly ``cos(alpha)``: the magnitude knob
``similarity`` means precisely that. The cohort centre rotates with its users, so the geometry
of a cohort is kept and users who arrive later share the drifted taste. Rotations with the same
basis commute and compose additively in angle, which makes gradual drift and exact return in
recurring drift cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift.base import (
    DriftEvent,
    DriftProcess,
    Memory,
    check_cohorts,
    cohort_ids,
    cohorts_param,
    periodic_indices,
    preference_event,
    similarity_param,
    step_indices,
    step_times,
    steps_param,
    time_param,
)
from driftrec.simulators.population import ItemCatalogue, UserPopulation

__all__ = [
    "GradualShift",
    "IncrementalDrift",
    "RecurringShift",
    "SuddenShift",
    "random_plane_basis",
    "rotate_cohort",
    "rotation",
]


def random_plane_basis(rng: np.random.Generator, d: int) -> np.ndarray:
    """A uniformly random orthonormal basis (d, d); column pairs span the rotation planes."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def rotation(basis: np.ndarray, angle: float) -> np.ndarray:
    """(d, d) rotation by ``angle`` in each plane (basis[:, 2i], basis[:, 2i+1]).

    For every vector x, cos(x, R x) = cos(angle) exactly (d even).
    """
    d = basis.shape[0]
    block = np.zeros((d, d))
    c, s = math.cos(angle), math.sin(angle)
    i = np.arange(0, d, 2)
    block[i, i] = c
    block[i + 1, i + 1] = c
    block[i, i + 1] = -s
    block[i + 1, i] = s
    return basis @ block @ basis.T


def rotate_cohort(users: UserPopulation, cohort: int, matrix: np.ndarray) -> None:
    members = users.cohort == cohort
    users.theta[members] = (users.theta[members] @ matrix.T.astype(np.float32)).astype(np.float32)
    users.cohort_centres[cohort] = matrix @ users.cohort_centres[cohort]


@dataclass(frozen=True)
class PreferenceDrift(DriftProcess):
    """What preference drift shares (no fields of its own): the same users' tastes rotate, so it
    changes ``users.theta`` and the cohort centres; its affected ``cohorts`` must exist; its
    no-op is ``similarity=1``. Subclasses have fields ``similarity`` and ``cohorts``."""

    touches: ClassVar[frozenset[str]] = frozenset({"users.theta", "users.cohort_centres"})

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        check_cohorts(self.kind, getattr(self, "cohorts", None), num_cohorts)

    def no_op(self, config: WorldConfig) -> DriftProcess:
        return replace(self, similarity=1.0)  # type: ignore[call-arg]  # subclasses have it


@dataclass(frozen=True)
class SuddenShift(PreferenceDrift):
    """At clock ``at``, the preferences of the affected cohorts jump.

    Each cohort is rotated by its own random rotation with cos(old, new) = ``similarity`` for
    every user (0: orthogonal new taste; 1: no change). Event magnitude: ``1 - similarity``.
    """

    at: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "sudden"

    def __post_init__(self) -> None:
        time_param(self, "at")
        similarity_param(self)
        cohorts_param(self)

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
        cohorts = cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for c in cohorts:
            rotate_cohort(users, c, rotation(random_plane_basis(rng, users.theta.shape[1]), angle))
        return [preference_event(self.at, self.kind, self.similarity, cohorts)]

    def boundaries(self, until: int) -> list[int]:
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class GradualShift(PreferenceDrift):
    """Preferences rotate from ``start`` over ``duration`` requests, in ``steps`` equal steps, to
    a total cos(old, new) = ``similarity``. Speed is ``duration``; severity is ``similarity``.

    Step j (1..steps) happens at ``start + floor(j * duration / steps)``, so the rotation is
    complete at exactly ``start + duration``. Events: ``gradual`` at ``start`` and
    ``gradual_end`` at ``start + duration``, both with magnitude ``1 - similarity``.
    """

    start: int
    duration: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    steps: int = 50
    kind: ClassVar[str] = "gradual"

    def __post_init__(self) -> None:
        time_param(self, "start")
        time_param(self, "duration")
        similarity_param(self)
        cohorts_param(self)
        steps_param(self)

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        crossed = step_indices(step_times(self.start, self.duration, self.steps), t0, t1)
        if not crossed:
            return []
        cohorts = cohort_ids(self.cohorts, users)
        if "bases" not in memory:
            d = users.theta.shape[1]
            memory["bases"] = {c: random_plane_basis(rng, d) for c in cohorts}
        # One rotation per step (not one by the summed angle), so that advancing in one call or
        # in several gives the same numbers, bit for bit.
        angle = math.acos(self.similarity) / self.steps
        for _ in range(sum(j > 0 for j in crossed)):
            for c in cohorts:
                rotate_cohort(users, c, rotation(memory["bases"][c], angle))
        events = []
        if crossed[0] == 0:
            events.append(preference_event(self.start, self.kind, self.similarity, cohorts))
        if crossed[-1] == self.steps:
            end = self.start + self.duration
            events.append(preference_event(end, self.kind + "_end", self.similarity, cohorts))
        return events

    def boundaries(self, until: int) -> list[int]:
        return [self.start] if self.start <= until else []


@dataclass(frozen=True)
class IncrementalDrift(PreferenceDrift):
    """A random walk of preferences: every ``interval`` requests each affected cohort rotates by
    a fresh random rotation with cos(before, after) = ``similarity`` for every user. Event
    magnitude: ``1 - similarity`` per step."""

    interval: int = 5_000
    similarity: float = 0.98
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "incremental"

    def __post_init__(self) -> None:
        time_param(self, "interval")
        similarity_param(self)
        cohorts_param(self)

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        events: list[DriftEvent] = []
        crossed = periodic_indices(t0, t1, self.interval, self.interval)
        if not crossed:
            return events
        cohorts = cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for j in crossed:
            for c in cohorts:
                basis = random_plane_basis(rng, users.theta.shape[1])
                rotate_cohort(users, c, rotation(basis, angle))
            t = self.interval * (j + 1)
            events.append(preference_event(t, self.kind, self.similarity, cohorts))
        return events


@dataclass(frozen=True)
class RecurringShift(PreferenceDrift):
    """Recurring regimes of the same users' preferences: A -> B -> A -> ...

    Every ``period`` requests (from ``start``, default ``period``) the preferences switch
    between regime A and regime B, where B is A rotated to cos(A, B) = ``similarity``. The
    return to A applies the inverse rotation, so A comes back exactly. Event magnitude:
    ``1 - similarity``.
    """

    period: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    start: int | None = None
    kind: ClassVar[str] = "recurring"

    def __post_init__(self) -> None:
        time_param(self, "period")
        if self.start is not None:
            time_param(self, "start")
        similarity_param(self)
        cohorts_param(self)

    @property
    def first(self) -> int:
        return self.period if self.start is None else self.start

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        crossed = periodic_indices(t0, t1, self.first, self.period)
        if not crossed:
            return []
        cohorts = cohort_ids(self.cohorts, users)
        if "bases" not in memory:
            d = users.theta.shape[1]
            memory["bases"] = {c: random_plane_basis(rng, d) for c in cohorts}
        angle = math.acos(self.similarity)
        events = []
        for j in crossed:
            sign = 1.0 if j % 2 == 0 else -1.0
            for c in cohorts:
                rotate_cohort(users, c, rotation(memory["bases"][c], sign * angle))
            t = self.first + j * self.period
            events.append(preference_event(t, self.kind, self.similarity, cohorts))
        return events

    def boundaries(self, until: int) -> list[int]:
        return list(range(self.first, until + 1, self.period))

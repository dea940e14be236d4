"""Drift processes: how the true world changes over the world clock.

A process is a frozen dataclass of parameters; every piece of mutable state it needs lives in the
``memory`` dict the world hands it, so a world (and the processes in it) pickles and replays
exactly. The world calls, for each process:

- ``prepare`` once, when the world is drawn (e.g. to reserve the users of a future cohort);
- ``advance`` whenever the clock moves from ``t0`` to ``t1`` (everything scheduled in
  ``(t0, t1]`` happens, in order), returning the ground-truth ``DriftEvent``s that fired;
- ``on_consumption`` with the true clicks of each served batch (feedback loops);
- ``corrupt_feedback`` with the clicks the agent is about to observe (noise, bots).

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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.population import NEVER, ItemCatalogue, UserPopulation, unit_rows

__all__ = [
    "AlternatingPopulation",
    "CatalogChurn",
    "ClickNoise",
    "CohortMixShift",
    "DriftEvent",
    "DriftProcess",
    "FeedbackLoop",
    "GradualShift",
    "IncrementalDrift",
    "NewCohort",
    "QualityShift",
    "RecurringShift",
    "SuddenShift",
    "random_plane_basis",
    "rotation",
]

Memory = dict[str, Any]


@dataclass(frozen=True)
class DriftEvent:
    """Ground truth of one change in the world.

    Attributes:
        t: world clock at which it took effect.
        kind: the process kind, e.g. ``"sudden"``.
        magnitude: its size, in the unit the process documents (for preference drift: the
            cosine similarity between old and new preferences, 1 meaning no change).
        cohorts: affected cohort ids (empty if none are specifically affected).
        items: number of affected items (catalogue processes).
    """

    t: int
    kind: str
    magnitude: float
    cohorts: tuple[int, ...] = ()
    items: int = 0


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


def _cohort_ids(cohorts: tuple[int, ...] | None, users: UserPopulation) -> tuple[int, ...]:
    if cohorts is None:
        return tuple(range(len(users.cohort_centres)))
    unknown = [c for c in cohorts if not 0 <= c < len(users.cohort_centres)]
    if unknown:
        raise ValueError(
            f"cohorts {unknown} do not exist; this world has cohorts "
            f"0..{len(users.cohort_centres) - 1}"
        )
    return tuple(cohorts)


def _rotate_cohort(users: UserPopulation, cohort: int, matrix: np.ndarray) -> None:
    members = users.cohort == cohort
    users.theta[members] = (users.theta[members] @ matrix.T.astype(np.float32)).astype(np.float32)
    users.cohort_centres[cohort] = matrix @ users.cohort_centres[cohort]


def _crossed(t0: int, t1: int, start: int, every: int) -> range:
    """Indices j >= 0 with start + j * every in (t0, t1]."""
    first = max(0, (t0 - start) // every + 1)
    last = (t1 - start) // every if t1 >= start else -1
    return range(first, last + 1)


def _check_similarity(similarity: float) -> None:
    if not -1.0 <= similarity <= 1.0:
        raise ValueError(f"similarity is a cosine and must be in [-1, 1], got {similarity}")


def _check_fraction(
    name: str, value: float, *, closed_below: bool = False, open_above: bool = False
) -> None:
    """``value`` in (0, 1]; ``closed_below`` admits 0, ``open_above`` excludes 1."""
    low_ok = value >= 0.0 if closed_below else value > 0.0
    high_ok = value < 1.0 if open_above else value <= 1.0
    if not (low_ok and high_ok):
        interval = ("[" if closed_below else "(") + "0, 1" + (")" if open_above else "]")
        raise ValueError(f"{name} must be in {interval}, got {value}")


def _check_time(name: str, value: int, minimum: int = 0) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer world-clock time >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class DriftProcess:
    """Base of all drift processes: every hook is a no-op unless overridden."""

    kind: ClassVar[str] = "none"

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
        """Called once when the world is drawn."""

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        """Apply everything scheduled in (t0, t1]; return the events that fired, in time order."""
        return []

    def on_consumption(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """See the true clicks of a served batch: ``user_ids[i]`` clicked ``item_ids[i]``."""

    def corrupt_feedback(
        self, t: int, click_slot: np.ndarray, shown: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Return the clicked slots (n,) that the agent observes (-1: none)."""
        return click_slot

    def boundaries(self, until: int) -> list[int]:
        """Scheduled regime changes at or before ``until``."""
        return []


@dataclass(frozen=True)
class SuddenShift(DriftProcess):
    """At clock ``at``, the preferences of the affected cohorts jump.

    Each cohort is rotated by its own random rotation with cos(old, new) = ``similarity`` for
    every user (0: orthogonal new taste; 1: no change).
    """

    at: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "sudden"

    def __post_init__(self) -> None:
        _check_time("at", self.at, 1)
        _check_similarity(self.similarity)

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        cohorts = _cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for c in cohorts:
            _rotate_cohort(users, c, rotation(random_plane_basis(rng, users.theta.shape[1]), angle))
        return [DriftEvent(self.at, self.kind, self.similarity, cohorts)]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class GradualShift(DriftProcess):
    """Preferences rotate from ``start`` over ``duration`` requests, in ``steps`` equal steps, to
    a total cos(old, new) = ``similarity``. Speed is ``duration``; magnitude is ``similarity``.
    """

    start: int
    duration: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    steps: int = 50
    kind: ClassVar[str] = "gradual"

    def __post_init__(self) -> None:
        _check_time("start", self.start, 1)
        _check_time("duration", self.duration, 1)
        _check_similarity(self.similarity)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def advance(self, users, items, memory, t0, t1, rng):
        # Step j in 1..steps adds 1/steps of the angle at start + j * step_len; j = 0 marks start.
        step_len = max(1, self.duration // self.steps)
        crossed = [j for j in _crossed(t0, t1, self.start, step_len) if j <= self.steps]
        if not crossed:
            return []
        cohorts = _cohort_ids(self.cohorts, users)
        if "bases" not in memory:
            d = users.theta.shape[1]
            memory["bases"] = {c: random_plane_basis(rng, d) for c in cohorts}
        angle = math.acos(self.similarity) * sum(j > 0 for j in crossed) / self.steps
        for c in cohorts:
            _rotate_cohort(users, c, rotation(memory["bases"][c], angle))
        events = []
        if crossed[0] == 0:
            events.append(DriftEvent(self.start, self.kind, self.similarity, cohorts))
        if crossed[-1] == self.steps:
            end = self.start + self.steps * step_len
            events.append(DriftEvent(end, self.kind + "_end", self.similarity, cohorts))
        return events

    def boundaries(self, until):
        return [self.start] if self.start <= until else []


@dataclass(frozen=True)
class IncrementalDrift(DriftProcess):
    """A random walk of preferences: every ``interval`` requests each affected cohort rotates by
    a fresh random rotation with cos(before, after) = ``similarity`` for every user."""

    interval: int = 5_000
    similarity: float = 0.98
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "incremental"

    def __post_init__(self) -> None:
        _check_time("interval", self.interval, 1)
        _check_similarity(self.similarity)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        cohorts = _cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for j in _crossed(t0, t1, self.interval, self.interval):
            for c in cohorts:
                basis = random_plane_basis(rng, users.theta.shape[1])
                _rotate_cohort(users, c, rotation(basis, angle))
            events.append(DriftEvent(self.interval * (j + 1), self.kind, self.similarity, cohorts))
        return events


@dataclass(frozen=True)
class RecurringShift(DriftProcess):
    """Recurring regimes of the same users' preferences: A -> B -> A -> ...

    Every ``period`` requests (from ``start``, default ``period``) the preferences switch
    between regime A and regime B, where B is A rotated to cos(A, B) = ``similarity``. The
    return to A applies the inverse rotation, so A comes back exactly.
    """

    period: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    start: int | None = None
    kind: ClassVar[str] = "recurring"

    def __post_init__(self) -> None:
        _check_time("period", self.period, 1)
        if self.start is not None:
            _check_time("start", self.start, 1)
        _check_similarity(self.similarity)

    @property
    def first(self) -> int:
        return self.period if self.start is None else self.start

    def advance(self, users, items, memory, t0, t1, rng):
        crossed = _crossed(t0, t1, self.first, self.period)
        if not crossed:
            return []
        cohorts = _cohort_ids(self.cohorts, users)
        if "bases" not in memory:
            d = users.theta.shape[1]
            memory["bases"] = {c: random_plane_basis(rng, d) for c in cohorts}
        angle = math.acos(self.similarity)
        events = []
        for j in crossed:
            sign = 1.0 if j % 2 == 0 else -1.0
            for c in cohorts:
                _rotate_cohort(users, c, rotation(memory["bases"][c], sign * angle))
            events.append(
                DriftEvent(self.first + j * self.period, self.kind, self.similarity, cohorts)
            )
        return events

    def boundaries(self, until):
        return list(range(self.first, until + 1, self.period))


def _split_cohorts(n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(range(0, n, 2)), tuple(range(1, n, 2))


@dataclass(frozen=True)
class AlternatingPopulation(DriftProcess):
    """Recurring regimes of the *active population* (weekday / weekend): cohorts in ``groups[0]``
    are active in regimes A, those in ``groups[1]`` in regimes B, switching every ``period``.

    Nobody's preferences change: old data is not wrong, only absent, which makes this the clean
    test of forgetting. Inactive cohorts keep ``leak`` of their activity (default 0: none).
    Default groups: even and odd cohort ids. The event magnitude is the share of requests that
    changes hands (1 when ``leak`` is 0).
    """

    period: int
    groups: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    leak: float = 0.0
    kind: ClassVar[str] = "recurring_population"

    def __post_init__(self) -> None:
        _check_time("period", self.period, 1)
        _check_fraction("leak", self.leak, closed_below=True, open_above=True)

    def _groups(self, users: UserPopulation) -> tuple[tuple[int, ...], tuple[int, ...]]:
        groups = self.groups or _split_cohorts(len(users.cohort_centres))
        for g in groups:
            _cohort_ids(g, users)
        return groups

    def _activate(self, users: UserPopulation, phase: int) -> None:
        on, off = self._groups(users)
        if phase % 2:
            on, off = off, on
        users.cohort_activity[list(on)] = 1.0
        users.cohort_activity[list(off)] = self.leak

    def prepare(self, config, users, items, memory, rng):
        self._activate(users, 0)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        for j in _crossed(t0, t1, self.period, self.period):
            self._activate(users, j + 1)
            events.append(
                DriftEvent(
                    self.period * (j + 1),
                    self.kind,
                    1.0 - self.leak,
                    self._groups(users)[(j + 1) % 2],
                )
            )
        return events

    def boundaries(self, until):
        return list(range(self.period, until + 1, self.period))


def _cohort_share(users: UserPopulation) -> np.ndarray:
    """Expected share of requests per cohort given current activity (arrival ignored)."""
    base = np.bincount(
        users.cohort, weights=users.activity * users.alive, minlength=len(users.cohort_centres)
    )
    w = base * users.cohort_activity
    return w / w.sum()


@dataclass(frozen=True)
class CohortMixShift(DriftProcess):
    """The mix of cohorts making requests moves, from ``start`` over ``duration`` requests
    (``duration=1``: at once), to multipliers ``target`` on each cohort's activity.

    Default target: the first half of the cohorts drops to 0.2, the second half rises to 1.8.
    The event magnitude is the total-variation distance between the request shares per cohort
    before and after (0: no change, 1: disjoint).
    """

    start: int
    duration: int = 1
    target: tuple[float, ...] | None = None
    steps: int = 20
    kind: ClassVar[str] = "cohort_shift"

    def __post_init__(self) -> None:
        _check_time("start", self.start, 1)
        _check_time("duration", self.duration, 1)
        if self.target is not None and min(self.target) < 0:
            raise ValueError("target activity multipliers must be >= 0")

    def _target(self, n: int) -> np.ndarray:
        if self.target is None:
            return np.where(np.arange(n) < n // 2, 0.2, 1.8)
        if len(self.target) != n:
            raise ValueError(
                f"target needs one multiplier per cohort ({n}), got {len(self.target)}"
            )
        return np.asarray(self.target, dtype=np.float64)

    def advance(self, users, items, memory, t0, t1, rng):
        steps = min(self.steps, self.duration)
        step_len = max(1, self.duration // steps)
        crossed = [j for j in _crossed(t0, t1, self.start, step_len) if j < steps]
        if not crossed:
            return []
        if "initial" not in memory:
            memory["initial"] = users.cohort_activity.copy()
            memory["share0"] = _cohort_share(users)
        progress = (crossed[-1] + 1) / steps
        target = self._target(len(memory["initial"]))
        users.cohort_activity[: len(target)] = (1 - progress) * memory[
            "initial"
        ] + progress * target
        if crossed[-1] != steps - 1:
            return []
        tv = 0.5 * np.abs(_cohort_share(users) - memory["share0"]).sum()
        cohorts = tuple(int(c) for c in np.flatnonzero(target != memory["initial"]))
        return [DriftEvent(self.start, self.kind, float(tv), cohorts)]

    def boundaries(self, until):
        return [self.start] if self.start <= until else []


@dataclass(frozen=True)
class NewCohort(DriftProcess):
    """At clock ``at`` a new cohort, with a fresh random taste, joins: a ``fraction`` of the
    population (reserved when the world is drawn, invisible before) arrives at once."""

    at: int
    fraction: float = 0.2
    kind: ClassVar[str] = "new_cohort"

    def __post_init__(self) -> None:
        _check_time("at", self.at, 1)
        _check_fraction("fraction", self.fraction, open_above=True)

    def prepare(self, config, users, items, memory, rng):
        d = users.theta.shape[1]
        centre = unit_rows(rng.standard_normal((1, d)))[0]
        cohort = users.add_cohort(centre)
        n = len(users.cohort)
        members = rng.permutation(n)[: max(1, round(self.fraction * n))]
        users.cohort[members] = cohort
        users.theta[members] = unit_rows(
            centre + config.cohort_spread * rng.standard_normal((len(members), d))
        ).astype(np.float32)
        users.arrival[members] = self.at
        memory["cohort"] = cohort

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        return [DriftEvent(self.at, self.kind, self.fraction, (memory["cohort"],))]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class CatalogChurn(DriftProcess):
    """Every ``every`` requests, a ``fraction`` of the live items retire and as many new items
    are released from the reserve (so the live catalogue keeps its size). When the reserve runs
    out, retirements stop too. Event magnitude: the fraction replaced; ``items``: how many."""

    every: int = 20_000
    fraction: float = 0.1
    kind: ClassVar[str] = "catalog_churn"

    def __post_init__(self) -> None:
        _check_time("every", self.every, 1)
        _check_fraction("fraction", self.fraction)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        for j in _crossed(t0, t1, self.every, self.every):
            t = self.every * (j + 1)
            live = np.flatnonzero(items.available(t - 1))
            reserve = np.flatnonzero(items.arrival == NEVER)
            n = min(round(self.fraction * len(live)), len(reserve))
            if n == 0:
                continue
            items.retirement[rng.choice(live, n, replace=False)] = t
            items.arrival[rng.choice(reserve, n, replace=False)] = t
            events.append(DriftEvent(t, self.kind, n / len(live), (), n))
        return events


@dataclass(frozen=True)
class QualityShift(DriftProcess):
    """At clock ``at``, the quality of a ``fraction`` of the live items is redrawn with standard
    deviation ``scale`` (popularity shocks: some items become hits, others flops)."""

    at: int
    fraction: float = 0.2
    scale: float = 1.0
    kind: ClassVar[str] = "quality_shift"

    def __post_init__(self) -> None:
        _check_time("at", self.at, 1)
        _check_fraction("fraction", self.fraction)

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        live = np.flatnonzero(items.available(self.at))
        chosen = rng.choice(live, round(self.fraction * len(live)), replace=False)
        items.quality[chosen] = (self.scale * rng.standard_normal(len(chosen))).astype(np.float32)
        return [DriftEvent(self.at, self.kind, self.fraction, (), len(chosen))]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class FeedbackLoop(DriftProcess):
    """Preferences move toward what is consumed: on each click,
    theta_u <- normalise(theta_u + strength * phi_i).

    Every ``report_every`` requests an event reports the mean cosine similarity between present
    users' preferences now and at the previous report (1: nothing moved).
    """

    strength: float = 0.05
    report_every: int = 20_000
    kind: ClassVar[str] = "feedback_loop"

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ValueError(f"strength must be >= 0, got {self.strength}")
        _check_time("report_every", self.report_every, 1)

    def prepare(self, config, users, items, memory, rng):
        memory["reference"] = users.theta.copy()

    def on_consumption(self, users, items, memory, user_ids, item_ids, rng):
        moved = users.theta[user_ids] + self.strength * items.phi[item_ids]
        users.theta[user_ids] = unit_rows(moved).astype(np.float32)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        for j in _crossed(t0, t1, self.report_every, self.report_every):
            t = self.report_every * (j + 1)
            present = (users.arrival <= t) & users.alive
            cos = (users.theta[present] * memory["reference"][present]).sum(axis=1)
            events.append(DriftEvent(t, self.kind, float(cos.mean())))
            memory["reference"] = users.theta.copy()
        return events


@dataclass(frozen=True)
class ClickNoise(DriftProcess):
    """Between ``start`` and ``end``, the clicks the agent observes are corrupted: with
    probability ``flip_prob`` a click is dropped or a non-click becomes a click on a random
    shown slot; with probability ``bot_fraction`` the request is answered by a bot that clicks a
    uniformly random shown slot. The true clicks, and so expected rewards, are unchanged."""

    start: int
    end: int = NEVER
    flip_prob: float = 0.1
    bot_fraction: float = 0.1
    kind: ClassVar[str] = "click_noise"

    def __post_init__(self) -> None:
        _check_time("start", self.start, 1)
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        for name in ("flip_prob", "bot_fraction"):
            _check_fraction(name, getattr(self, name), closed_below=True)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        if t0 < self.start <= t1:
            events.append(DriftEvent(self.start, self.kind, self.flip_prob + self.bot_fraction))
        if t0 < self.end <= t1:
            events.append(DriftEvent(self.end, self.kind + "_end", 0.0))
        return events

    def corrupt_feedback(self, t, click_slot, shown, rng):
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

    def boundaries(self, until):
        return [t for t in (self.start, self.end) if t <= until]

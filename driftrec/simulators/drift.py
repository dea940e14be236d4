"""Drift processes: how the true world changes over the world clock.

A process is a frozen dataclass of parameters; every piece of mutable state it needs lives in the
``memory`` dict the world hands it, so a world (and the processes in it) pickles and replays
exactly. The world calls, for each process:

- ``validate`` when the world is configured, before anything is drawn: every parameter is checked
  against the configuration it will act on (cohorts that exist, vector lengths, a reserve to
  churn), so that a run never dies mid-way on a value it accepted at the start;
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
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.population import NEVER, ItemCatalogue, UserPopulation, unit_rows
from driftrec.validation import (
    check_fraction,
    check_integer,
    check_integer_tuple,
    check_real,
    check_real_tuple,
)

__all__ = [
    "PREFERENCE_KINDS",
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
    "check_processes",
    "cohort_request_shares",
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
        magnitude: its size, 0 for no change and growing with the change, in the unit the
            process documents: for preference drift the cosine distance ``1 - similarity``
            between old and new preferences; for a mix shift the total-variation distance of
            request shares among present users; for churn the fraction of the live catalogue
            replaced.
        cohorts: affected cohort ids (empty if none are specifically affected).
        items: number of affected items (catalogue processes).
        similarity: for preference drift, the cosine similarity between old and new
            preferences (``1 - magnitude``; 1 means no change); None for other kinds.
    """

    t: int
    kind: str
    magnitude: float
    cohorts: tuple[int, ...] = ()
    items: int = 0
    similarity: float | None = None


PREFERENCE_KINDS = ("sudden", "gradual", "incremental", "recurring", "feedback_loop")
"""Kinds whose events carry a ``similarity`` (and ``magnitude = 1 - similarity``)."""


def _preference_event(t: int, kind: str, similarity: float, cohorts=()) -> DriftEvent:
    return DriftEvent(t, kind, 1.0 - similarity, tuple(cohorts), 0, similarity)


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
    """The affected cohorts (all of them for None); validated when the world was configured."""
    return tuple(range(len(users.cohort_centres))) if cohorts is None else cohorts


def _check_cohorts(name: str, cohorts: tuple[int, ...] | None, num_cohorts: int) -> None:
    if cohorts is None:
        return
    unknown = [c for c in cohorts if c >= num_cohorts]
    if unknown:
        raise ValueError(
            f"{name}: cohorts {unknown} do not exist; this world has cohorts "
            f"0..{num_cohorts - 1} (num_cohorts={num_cohorts}, including cohorts that drift "
            f"processes add)"
        )


def _normalise(process: object, name: str, value: object) -> None:
    """Store a normalised parameter value on a frozen dataclass."""
    object.__setattr__(process, name, value)


def _cohorts_param(process: object, name: str = "cohorts") -> None:
    value = getattr(process, name)
    if value is not None:
        _normalise(process, name, check_integer_tuple(name, value, minimum=0, distinct=True))


def _similarity_param(process: object) -> None:
    """``similarity`` is a cosine: a real number in [-1, 1]."""
    value = check_real("similarity", process.similarity)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"similarity is a cosine and must be in [-1, 1], got {value}")
    _normalise(process, "similarity", value)


def _time_param(process: object, name: str, minimum: int = 1) -> None:
    _normalise(process, name, check_integer(name, getattr(process, name), minimum=minimum))


def _rotate_cohort(users: UserPopulation, cohort: int, matrix: np.ndarray) -> None:
    members = users.cohort == cohort
    users.theta[members] = (users.theta[members] @ matrix.T.astype(np.float32)).astype(np.float32)
    users.cohort_centres[cohort] = matrix @ users.cohort_centres[cohort]


def _crossed(t0: int, t1: int, start: int, every: int) -> range:
    """Indices j >= 0 with start + j * every in (t0, t1]."""
    first = max(0, (t0 - start) // every + 1)
    last = (t1 - start) // every if t1 >= start else -1
    return range(first, last + 1)


def _step_times(start: int, duration: int, steps: int) -> np.ndarray:
    """(steps + 1,) clocks ``start + floor(j * duration / steps)``, j = 0..steps: evenly spread,
    the last exactly at ``start + duration`` whatever the divisibility."""
    return start + (np.arange(steps + 1, dtype=np.int64) * duration) // steps


def _crossed_steps(times: np.ndarray, t0: int, t1: int) -> list[int]:
    """Indices j with t0 < times[j] <= t1."""
    lo, hi = np.searchsorted(times, [t0, t1], side="right")
    return list(range(int(lo), int(hi)))


@dataclass(frozen=True)
class DriftProcess:
    """Base of all drift processes: every hook is a no-op unless overridden."""

    kind: ClassVar[str] = "none"
    added_cohorts: ClassVar[int] = 0
    """Cohorts the process adds to the world when it is drawn (their ids follow the initial
    ones, in process order)."""

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        """Check the parameters against the world they will act on (``num_cohorts`` counts the
        initial cohorts and those every process adds); raise ``ValueError`` naming the
        parameter. Called when the world is configured, before anything is drawn."""

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


def check_processes(config: WorldConfig, processes: tuple[DriftProcess, ...]) -> None:
    """Validate drift processes against the world they will act on (raises ``TypeError`` /
    ``ValueError`` naming the parameter); called before anything is drawn."""
    for process in processes:
        if not isinstance(process, DriftProcess):
            raise TypeError(
                f"drift processes must be DriftProcess instances (e.g. SuddenShift(at=...)), "
                f"got {process!r}"
            )
    num_cohorts = config.num_cohorts + sum(p.added_cohorts for p in processes)
    for process in processes:
        process.validate(config, num_cohorts)


@dataclass(frozen=True)
class SuddenShift(DriftProcess):
    """At clock ``at``, the preferences of the affected cohorts jump.

    Each cohort is rotated by its own random rotation with cos(old, new) = ``similarity`` for
    every user (0: orthogonal new taste; 1: no change). Event magnitude: ``1 - similarity``.
    """

    at: int
    similarity: float = 0.0
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "sudden"

    def __post_init__(self) -> None:
        _time_param(self, "at")
        _similarity_param(self)
        _cohorts_param(self)

    def validate(self, config, num_cohorts):
        _check_cohorts(self.kind, self.cohorts, num_cohorts)

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        cohorts = _cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for c in cohorts:
            _rotate_cohort(users, c, rotation(random_plane_basis(rng, users.theta.shape[1]), angle))
        return [_preference_event(self.at, self.kind, self.similarity, cohorts)]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class GradualShift(DriftProcess):
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
        _time_param(self, "start")
        _time_param(self, "duration")
        _similarity_param(self)
        _cohorts_param(self)
        _time_param(self, "steps")

    def validate(self, config, num_cohorts):
        _check_cohorts(self.kind, self.cohorts, num_cohorts)

    def advance(self, users, items, memory, t0, t1, rng):
        crossed = _crossed_steps(_step_times(self.start, self.duration, self.steps), t0, t1)
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
            events.append(_preference_event(self.start, self.kind, self.similarity, cohorts))
        if crossed[-1] == self.steps:
            end = self.start + self.duration
            events.append(_preference_event(end, self.kind + "_end", self.similarity, cohorts))
        return events

    def boundaries(self, until):
        return [self.start] if self.start <= until else []


@dataclass(frozen=True)
class IncrementalDrift(DriftProcess):
    """A random walk of preferences: every ``interval`` requests each affected cohort rotates by
    a fresh random rotation with cos(before, after) = ``similarity`` for every user. Event
    magnitude: ``1 - similarity`` per step."""

    interval: int = 5_000
    similarity: float = 0.98
    cohorts: tuple[int, ...] | None = None
    kind: ClassVar[str] = "incremental"

    def __post_init__(self) -> None:
        _time_param(self, "interval")
        _similarity_param(self)
        _cohorts_param(self)

    def validate(self, config, num_cohorts):
        _check_cohorts(self.kind, self.cohorts, num_cohorts)

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        crossed = _crossed(t0, t1, self.interval, self.interval)
        if not crossed:
            return events
        cohorts = _cohort_ids(self.cohorts, users)
        angle = math.acos(self.similarity)
        for j in crossed:
            for c in cohorts:
                basis = random_plane_basis(rng, users.theta.shape[1])
                _rotate_cohort(users, c, rotation(basis, angle))
            t = self.interval * (j + 1)
            events.append(_preference_event(t, self.kind, self.similarity, cohorts))
        return events


@dataclass(frozen=True)
class RecurringShift(DriftProcess):
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
        _time_param(self, "period")
        if self.start is not None:
            _time_param(self, "start")
        _similarity_param(self)
        _cohorts_param(self)

    def validate(self, config, num_cohorts):
        _check_cohorts(self.kind, self.cohorts, num_cohorts)

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
            t = self.first + j * self.period
            events.append(_preference_event(t, self.kind, self.similarity, cohorts))
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
    Default groups: even and odd cohort ids (so the world needs at least 2 cohorts). The switch
    is sharp: running sessions are thinned at the boundary so that the users in session follow
    the new activity at once (see ``driftrec.simulators.sessions``). The event magnitude is the
    share of requests that changes hands (1 when ``leak`` is 0).
    """

    period: int
    groups: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    leak: float = 0.0
    kind: ClassVar[str] = "recurring_population"

    def __post_init__(self) -> None:
        _time_param(self, "period")
        _normalise(
            self, "leak", check_fraction("leak", self.leak, closed_below=True, open_above=True)
        )
        if self.groups is not None:
            if isinstance(self.groups, (str, bytes)) or len(self.groups) != 2:
                raise ValueError(
                    f"groups must be two tuples of cohort ids (active in A, active in B), "
                    f"got {self.groups!r}"
                )
            groups = tuple(
                check_integer_tuple(f"groups[{i}]", g, minimum=0, distinct=True)
                for i, g in enumerate(self.groups)
            )
            if set(groups[0]) & set(groups[1]):
                raise ValueError(
                    f"groups must be disjoint, both hold {sorted(set(groups[0]) & set(groups[1]))}"
                )
            _normalise(self, "groups", groups)

    def validate(self, config, num_cohorts):
        if self.groups is None:
            if num_cohorts < 2:
                raise ValueError(
                    f"an alternating population needs at least 2 cohorts (even ones active in "
                    f"A, odd ones in B), got num_cohorts={num_cohorts}"
                )
            return
        for i, group in enumerate(self.groups):
            _check_cohorts(f"{self.kind} groups[{i}]", group, num_cohorts)

    def _groups(self, users: UserPopulation) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.groups or _split_cohorts(len(users.cohort_centres))

    def _activate(self, users: UserPopulation, phase: int) -> None:
        on, off = self._groups(users)
        if phase % 2:
            on, off = off, on
        users.cohort_activity[list(on)] = 1.0
        users.cohort_activity[list(off)] = self.leak

    def prepare(self, config, users, items, memory, rng):
        for i, group in enumerate(self._groups(users)):
            if not np.isin(users.cohort[users.arrival == 0], group).any():
                raise ValueError(
                    f"no user of group {i} (cohorts {list(group)}) is present at t=0, so its "
                    f"regime would have nobody to serve; raise num_users (now "
                    f"{config.num_users}) or lower num_cohorts (now {config.num_cohorts})"
                )
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


def cohort_request_shares(
    users: UserPopulation, t: int, cohort_activity: np.ndarray | None = None
) -> np.ndarray:
    """(n_cohorts,) share of requests each cohort makes at clock ``t``: the activity of the
    users present then (arrived and not churned), times their cohort's multiplier
    (``cohort_activity``, default the current one). All zeros if nobody can request."""
    multiplier = users.cohort_activity if cohort_activity is None else cohort_activity
    present = (users.arrival <= t) & users.alive
    base = np.bincount(
        users.cohort, weights=users.activity * present, minlength=len(users.cohort_centres)
    )
    w = base * multiplier
    total = w.sum()
    return w / total if total > 0 else w


@dataclass(frozen=True)
class CohortMixShift(DriftProcess):
    """The mix of cohorts making requests moves, from ``start`` over ``duration`` requests
    (``duration=1``: at once), to multipliers ``target`` on each cohort's activity.

    ``target`` has one multiplier per *initial* cohort (``num_cohorts`` values, checked when
    the world is configured); cohorts that other processes add (a new cohort) keep their own
    activity. Default target: the first half of the cohorts drops to 0.2, the second half
    rises to 1.8. The multipliers move linearly in ``steps`` steps, step j (0..steps-1) at
    ``start + floor(j * duration / steps)``. Running sessions follow each step at once (see
    ``driftrec.simulators.sessions``).

    The event (at ``start``, reported when the shift completes with its last step) has
    magnitude equal to the total-variation distance between the per-cohort request shares under
    the old and the new multipliers, both over the users present at that last step (0: no
    change, 1: disjoint).
    """

    start: int
    duration: int = 1
    target: tuple[float, ...] | None = None
    steps: int = 20
    kind: ClassVar[str] = "cohort_shift"

    def __post_init__(self) -> None:
        _time_param(self, "start")
        _time_param(self, "duration")
        _time_param(self, "steps")
        if self.target is not None:
            target = check_real_tuple("target", self.target, low=0.0)
            if not any(target):
                raise ValueError(
                    "target multipliers are all 0: no cohort could make a request after the "
                    "shift; give at least one cohort a positive multiplier"
                )
            _normalise(self, "target", target)

    def validate(self, config, num_cohorts):
        if self.target is not None and len(self.target) != config.num_cohorts:
            raise ValueError(
                f"target needs one activity multiplier per initial cohort (num_cohorts="
                f"{config.num_cohorts}), got {len(self.target)}: {list(self.target)}"
            )

    def prepare(self, config, users, items, memory, rng):
        memory["num_initial"] = config.num_cohorts
        target = self._target(config.num_cohorts)
        populated = np.bincount(users.cohort, minlength=len(users.cohort_centres))
        if not (populated[: len(target)] * target).any():
            raise ValueError(
                f"after the cohort shift only cohorts without users would make requests "
                f"(target={list(target)}, users per cohort {populated.tolist()}); raise "
                f"num_users or give a populated cohort a positive target"
            )

    def _target(self, n: int) -> np.ndarray:
        if self.target is None:
            return np.where(np.arange(n) < n // 2, 0.2, 1.8)
        return np.asarray(self.target, dtype=np.float64)

    def _times(self) -> np.ndarray:
        steps = min(self.steps, self.duration)
        return _step_times(self.start, self.duration, steps)[:-1]

    def advance(self, users, items, memory, t0, t1, rng):
        times = self._times()
        crossed = _crossed_steps(times, t0, t1)
        if not crossed:
            return []
        steps = len(times)
        if "initial" not in memory:
            memory["initial"] = users.cohort_activity.copy()
        initial = memory["initial"]
        n = memory["num_initial"]
        target = self._target(n)
        progress = (crossed[-1] + 1) / steps
        users.cohort_activity[:n] = (1 - progress) * initial[:n] + progress * target
        if crossed[-1] != steps - 1:
            return []
        final = users.cohort_activity.copy()
        unshifted = final.copy()  # other cohorts (a new one) keep theirs: only this change counts
        unshifted[:n] = initial[:n]
        done = int(times[-1])
        before = cohort_request_shares(users, done, unshifted)
        after = cohort_request_shares(users, done, final)
        tv = 0.5 * np.abs(after - before).sum()
        cohorts = tuple(int(c) for c in np.flatnonzero(target != initial[:n]))
        return [DriftEvent(self.start, self.kind, float(tv), cohorts)]

    def boundaries(self, until):
        return [self.start] if self.start <= until else []


@dataclass(frozen=True)
class NewCohort(DriftProcess):
    """At clock ``at`` a new cohort, with a fresh random taste, joins: a ``fraction`` of the
    population (reserved when the world is drawn, invisible before) arrives at once.

    Its users' tastes are drawn around the new cohort's centre and their observable features
    come from those tastes, as everyone else's do. The cohort's activity multiplier is 0 until
    ``at`` and 1 from then on, so running sessions make room for it at once (see
    ``driftrec.simulators.sessions``). Event magnitude: ``fraction``.
    """

    at: int
    fraction: float = 0.2
    kind: ClassVar[str] = "new_cohort"
    added_cohorts: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _time_param(self, "at")
        _normalise(self, "fraction", check_fraction("fraction", self.fraction, open_above=True))

    def validate(self, config, num_cohorts):
        if round(self.fraction * config.num_users) >= config.num_users:
            raise ValueError(
                f"fraction={self.fraction} of num_users={config.num_users} leaves nobody for "
                "the cohorts present before the new one arrives; lower fraction or raise num_users"
            )

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
        users.features[members] = users.observe(members, config.feature_noise, rng)
        users.arrival[members] = self.at
        users.cohort_activity[cohort] = 0.0
        if not (users.arrival == 0).any():  # tiny worlds: someone must be there at t=0
            users.arrival[np.flatnonzero(users.cohort != cohort)[0]] = 0
        memory["cohort"] = cohort

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        users.cohort_activity[memory["cohort"]] = 1.0
        return [DriftEvent(self.at, self.kind, self.fraction, (memory["cohort"],))]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


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

    def __post_init__(self) -> None:
        _time_param(self, "every")
        _normalise(self, "fraction", check_fraction("fraction", self.fraction))

    def validate(self, config, num_cohorts):
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

    def advance(self, users, items, memory, t0, t1, rng):
        events = []
        for j in _crossed(t0, t1, self.every, self.every):
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

    def __post_init__(self) -> None:
        _time_param(self, "at")
        _normalise(self, "fraction", check_fraction("fraction", self.fraction))
        _normalise(self, "scale", check_real("scale", self.scale, low=0.0))

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

    Every ``report_every`` requests an event reports how far present users' preferences moved
    since the previous report: ``similarity`` is their mean cosine similarity (1: nothing
    moved), ``magnitude`` is ``1 - similarity``.
    """

    strength: float = 0.05
    report_every: int = 20_000
    kind: ClassVar[str] = "feedback_loop"

    def __post_init__(self) -> None:
        _normalise(self, "strength", check_real("strength", self.strength, low=0.0))
        _time_param(self, "report_every")

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
            similarity = float(np.clip(cos.mean(), -1.0, 1.0)) if len(cos) else 1.0
            events.append(_preference_event(t, self.kind, similarity))
            memory["reference"] = users.theta.copy()
        return events


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
        _time_param(self, "start")
        _time_param(self, "end")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        for name in ("flip_prob", "bot_fraction"):
            value = check_fraction(name, getattr(self, name), closed_below=True)
            _normalise(self, name, value)

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

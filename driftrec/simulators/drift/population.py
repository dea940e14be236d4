"""Population drift: who makes the requests changes (alternating populations, a shifting cohort
mix, a new cohort), while nobody's taste does."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift.base import (
    DriftEvent,
    DriftProcess,
    Memory,
    check_cohorts,
    periodic_indices,
    set_param,
    step_indices,
    step_times,
    steps_param,
    time_param,
)
from driftrec.simulators.population import ItemCatalogue, UserPopulation, unit_rows
from driftrec.validation import check_fraction, check_integer_tuple, check_real_tuple

__all__ = ["AlternatingPopulation", "CohortMixShift", "NewCohort", "cohort_request_shares"]


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
    touches: ClassVar[frozenset[str]] = frozenset({"users.cohort_activity"})

    def __post_init__(self) -> None:
        time_param(self, "period")
        set_param(
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
            set_param(self, "groups", groups)

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        if self.groups is None:
            if num_cohorts < 2:
                raise ValueError(
                    f"an alternating population needs at least 2 cohorts (even ones active in "
                    f"A, odd ones in B), got num_cohorts={num_cohorts}"
                )
            return
        for i, group in enumerate(self.groups):
            check_cohorts(f"{self.kind} groups[{i}]", group, num_cohorts)

    def _groups(self, users: UserPopulation) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.groups or _split_cohorts(len(users.cohort_centres))

    def _activate(self, users: UserPopulation, phase: int) -> None:
        on, off = self._groups(users)
        if phase % 2:
            on, off = off, on
        users.cohort_activity[list(on)] = 1.0
        users.cohort_activity[list(off)] = self.leak

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
        for i, group in enumerate(self._groups(users)):
            if not np.isin(users.cohort[users.arrival == 0], group).any():
                raise ValueError(
                    f"no user of group {i} (cohorts {list(group)}) is present at t=0, so its "
                    f"regime would have nobody to serve; raise num_users (now "
                    f"{config.num_users}) or lower num_cohorts (now {config.num_cohorts})"
                )
        self._activate(users, 0)

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
        for j in periodic_indices(t0, t1, self.period, self.period):
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

    def boundaries(self, until: int) -> list[int]:
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

    Events: ``cohort_shift`` at ``start`` and, when the shift has more than one step,
    ``cohort_shift_end`` at its last step. Each magnitude is the total-variation distance between
    the per-cohort request shares under the old and the new (target) multipliers, over the users
    present at the event's clock: the size planned at the start, the size realised at the end
    (0: no change, 1: disjoint).
    """

    start: int
    duration: int = 1
    target: tuple[float, ...] | None = None
    steps: int = 20
    kind: ClassVar[str] = "cohort_shift"
    touches: ClassVar[frozenset[str]] = frozenset({"users.cohort_activity"})

    def __post_init__(self) -> None:
        time_param(self, "start")
        time_param(self, "duration")
        steps_param(self)
        if self.target is not None:
            # Relative activities: a million to one is already one cohort making every request.
            target = check_real_tuple("target", self.target, low=0.0, high=1e6)
            if not any(target):
                raise ValueError(
                    "target multipliers are all 0: no cohort could make a request after the "
                    "shift; give at least one cohort a positive multiplier"
                )
            set_param(self, "target", target)

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        if self.target is not None and len(self.target) != config.num_cohorts:
            raise ValueError(
                f"target needs one activity multiplier per initial cohort (num_cohorts="
                f"{config.num_cohorts}), got {len(self.target)}: {list(self.target)}"
            )

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
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
        return step_times(self.start, self.duration, steps)[:-1]

    def advance(
        self,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        t0: int,
        t1: int,
        rng: np.random.Generator,
    ) -> list[DriftEvent]:
        times = self._times()
        crossed = step_indices(times, t0, t1)
        if not crossed:
            return []
        steps = len(times)
        if "initial" not in memory:
            memory["initial"] = users.cohort_activity.copy()
        initial = memory["initial"]
        n = memory["num_initial"]
        target = self._target(n)
        progress = (crossed[-1] + 1) / steps
        cohorts = tuple(int(c) for c in np.flatnonzero(target != initial[:n]))
        events = []
        if crossed[0] == 0:  # the shift starts: its planned size over the users present now
            planned = users.cohort_activity.copy()
            planned[:n] = target
            tv = self._tv(users, self.start, initial, planned, n)
            events.append(DriftEvent(self.start, self.kind, tv, cohorts))
        users.cohort_activity[:n] = (1 - progress) * initial[:n] + progress * target
        if crossed[-1] == steps - 1 and steps > 1:  # done: the size realised, over users now
            done = int(times[-1])
            tv = self._tv(users, done, initial, users.cohort_activity, n)
            events.append(DriftEvent(done, self.kind + "_end", tv, cohorts))
        return events

    @staticmethod
    def _tv(users: UserPopulation, t: int, initial: np.ndarray, final: np.ndarray, n: int) -> float:
        """TV distance of request shares at ``t`` between the initial and ``final`` multipliers
        of the first ``n`` cohorts (other cohorts, such as a new one, keep theirs)."""
        after = np.array(final, dtype=np.float64)
        before = after.copy()
        before[:n] = initial[:n]
        share_before = cohort_request_shares(users, t, before)
        share_after = cohort_request_shares(users, t, after)
        return float(0.5 * np.abs(share_after - share_before).sum())

    def boundaries(self, until: int) -> list[int]:
        return [self.start] if self.start <= until else []

    def no_op(self, config: WorldConfig) -> DriftProcess:
        return replace(self, target=(1.0,) * config.num_cohorts)


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
    touches: ClassVar[frozenset[str]] = frozenset({"users.cohort_activity"})
    added_cohorts: ClassVar[int] = 1

    def __post_init__(self) -> None:
        time_param(self, "at")
        set_param(self, "fraction", check_fraction("fraction", self.fraction, open_above=True))

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        if max(1, round(self.fraction * config.num_users)) >= config.num_users:  # as prepare
            raise ValueError(
                f"fraction={self.fraction} of num_users={config.num_users} leaves nobody for "
                "the cohorts present before the new one arrives; lower fraction or raise num_users"
            )

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
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
        users.cohort_activity[memory["cohort"]] = 1.0
        return [DriftEvent(self.at, self.kind, self.fraction, (memory["cohort"],))]

    def boundaries(self, until: int) -> list[int]:
        return [self.at] if self.at <= until else []

"""The drift-process contract: the event a change reports, the hooks a process implements, and
the helpers every process shares.

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
- ``corrupt_feedback`` with the clicks the agent is about to observe (noise, bots, delays).

A process declares the state it may change (``touches``: names such as ``"users.theta"``) and,
where its severity knob has a "no change" setting, how to build that no-op (``no_op``); the
generic contract :func:`driftrec.simulators.drift.check_drift_process` holds every process to
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.population import ActivitySampler, ItemCatalogue, UserPopulation
from driftrec.validation import check_integer, check_integer_tuple, check_real, check_time

if TYPE_CHECKING:
    from driftrec.simulators.retrieval import Retrieval

__all__ = [
    "CATALOGUE_STATE",
    "PREFERENCE_KINDS",
    "REQUESTER_STATE",
    "Dormant",
    "DriftEvent",
    "DriftProcess",
    "Memory",
    "check_cohorts",
    "check_processes",
    "cohort_ids",
    "cohorts_param",
    "periodic_indices",
    "preference_event",
    "rebuild_after",
    "set_param",
    "similarity_param",
    "step_indices",
    "step_times",
    "steps_param",
    "time_param",
]

Memory = dict[str, Any]
"""A process's mutable state, held by the world (pickled and copied with it)."""


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


def preference_event(t: int, kind: str, similarity: float, cohorts=()) -> DriftEvent:
    return DriftEvent(t, kind, 1.0 - similarity, tuple(cohorts), 0, similarity)


def cohort_ids(cohorts: tuple[int, ...] | None, users: UserPopulation) -> tuple[int, ...]:
    """The affected cohorts (all of them for None); validated when the world was configured."""
    return tuple(range(len(users.cohort_centres))) if cohorts is None else cohorts


def check_cohorts(name: str, cohorts: tuple[int, ...] | None, num_cohorts: int) -> None:
    if cohorts is None:
        return
    unknown = [c for c in cohorts if c >= num_cohorts]
    if unknown:
        raise ValueError(
            f"{name}: cohorts {unknown} do not exist; this world has cohorts "
            f"0..{num_cohorts - 1} (num_cohorts={num_cohorts}, including cohorts that drift "
            f"processes add)"
        )


def set_param(process: object, name: str, value: object) -> None:
    """Store a normalised parameter value on a frozen dataclass."""
    object.__setattr__(process, name, value)


def cohorts_param(process: object, name: str = "cohorts") -> None:
    value = getattr(process, name)
    if value is not None:
        set_param(process, name, check_integer_tuple(name, value, minimum=0, distinct=True))


def similarity_param(process: Any) -> None:
    """``similarity`` is a cosine: a real number in [-1, 1]."""
    value = check_real("similarity", process.similarity)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"similarity is a cosine and must be in [-1, 1], got {value}")
    set_param(process, "similarity", value)


def time_param(process: object, name: str, minimum: int = 1) -> None:
    """A clock or a duration in requests, at most :data:`driftrec.validation.MAX_TIME`."""
    set_param(process, name, check_time(name, getattr(process, name), minimum=minimum))


MAX_STEPS = 10_000
"""The most steps a gradual change may take: each is a change of the world's state (a gradual
shift's 10,000 steps rotate 8 cohorts in about 4 s in all)."""


def steps_param(process: object, name: str = "steps") -> None:
    """A number of steps of a gradual change: an integer in [1, :data:`MAX_STEPS`]."""
    value = check_integer(name, getattr(process, name), minimum=1, maximum=MAX_STEPS)
    set_param(process, name, value)


def periodic_indices(t0: int, t1: int, start: int, every: int) -> range:
    """Indices j >= 0 with start + j * every in (t0, t1]."""
    first = max(0, (t0 - start) // every + 1)
    last = (t1 - start) // every if t1 >= start else -1
    return range(first, last + 1)


def step_times(start: int, duration: int, steps: int) -> np.ndarray:
    """(steps + 1,) clocks ``start + floor(j * duration / steps)``, j = 0..steps: evenly spread,
    the last exactly at ``start + duration`` whatever the divisibility."""
    # j * duration // steps as j * q + j * r // steps (duration = q * steps + r): no product
    # exceeds duration or steps**2, so nothing overflows int64 at any valid time.
    q, r = divmod(duration, steps)
    j = np.arange(steps + 1, dtype=np.int64)
    return start + j * q + (j * r) // steps


def step_indices(times: np.ndarray, t0: int, t1: int) -> list[int]:
    """Indices j with t0 < times[j] <= t1."""
    lo, hi = np.searchsorted(times, [t0, t1], side="right")
    return list(range(int(lo), int(hi)))


CATALOGUE_STATE = frozenset({"items.arrival", "items.retirement"})
"""State that decides which items are live: a process that changes it makes the retriever
rebuild its pools (after each advance that fires an event, and after each ``on_consumption``)."""

REQUESTER_STATE = frozenset({"users.activity", "users.arrival", "users.alive", "users.cohort"})
"""State that decides who makes requests: a process that changes it makes the world's
activity sampler rebuild its tables (``users.cohort_activity`` is tracked by the sampler)."""


@dataclass(frozen=True)
class DriftProcess:
    """Base of all drift processes: every hook is a no-op unless overridden."""

    kind: ClassVar[str] = "none"
    touches: ClassVar[frozenset[str]] = frozenset()
    """The state the process may change in ``advance`` and ``on_consumption``: names such as
    ``"users.theta"`` or ``"items.quality"`` (its ``memory`` is its own; ``prepare`` may set
    up the world as it needs)."""
    added_cohorts: ClassVar[int] = 0
    """Cohorts the process adds to the world when it is drawn (their ids follow the initial
    ones, in process order)."""
    rebuilds: ClassVar[bool] = False
    """Whether :meth:`on_consumption` may change state the world derives its caches from: the
    class overrides it and ``touches`` holds :data:`CATALOGUE_STATE` or
    :data:`REQUESTER_STATE`. Set for every subclass, so that serving asks once per process,
    not once per step (and a process that only changes the catalogue when it fires, such as
    catalog churn, does not have retrieval rebuilt after every batch with clicks)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        consumes = cls.on_consumption is not DriftProcess.on_consumption
        cls.rebuilds = consumes and bool(cls.touches & (CATALOGUE_STATE | REQUESTER_STATE))

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
        self,
        t: int,
        click_slot: np.ndarray,
        shown: np.ndarray,
        memory: Memory,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Return the clicked slots (n,) that the agent observes (-1: none) for the requests
        served at clocks ``t, t+1, ...``; ``memory`` lets a process hold feedback back (delayed
        feedback)."""
        return click_slot

    def boundaries(self, until: int) -> list[int]:
        """Scheduled regime changes at or before ``until``."""
        return []

    def no_op(self, config: WorldConfig) -> DriftProcess | None:
        """The same process with its severity set to "no change" (every event's magnitude is
        then 0), or None if the kind has no such setting."""
        return None


def rebuild_after(process: DriftProcess, retrieval: Retrieval, activity: ActivitySampler) -> None:
    """Tell the world's retriever and activity sampler that ``process`` may have changed what
    they derive their state from, as its ``touches`` declares (which the drift contract
    checks): the catalogue's live items, or who makes requests."""
    if process.touches & CATALOGUE_STATE:
        retrieval.catalogue_changed()
    if process.touches & REQUESTER_STATE:
        activity.changed()


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
class Dormant(DriftProcess):
    """A process that is set up but never fires: ``process`` validates and prepares the world
    exactly as it would (same draws from the world stream, same reserved users, same initial
    activity), then changes nothing. A world whose processes are all dormant is the *no-drift
    twin* of the drifting one: identical up to the first drift event, the same seed and actions
    giving the same requests and rewards (see ``driftrec.simulators.scenarios.WorldSpec.twin``).
    """

    process: DriftProcess
    kind: ClassVar[str] = "dormant"

    @property
    def added_cohorts(self) -> int:  # type: ignore[override]
        return self.process.added_cohorts

    def validate(self, config: WorldConfig, num_cohorts: int) -> None:
        self.process.validate(config, num_cohorts)

    def prepare(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        memory: Memory,
        rng: np.random.Generator,
    ) -> None:
        self.process.prepare(config, users, items, memory, rng)

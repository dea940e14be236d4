"""Named scenario presets: which drift processes run, when, and how strongly.

Every preset is a function whose keyword arguments are its documented parameters (defaults are
sized for a horizon of about 200,000 requests); ``make_scenario(name, **params)`` builds it and
rejects unknown names or parameters with the list of valid ones. See ``docs/scenarios.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftrec.registry import Registry
from driftrec.simulators.choice_checks import check_for_world
from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift import (
    AlternatingPopulation,
    CatalogChurn,
    ClickNoise,
    CohortMixShift,
    Dormant,
    DriftProcess,
    FeedbackLoop,
    GradualShift,
    IncrementalDrift,
    NewCohort,
    QualityShift,
    RecurringShift,
    SuddenShift,
    check_processes,
)
from driftrec.simulators.regimes import RegimeSchedule
from driftrec.simulators.streams import SeedLike, check_seed
from driftrec.simulators.world import World
from driftrec.validation import check_choice, check_fraction, check_time

__all__ = [
    "SCENARIOS",
    "Scenario",
    "WorldSpec",
    "build_world",
    "make_scenario",
    "resolve_world",
    "scenario_parameters",
]


@dataclass(frozen=True)
class Scenario:
    """A resolved preset: its drift processes, world settings it changes, and regime slicing."""

    name: str
    processes: tuple[DriftProcess, ...] = ()
    world_defaults: dict[str, Any] = field(default_factory=dict)
    regime_every: int | None = None

    def __post_init__(self) -> None:
        if self.regime_every is not None:
            every = check_time("regime_every", self.regime_every)
            object.__setattr__(self, "regime_every", every)


SCENARIOS: Registry[Scenario] = Registry("scenario")
"""Scenario presets by name; each builder's keyword parameters are the preset's parameters.
Register your own with ``@SCENARIOS.register()``: ``build_world``, ``resolve_world`` and
``driftrec list`` know it at once, and (once ``driftrec.envs`` is imported, as ``import driftrec``
does) so does Gymnasium: ``gymnasium.make(driftrec.envs.env_id(name))``."""

_preset = SCENARIOS.register()


@_preset
def stationary() -> Scenario:
    """Nothing drifts (beyond user arrivals, churn and boredom): the control condition."""
    return Scenario("stationary")


@_preset
def sudden(
    at: int = 100_000, similarity: float = 0.0, cohorts: tuple[int, ...] | None = None
) -> Scenario:
    """At ``at`` every affected cohort's preferences jump to cos(old, new) = ``similarity``."""
    return Scenario("sudden", (SuddenShift(at, similarity, cohorts),))


@_preset
def gradual(
    start: int = 60_000,
    duration: int = 80_000,
    similarity: float = 0.0,
    cohorts: tuple[int, ...] | None = None,
) -> Scenario:
    """From ``start``, preferences rotate evenly over ``duration`` requests to ``similarity``."""
    return Scenario("gradual", (GradualShift(start, duration, similarity, cohorts),))


@_preset
def incremental(
    interval: int = 10_000, similarity: float = 0.95, regime_every: int = 50_000
) -> Scenario:
    """A random walk: every ``interval`` requests each cohort's preferences rotate to
    cos = ``similarity``; regimes are slices of ``regime_every`` requests."""
    return Scenario(
        "incremental", (IncrementalDrift(interval, similarity),), regime_every=regime_every
    )


@_preset
def recurring(
    period: int = 50_000,
    mode: str = "population",
    similarity: float | None = None,
    leak: float | None = None,
) -> Scenario:
    """Regimes A -> B -> A -> ... every ``period`` requests.

    ``mode="population"``: the active population alternates (even cohorts, then odd ones; the
    inactive group keeps ``leak`` of its activity, default 0); nobody's taste changes. ``mode=
    "preferences"``: the same users alternate between two tastes with cos(A, B) = ``similarity``
    (default 0). A parameter of the other mode is an error, not silently ignored.
    """
    mode = check_choice("mode", mode, ("population", "preferences"))
    if mode == "population":
        if similarity is not None:
            raise ValueError(
                "similarity applies to mode='preferences' only (the same users alternate "
                "between two tastes); with mode='population' nobody's taste changes: drop "
                "similarity or set mode='preferences'"
            )
        process = AlternatingPopulation(period, leak=0.0 if leak is None else leak)
        return Scenario("recurring", (process,))
    if leak is not None:
        raise ValueError(
            "leak applies to mode='population' only (the inactive group's remaining activity); "
            "drop leak or set mode='population'"
        )
    return Scenario(
        "recurring", (RecurringShift(period, 0.0 if similarity is None else similarity),)
    )


@_preset
def cohort_shift(
    shift_at: int = 60_000,
    shift_duration: int = 20_000,
    target: tuple[float, ...] | None = None,
    new_cohort_at: int = 120_000,
    new_cohort_fraction: float = 0.2,
) -> Scenario:
    """The cohort mix moves (default: the first half of the cohorts fades to 0.2 of its activity,
    the second half rises to 1.8) from ``shift_at`` over ``shift_duration``; a new cohort with a
    fresh taste, ``new_cohort_fraction`` of the population, arrives at ``new_cohort_at``.
    ``target`` gives one activity multiplier per initial cohort (``num_cohorts`` values); the
    new cohort is not part of it."""
    shift_at = check_time("shift_at", shift_at)
    shift_duration = check_time("shift_duration", shift_duration)
    new_cohort_at = check_time("new_cohort_at", new_cohort_at)
    new_cohort_fraction = check_fraction(
        "new_cohort_fraction", new_cohort_fraction, open_above=True
    )
    return Scenario(
        "cohort_shift",
        (
            CohortMixShift(shift_at, shift_duration, target),
            NewCohort(new_cohort_at, new_cohort_fraction),
        ),
    )


@_preset
def catalog_churn(
    every: int = 20_000,
    fraction: float = 0.1,
    quality_shift_at: int = 100_000,
    quality_shift_fraction: float = 0.2,
    initial_item_fraction: float = 0.5,
) -> Scenario:
    """Every ``every`` requests a ``fraction`` of the live items retire and as many new ones are
    released; at ``quality_shift_at`` the quality of ``quality_shift_fraction`` of the live items
    is redrawn. Half of the catalogue starts in reserve (``initial_item_fraction``)."""
    quality_shift_at = check_time("quality_shift_at", quality_shift_at)
    quality_shift_fraction = check_fraction("quality_shift_fraction", quality_shift_fraction)
    return Scenario(
        "catalog_churn",
        (CatalogChurn(every, fraction), QualityShift(quality_shift_at, quality_shift_fraction)),
        {"initial_item_fraction": initial_item_fraction},
    )


@_preset
def feedback_loop(
    strength: float = 0.05, report_every: int = 20_000, regime_every: int = 50_000
) -> Scenario:
    """Preferences move toward what users click (strength per click); the recommender shapes
    its own data. Regimes are slices of ``regime_every`` requests."""
    return Scenario(
        "feedback_loop", (FeedbackLoop(strength, report_every),), regime_every=regime_every
    )


@_preset
def noisy(
    start: int = 50_000, end: int = 150_000, flip_prob: float = 0.1, bot_fraction: float = 0.1
) -> Scenario:
    """Between ``start`` and ``end`` observed clicks are corrupted (flips and bot traffic);
    true preferences stay put, so only the feedback drifts."""
    return Scenario("noisy", (ClickNoise(start, end, flip_prob, bot_fraction),))


def scenario_parameters(name: str) -> dict[str, Any]:
    """The parameters of scenario ``name`` and their defaults."""
    return SCENARIOS.parameters(name)


def make_scenario(name: str, **params: Any) -> Scenario:
    """Build preset ``name`` with ``params`` overriding its defaults."""
    return SCENARIOS.build(name, **params)


def split_parameters(name: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into (world settings, scenario parameters); reject the rest."""
    scenario_keys = set(scenario_parameters(name))
    world_keys = set(WorldConfig.field_names())
    unknown = sorted(set(params) - scenario_keys - world_keys)
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for scenario {name!r}. Scenario parameters: "
            f"{sorted(scenario_keys) or 'none'}; world parameters: {sorted(world_keys)}"
        )
    world = {k: v for k, v in params.items() if k in world_keys and k not in scenario_keys}
    scenario = {k: v for k, v in params.items() if k in scenario_keys}
    return world, scenario


@dataclass(frozen=True)
class WorldSpec:
    """Everything that fixes a world but its seed, validated: drawing it cannot fail on a
    parameter (``World.draw(spec.config, spec.processes, seed, spec.regime_every)``)."""

    config: WorldConfig
    processes: tuple[DriftProcess, ...]
    regime_every: int | None

    def build(self, seed: SeedLike = None) -> World:
        """Draw the world from ``seed``."""
        return World.draw(self.config, self.processes, seed=seed, regime_every=self.regime_every)

    def scheduled_changes(self, until: int) -> list[int]:
        """Clocks up to ``until`` at which a process schedules a change (sudden, gradual,
        recurring, cohort shift, new cohort, quality shift, click noise), sorted; continuous
        drift (incremental, feedback loop, churn) schedules none."""
        return sorted({b for p in self.processes for b in p.boundaries(until)})

    def regime_boundaries(self, until: int) -> list[int]:
        """Clocks up to ``until`` at which a new regime starts: scheduled changes, or slices of
        ``regime_every`` requests for continuous drift (as ``World.regime_boundaries``)."""
        return RegimeSchedule(self.processes, self.regime_every).boundaries(until)

    def twin(self) -> WorldSpec:
        """The no-drift twin: the same world with every drift process dormant (set up, never
        firing). Drawn from the same seed it reproduces this world exactly up to the first drift
        event; after it, the twin is what the world would have been without the drift."""
        dormant = tuple(Dormant(p) for p in self.processes)
        return WorldSpec(self.config, dormant, self.regime_every)


def resolve_world(scenario: str = "stationary", **params: Any) -> WorldSpec:
    """Validate preset ``scenario`` with ``params`` (world settings and scenario parameters)
    against each other, without drawing anything; every bad value fails here, naming it.

    Example:
        >>> resolve_world("cohort_shift", num_cohorts=4, target=(1, 1, 1))
        Traceback (most recent call last):
        ...
        ValueError: target needs one activity multiplier per initial cohort (num_cohorts=4), ...
    """
    world_params, scenario_params = split_parameters(scenario, params)
    spec = make_scenario(scenario, **scenario_params)
    config = WorldConfig().replace(**{**spec.world_defaults, **world_params})
    config.check_fits_in_memory()
    check_processes(config, spec.processes)
    check_for_world(config)  # a user's choice model, refused before anything is drawn
    return WorldSpec(config, spec.processes, spec.regime_every)


def build_world(scenario: str = "stationary", seed: SeedLike = None, **params: Any) -> World:
    """A world for preset ``scenario``; ``params`` mixes world settings and scenario parameters.

    Example:
        >>> world = build_world("sudden", seed=1, at=500, num_users=300, num_items=400)
        >>> world.regime_boundaries(10_000)
        [500]
    """
    return resolve_world(scenario, **params).build(check_seed(seed))


@_preset
def monotony(monotony_boredom: float = 1.0, num_topics: int = 8) -> Scenario:
    """Nothing drifts, but monotonous slates bore users: every item after the first of one topic
    in a slate adds ``monotony_boredom`` to the user's boredom with that topic. Boredom lowers
    the topic's utility until it decays, so the myopic oracle (best slate for the current
    request) shortens sessions; a policy that diversifies its slates earns more per session
    (long-term value; ``docs/rl.md`` has the measured gap). ``num_topics`` is smaller than the
    default so that candidate lists hold several items of a topic."""
    return Scenario(
        "monotony", (), {"monotony_boredom": monotony_boredom, "num_topics": num_topics}
    )

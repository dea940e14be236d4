"""The simulated world: users, items, drift and choice. NumPy only (no gymnasium, no torch).

A :class:`World` is composed of parts: the population and catalogue
(:mod:`~driftrec.simulators.population`), candidate retrieval
(:mod:`~driftrec.simulators.retrieval`), a choice model (:mod:`~driftrec.simulators.choice`),
drift processes (:mod:`~driftrec.simulators.drift`), a regime schedule and random streams.
``World.draw(config, processes, seed)`` draws one; ``build_world(scenario, seed, **params)``
draws a named preset. Probe sets and logged data are in :mod:`~driftrec.simulators.probes` and
:mod:`~driftrec.simulators.logged`.
"""

from driftrec.simulators.choice import (
    CHOICE_MODELS,
    CascadeChoice,
    ChoiceModel,
    MultinomialLogitChoice,
)
from driftrec.simulators.choice_checks import check_choice_model
from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift import (
    AlternatingPopulation,
    CatalogChurn,
    ClickNoise,
    CohortMixShift,
    Dormant,
    DriftEvent,
    DriftProcess,
    FeedbackLoop,
    GradualShift,
    IncrementalDrift,
    NewCohort,
    QualityShift,
    RecurringShift,
    SuddenShift,
    check_drift_process,
)
from driftrec.simulators.logged import LoggedInteractions, log_interactions
from driftrec.simulators.population import ActivitySampler, ItemCatalogue, UserPopulation
from driftrec.simulators.probes import ProbeSet, probe_set
from driftrec.simulators.regimes import RegimeSchedule
from driftrec.simulators.requests import Requests, Response
from driftrec.simulators.retrieval import RETRIEVERS, PooledRetrieval, Retrieval
from driftrec.simulators.scenarios import (
    SCENARIOS,
    Scenario,
    build_world,
    make_scenario,
    scenario_parameters,
)
from driftrec.simulators.sessions import SessionBatch, SessionStep
from driftrec.simulators.streams import Streams
from driftrec.simulators.world import World

__all__ = [
    "CHOICE_MODELS",
    "RETRIEVERS",
    "SCENARIOS",
    "ActivitySampler",
    "AlternatingPopulation",
    "CascadeChoice",
    "CatalogChurn",
    "ChoiceModel",
    "ClickNoise",
    "CohortMixShift",
    "Dormant",
    "DriftEvent",
    "DriftProcess",
    "FeedbackLoop",
    "GradualShift",
    "IncrementalDrift",
    "ItemCatalogue",
    "LoggedInteractions",
    "MultinomialLogitChoice",
    "NewCohort",
    "PooledRetrieval",
    "ProbeSet",
    "QualityShift",
    "RecurringShift",
    "RegimeSchedule",
    "Requests",
    "Response",
    "Retrieval",
    "Scenario",
    "SessionBatch",
    "SessionStep",
    "Streams",
    "SuddenShift",
    "UserPopulation",
    "World",
    "WorldConfig",
    "build_world",
    "check_choice_model",
    "check_drift_process",
    "log_interactions",
    "make_scenario",
    "probe_set",
    "scenario_parameters",
]

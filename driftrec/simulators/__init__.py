"""The simulated world: users, items, drift and choice. NumPy only (no gymnasium, no torch)."""

from driftrec.simulators.choice import CascadeChoice, ChoiceModel, MultinomialLogitChoice
from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift import (
    AlternatingPopulation,
    CatalogChurn,
    ClickNoise,
    CohortMixShift,
    DriftEvent,
    DriftProcess,
    FeedbackLoop,
    GradualShift,
    IncrementalDrift,
    NewCohort,
    QualityShift,
    RecurringShift,
    SuddenShift,
)
from driftrec.simulators.population import ItemCatalogue, UserPopulation
from driftrec.simulators.scenarios import (
    SCENARIOS,
    Scenario,
    build_world,
    make_scenario,
    scenario_parameters,
)
from driftrec.simulators.sessions import SessionBatch, SessionStep
from driftrec.simulators.world import LoggedInteractions, ProbeSet, Requests, Response, World

__all__ = [
    "SCENARIOS",
    "AlternatingPopulation",
    "CascadeChoice",
    "CatalogChurn",
    "ChoiceModel",
    "ClickNoise",
    "CohortMixShift",
    "DriftEvent",
    "DriftProcess",
    "FeedbackLoop",
    "GradualShift",
    "IncrementalDrift",
    "ItemCatalogue",
    "LoggedInteractions",
    "MultinomialLogitChoice",
    "NewCohort",
    "ProbeSet",
    "QualityShift",
    "RecurringShift",
    "Requests",
    "Response",
    "Scenario",
    "SessionBatch",
    "SessionStep",
    "SuddenShift",
    "UserPopulation",
    "World",
    "WorldConfig",
    "build_world",
    "make_scenario",
    "scenario_parameters",
]

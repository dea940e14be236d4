"""Drift processes: how the true world changes over the world clock.

One family per module, each process a frozen dataclass of parameters behind the hooks of
:class:`~driftrec.simulators.drift.base.DriftProcess`:

- :mod:`~driftrec.simulators.drift.preferences`: the same users' tastes change (``SuddenShift``,
  ``GradualShift``, ``IncrementalDrift``, ``RecurringShift``);
- :mod:`~driftrec.simulators.drift.population`: who makes the requests changes
  (``AlternatingPopulation``, ``CohortMixShift``, ``NewCohort``);
- :mod:`~driftrec.simulators.drift.catalogue`: items retire, arrive, change quality
  (``CatalogChurn``, ``QualityShift``);
- :mod:`~driftrec.simulators.drift.feedback`: consumption pulls tastes (``FeedbackLoop``), the
  observed clicks are corrupted (``ClickNoise``).

:func:`check_drift_process` is the contract every process passes (a test runs it over every
process and every scenario preset); a new kind of drift is a new dataclass that passes it.
"""

from driftrec.simulators.drift.base import (
    PREFERENCE_KINDS,
    Dormant,
    DriftEvent,
    DriftProcess,
    Memory,
    check_processes,
    rebuild_after,
)
from driftrec.simulators.drift.catalogue import CatalogChurn, QualityShift
from driftrec.simulators.drift.checks import check_drift_process
from driftrec.simulators.drift.feedback import ClickNoise, FeedbackLoop
from driftrec.simulators.drift.population import (
    AlternatingPopulation,
    CohortMixShift,
    NewCohort,
    cohort_request_shares,
)
from driftrec.simulators.drift.preferences import (
    GradualShift,
    IncrementalDrift,
    RecurringShift,
    SuddenShift,
    random_plane_basis,
    rotation,
)

__all__ = [
    "PREFERENCE_KINDS",
    "AlternatingPopulation",
    "CatalogChurn",
    "ClickNoise",
    "CohortMixShift",
    "Dormant",
    "DriftEvent",
    "DriftProcess",
    "FeedbackLoop",
    "GradualShift",
    "IncrementalDrift",
    "Memory",
    "NewCohort",
    "QualityShift",
    "RecurringShift",
    "SuddenShift",
    "check_drift_process",
    "check_processes",
    "cohort_request_shares",
    "random_plane_basis",
    "rebuild_after",
    "rotation",
]

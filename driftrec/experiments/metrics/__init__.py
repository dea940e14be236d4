"""The metrics library of the experiments layer (definitions and a worked example in
``docs/metrics.md``): pure functions over NumPy arrays, one definition each.

- curves: :class:`Curve` (per-request piecewise-constant curve over the world clock) and the
  streaming :class:`CurveRecorder` (``update`` / ``result`` / ``reset``);
- adaptation after a drift event: :func:`recovery` / :func:`recoveries` -> :class:`Recovery`
  (recovery time, dip, adaptation regret; against the pre-event level or the no-drift twin);
- forgetting on probes: :func:`regime_matrix`, :func:`acc`, :func:`bwt`, :func:`fwt`,
  :func:`forgetting`, :func:`forgetting_per_regime`, :func:`plasticity_gap`;
- ranking on probes: :func:`auc`, :func:`ranking_metrics`;
- sessions: the streaming :class:`SessionRecorder` (session return and length).
"""

from driftrec.experiments.metrics.adaptation import (
    RECOVERY_RTOL,
    Recovery,
    recoveries,
    recovery,
)
from driftrec.experiments.metrics.continual import (
    acc,
    bwt,
    forgetting,
    forgetting_per_regime,
    fwt,
    plasticity_gap,
    regime_matrix,
)
from driftrec.experiments.metrics.curves import QUANTITIES, Curve, CurveRecorder
from driftrec.experiments.metrics.ranking import (
    RANKING_METRICS,
    auc,
    average_ranks,
    ranking_metrics,
)
from driftrec.experiments.metrics.sessions import SessionRecorder

__all__ = [
    "QUANTITIES",
    "RANKING_METRICS",
    "RECOVERY_RTOL",
    "Curve",
    "CurveRecorder",
    "Recovery",
    "SessionRecorder",
    "acc",
    "auc",
    "average_ranks",
    "bwt",
    "forgetting",
    "forgetting_per_regime",
    "fwt",
    "plasticity_gap",
    "ranking_metrics",
    "recoveries",
    "recovery",
    "regime_matrix",
]

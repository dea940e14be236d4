"""Forgetting on probes (docs/metrics.md): the regime matrix R and the continual-learning
metrics over it (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory for Continual Learning":
ACC, BWT, FWT; Chaudhry et al. 2018, "Riemannian Walk for Incremental Learning": forgetting).

Regimes are 0-indexed here: ``R[i, j]`` (m, m) is the mean normalised expected reward of the
agent's greedy slates on regime ``j``'s probe, evaluated at the end of regime ``i``; the last
regime is ``m - 1``. The papers' 1-indexed formulas, rewritten:

- ``ACC = mean_j R[m-1, j]``
- ``BWT = mean_{j < m-1} (R[m-1, j] - R[j, j])``
- ``FWT = mean_{j >= 1} (R[j-1, j] - b[j])``, ``b[j]`` the random policy's value on probe ``j``
- ``f_j = max_{l < m-1} R[l, j] - R[m-1, j]`` for ``j < m-1``; forgetting ``= mean_j f_j``
- plasticity gap ``1 - R[j, j]``

With one regime (m = 1) BWT, FWT and forgetting have nothing to average: they are nan (and
:func:`forgetting_per_regime` is empty), never an error. NaN entries of R (a probe not
evaluated) propagate into every metric that reads them.
"""

from __future__ import annotations

import math

import numpy as np

from driftrec.experiments.metrics.curves import _clock_array

__all__ = [
    "acc",
    "bwt",
    "forgetting",
    "forgetting_per_regime",
    "fwt",
    "plasticity_gap",
    "regime_matrix",
]


def regime_matrix(P: np.ndarray, eval_t: np.ndarray, regime_ends: np.ndarray) -> np.ndarray:
    """``R`` (m, m) from the probe evaluations: ``R[i, j] = P[e_i, j]`` where ``e_i`` is the
    last evaluation at or before ``regime_ends[i]``.

    Args:
        P: (E, m) float, ``P[e, j]`` the mean normalised reward of greedy slates on regime
            ``j``'s probe at evaluation ``e`` (nan where a probe was not evaluated).
        eval_t: (E,) int, the evaluation clocks, strictly increasing.
        regime_ends: (m,) int, the clock at which each regime ends.

    Raises:
        ValueError: shapes that disagree, unsorted ``eval_t``, or a regime that ends before the
            first evaluation (the message names it).

    Example:
        >>> P = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
        >>> regime_matrix(P, np.array([10, 20, 30]), np.array([25, 30]))
        array([[0.3, 0.4],
               [0.5, 0.6]])
    """
    P = np.asarray(P, dtype=np.float64)
    eval_t = _clock_array("eval_t", eval_t)
    regime_ends = _clock_array("regime_ends", regime_ends)
    if P.ndim != 2 or eval_t.ndim != 1 or regime_ends.ndim != 1:
        raise ValueError(
            f"P must be (E, m), eval_t (E,), regime_ends (m,); got shapes {P.shape}, "
            f"{eval_t.shape}, {regime_ends.shape}"
        )
    if P.shape != (len(eval_t), len(regime_ends)) or len(regime_ends) == 0:
        raise ValueError(
            f"P must be (E, m) with E = len(eval_t) = {len(eval_t)} and m = len(regime_ends) "
            f"= {len(regime_ends)} >= 1, got {P.shape}"
        )
    if not (np.diff(eval_t) > 0).all():
        raise ValueError(f"eval_t must be strictly increasing, got {eval_t.tolist()}")
    last = np.searchsorted(eval_t, regime_ends, side="right") - 1
    missing = np.flatnonzero(last < 0)
    if len(missing):
        i = int(missing[0])
        first = f"at clock {eval_t[0]}" if len(eval_t) else "never made"
        raise ValueError(
            f"regime {i} ends at clock {regime_ends[i]}, before any evaluation (the first is "
            f"{first}): R[{i}, :] is undefined"
        )
    return P[last]


def _square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square (m, m) matrix, got shape {R.shape}")
    return R


def acc(R: np.ndarray) -> float:
    """Average accuracy ``mean_j R[m-1, j]``: the final agent on every regime's probe.

    Example:
        >>> acc(np.array([[0.9, 0.3], [0.6, 0.8]]))
        0.7
    """
    R = _square(R)
    return float(R[-1].mean())


def bwt(R: np.ndarray) -> float:
    """Backward transfer ``mean_{j < m-1} (R[m-1, j] - R[j, j])``: negative when learning
    later regimes lowered earlier ones; nan when m = 1."""
    R = _square(R)
    m = len(R)
    if m == 1:
        return math.nan
    return float((R[-1, :-1] - np.diag(R)[:-1]).mean())


def fwt(R: np.ndarray, baseline: np.ndarray) -> float:
    """Forward transfer ``mean_{j >= 1} (R[j-1, j] - b[j])``: how much better than random the
    agent serves a regime before it starts; nan when m = 1.

    Args:
        R: (m, m) regime matrix.
        baseline: (m,) ``b[j]``, the random policy's value on regime ``j``'s probe
            (``b[0]`` is not used).
    """
    R = _square(R)
    b = np.asarray(baseline, dtype=np.float64)
    if b.shape != (len(R),):
        raise ValueError(f"baseline must have shape ({len(R)},), got {b.shape}")
    if len(R) == 1:
        return math.nan
    return float((np.diag(R, k=1) - b[1:]).mean())


def forgetting_per_regime(R: np.ndarray) -> np.ndarray:
    """(m - 1,) ``f_j = max_{l < m-1} R[l, j] - R[m-1, j]`` for ``j < m-1`` (Chaudhry et al.
    2018): the best value regime ``j``'s probe ever had at a regime end before the last, minus
    its final value. As in the paper, ``l`` runs over all earlier regime ends, before ``j``
    too (with recurring regimes a probe may be served well before its regime comes round).
    Empty when m = 1."""
    R = _square(R)
    if len(R) == 1:
        return np.zeros(0)
    return R[:-1, :-1].max(axis=0) - R[-1, :-1]


def forgetting(R: np.ndarray) -> float:
    """Average forgetting ``mean_{j < m-1} f_j`` (see :func:`forgetting_per_regime`); nan
    when m = 1.

    Example:
        >>> forgetting(np.array([[0.9, 0.3], [0.6, 0.8]]))  # max(0.9) - 0.6
        0.30000000000000004
    """
    f = forgetting_per_regime(R)
    return float(f.mean()) if len(f) else math.nan


def plasticity_gap(R: np.ndarray) -> np.ndarray:
    """(m,) ``1 - R[j, j]``: how far the agent at the end of regime ``j`` is from the oracle on
    that regime's own probe (the oracle scores 1 by construction)."""
    return 1.0 - np.diag(_square(R))

"""Adaptation after a drift event (docs/metrics.md): recovery time, dip and adaptation regret,
against the pre-event level or against the agent's no-drift twin.

With ``rho`` the per-request normalised reward curve, an event at clock ``t_k``, window ``W``
and tolerance ``eps``, the *candidate clocks* are the edges ``t`` of ``rho`` with
``t_k + W <= t <= end`` (so every window ``[t - W, t)`` lies wholly after the event and
``tau_k >= W``: the curve's resolution is the clock's resolution); ``end`` is the censoring
point (the next event's clock or the horizon). With ``m(t)`` the mean of ``rho`` over
``[t - W, t)``:

- pre-event criterion: ``pre_k = mean rho over [t_k - W, t_k)``, recovered at the first
  candidate with ``m(t) >= (1 - eps) * pre_k``, ``dip = pre_k - min m(t)``;
- twin criterion (``reference``: the same agent and seed on the world without the scheduled
  drift, with ``r(t)`` its window mean): recovered at the first candidate with
  ``m(t) >= (1 - eps) * r(t)``, ``pre_k = r(first candidate)``,
  ``dip = max (r(t) - m(t))``;

the min / max running over the candidates up to the recovery clock (inclusive), or up to
``end`` if censored. ``tau_k`` is the recovery clock minus ``t_k``. An event less than ``W``
after the curve's start has no pre-event level: it is *unmeasurable* by the pre-event criterion
(the twin criterion needs none). See ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from driftrec.experiments.metrics.curves import Curve
from driftrec.validation import check_integer, check_real

__all__ = ["RECOVERY_RTOL", "Recovery", "recoveries", "recovery"]

RECOVERY_RTOL = 1e-9
"""Relative tolerance on the recovery criterion: window means are differences of cumulative
sums, so a window that meets the threshold exactly on paper may miss it by a rounding error."""


@dataclass(frozen=True)
class Recovery:
    """How one drift event was absorbed. See :func:`recovery` for the definitions."""

    event_t: int
    """The drift event's clock ``t_k``."""
    pre: float
    """``pre_k``: the level to recover: the pre-event window mean, or (against the twin) the
    twin's window mean at the first candidate clock, nan if no candidate window fits."""
    time: float | None
    """``tau_k`` in requests (``>= window``); None when censored: never a finite-looking
    number for an event that did not recover."""
    censored: bool
    """True when no candidate clock up to ``censor_t`` met the criterion."""
    censor_t: int
    """The censoring point ``end`` (the next event's clock or the horizon), whether or not the
    event was censored: the search would have stopped there."""
    dip: float
    """How far the windowed reward fell below the level to recover (may be negative when it
    never fell); nan if no candidate window fits before ``censor_t``."""
    regret: float
    """Adaptation regret over ``[t_k, t_k + H)`` (in excess of the twin's if its regret curve
    was given); nan if no regret curve was given or the range holds no request."""
    measurable: bool = True
    """False for an event the pre-event criterion cannot measure: its pre-event window
    ``[t_k - W, t_k)`` starts before the curve (an event in the first ``W`` requests), so there
    is no level to recover; ``pre`` and ``dip`` are then nan, ``time`` None and ``censored``
    False (it neither recovered nor failed to). Always True against the twin."""

    @property
    def outcome(self) -> Literal["recovered", "censored", "unmeasurable"]:
        """``"recovered"``, ``"censored"`` or ``"unmeasurable"`` (see :attr:`measurable`)."""
        if not self.measurable:
            return "unmeasurable"
        return "censored" if self.censored else "recovered"


def recovery(
    rho: Curve,
    event_t: int,
    window: int,
    eps: float = 0.05,
    *,
    end: int | None = None,
    reference: Curve | None = None,
    regret: Curve | None = None,
    regret_horizon: int | None = None,
    reference_regret: Curve | None = None,
    early: Literal["raise", "nan"] = "raise",
) -> Recovery:
    """Recovery time, dip and adaptation regret of one drift event.

    Candidate clocks are the edges ``t`` of ``rho`` with ``event_t + window <= t <= end``;
    ``m(t)`` is ``rho``'s mean over ``[t - window, t)``.

    Without ``reference`` (the pre-event level): ``pre = rho.mean(event_t - window,
    event_t)``; the event has recovered at the first candidate with
    ``m(t) >= (1 - eps) * pre``; ``dip = pre - min m(t)``.

    With ``reference`` (the no-drift twin's ``rho``, ``r(t)`` its mean over the same window):
    recovered at the first candidate with ``m(t) >= (1 - eps) * r(t)``, so that learning the
    twin also does is not mistaken for recovery; ``pre = r(first candidate)``;
    ``dip = max (r(t) - m(t))``.

    In both, ``time = t* - event_t`` for the recovery clock ``t*``, and the min / max run
    over the candidates up to ``t*`` inclusive, or up to ``end`` if censored (no candidate met
    the criterion: ``time`` None, ``censored`` True). The criterion holds up to a relative
    rounding tolerance :data:`RECOVERY_RTOL`.

    Adaptation regret is ``regret.total(event_t, event_t + H)`` with
    ``H = regret_horizon`` (default ``end - event_t``), the range clipped to the regret curve
    (and to ``reference_regret``'s); with ``reference_regret`` (the twin's regret curve) it is
    ``regret.total - reference_regret.total`` over that same range.

    Args:
        rho: the agent's per-request normalised reward ``e_t / o_t``.
        event_t: the event's clock ``t_k``.
        window: ``W`` in requests (>= 1).
        eps: tolerance in ``[0, 1)``.
        end: the censoring point, ``event_t < end <= rho.end``; default ``rho.end``.
        reference: the twin's ``rho`` curve, covering every candidate window.
        regret: the agent's per-request regret ``g_t = o_t - e_t``.
        regret_horizon: ``H`` in requests (>= 1).
        reference_regret: the twin's regret curve (needs ``regret``).
        early: without ``reference``, what an event whose pre-event window starts before
            ``rho`` gets: ``"raise"`` a ValueError, or ``"nan"`` a :class:`Recovery` with
            ``measurable`` False (``pre``, ``dip`` nan; ``time`` None; ``censored`` False; the
            adaptation regret, which needs no pre-event level, as usual).

    Raises:
        ValueError: a window outside its curve (the pre-event window unless ``early="nan"``,
            or a candidate window outside ``reference``), ``end`` out of range,
            ``reference_regret`` without ``regret``.

    Example:
        >>> rho = Curve(np.arange(0, 70, 10), [0.8, 0.8, 0.4, 0.6, 0.8, 0.8])
        >>> r = recovery(rho, event_t=20, window=10)  # pre 0.8: needs a window mean >= 0.76
        >>> r.time, r.censored, round(r.dip, 6)  # windows 0.4, 0.6, 0.8: recovered at t=50
        (30.0, False, 0.4)
    """
    event_t = check_integer("event_t", event_t)
    window = check_integer("window", window, minimum=1)
    eps = check_real("eps", eps, low=0.0, high=1.0, high_open=True)
    end = rho.end if end is None else check_integer("end", end)
    if not event_t < end <= rho.end:
        raise ValueError(
            f"end must satisfy event_t < end <= rho.end, got event_t={event_t}, end={end}, "
            f"rho.end={rho.end}"
        )
    if event_t < rho.start:
        raise ValueError(f"the event at {event_t} precedes the rho curve's start {rho.start}")
    if reference_regret is not None and regret is None:
        raise ValueError("reference_regret is the twin's regret: pass the agent's regret too")
    if early not in ("raise", "nan"):
        raise ValueError(f'early must be "raise" or "nan", got {early!r}')
    adaptation_regret = _adaptation_regret(event_t, end, regret, regret_horizon, reference_regret)
    if reference is None and event_t - window < rho.start:
        if early == "raise":
            raise ValueError(
                f"the pre-event window [{event_t - window}, {event_t}) starts before the rho "
                f"curve's start {rho.start} (early='nan' reports the event as unmeasurable)"
            )
        return Recovery(
            event_t=event_t,
            pre=math.nan,
            time=None,
            censored=False,
            censor_t=end,
            dip=math.nan,
            regret=adaptation_regret,
            measurable=False,
        )

    edges = rho.edges
    candidates = edges[(edges >= event_t + window) & (edges <= end)]
    means = rho.window_means(candidates, window)
    if reference is None:
        pre = rho.mean(event_t - window, event_t)
        targets = np.full(len(candidates), (1.0 - eps) * pre)
        shortfalls = pre - means
    else:
        if len(candidates) and (
            candidates[0] - window < reference.start or candidates[-1] > reference.end
        ):
            raise ValueError(
                f"the reference curve covers [{reference.start}, {reference.end}) but the "
                f"candidate windows span [{candidates[0] - window}, {candidates[-1]})"
            )
        twin = reference.window_means(candidates, window)
        pre = float(twin[0]) if len(twin) else math.nan
        targets = (1.0 - eps) * twin
        shortfalls = twin - means

    met = np.flatnonzero(means >= targets - RECOVERY_RTOL * np.abs(targets))
    considered = met[0] + 1 if len(met) else len(candidates)
    dip = float(shortfalls[:considered].max()) if considered else math.nan
    return Recovery(
        event_t=event_t,
        pre=float(pre),
        time=float(candidates[met[0]] - event_t) if len(met) else None,
        censored=not len(met),
        censor_t=end,
        dip=dip,
        regret=adaptation_regret,
    )


def _adaptation_regret(
    event_t: int,
    end: int,
    regret: Curve | None,
    horizon: int | None,
    reference_regret: Curve | None,
) -> float:
    if regret is None:
        return math.nan
    horizon = end - event_t if horizon is None else check_integer("regret_horizon", horizon)
    if horizon < 1:
        raise ValueError(f"regret_horizon must be an integer >= 1, got {horizon}")
    curves = [c for c in (regret, reference_regret) if c is not None]
    low = max(event_t, *(c.start for c in curves))
    high = min(event_t + horizon, *(c.end for c in curves))
    if high <= low:
        return math.nan
    excess = regret.total(low, high)
    if reference_regret is not None:
        excess -= reference_regret.total(low, high)
    return excess


def recoveries(
    rho: Curve,
    event_ts: Sequence[int] | np.ndarray,
    window: int,
    eps: float = 0.05,
    *,
    horizon: int | None = None,
    reference: Curve | None = None,
    regret: Curve | None = None,
    regret_horizon: int | None = None,
    reference_regret: Curve | None = None,
    early: Literal["raise", "nan"] = "raise",
) -> list[Recovery]:
    """:func:`recovery` of each event in ``event_ts`` (sorted clocks), each censored at the
    next strictly later event's clock, the last at ``horizon`` (default ``rho.end``).

    Events at the same clock (several drift kinds firing together) share one censoring
    point: the next clock at which something else happens. ``early`` is :func:`recovery`'s,
    for every event. An event less than ``window`` after the previous one has that one's
    recovery inside its pre-event window: its ``pre`` is a degraded level, and only the twin
    criterion (``reference``) measures it fairly (docs/metrics.md).

    Example:
        >>> rho = Curve(np.arange(0, 70, 10), [0.8, 0.8, 0.4, 0.6, 0.8, 0.8])
        >>> [(r.event_t, r.time, r.censor_t) for r in recoveries(rho, [20, 40], window=10)]
        [(20, None, 40), (40, 10.0, 60)]
    """
    clocks = [check_integer(f"event_ts[{i}]", t) for i, t in enumerate(event_ts)]
    if clocks != sorted(clocks):
        raise ValueError(f"event_ts must be sorted, got {clocks}")
    horizon = rho.end if horizon is None else check_integer("horizon", horizon)
    results = []
    for t in clocks:
        end = next((later for later in clocks if later > t), horizon)
        results.append(
            recovery(
                rho,
                t,
                window,
                eps,
                end=end,
                reference=reference,
                regret=regret,
                regret_horizon=regret_horizon,
                reference_regret=reference_regret,
                early=early,
            )
        )
    return results

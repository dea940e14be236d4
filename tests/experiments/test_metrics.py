"""The metrics of DESIGN section 6 on hand-computed cases (the arithmetic is in the comments;
docs/metrics.md works through the same numbers), and how the summary aggregates them over seeds."""

import itertools
import math
import pickle
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftrec.experiments.cell import RANKING_KEYS, CellResult
from driftrec.experiments.metrics import (
    Curve,
    CurveRecorder,
    acc,
    auc,
    average_ranks,
    bwt,
    forgetting,
    forgetting_per_regime,
    fwt,
    plasticity_gap,
    ranking_metrics,
    recoveries,
    recovery,
    regime_matrix,
)
from driftrec.experiments.report import _html, _markdown, _Page
from driftrec.experiments.spec import load_spec
from driftrec.experiments.summary import build_tables, t_interval

LOG2_3 = math.log2(3)  # the NDCG discount of rank 2 is 1 / log2(3)

# ---------------------------------------------------------------------------------------------
# Curve


def test_curve_mean_and_total_weigh_partial_bins_by_overlap():
    curve = Curve(edges=np.array([0, 10, 20, 40]), values=np.array([1.0, 0.5, 0.25]))
    # [5, 25): 5 requests of bin [0, 10) at 1.0, all 10 of [10, 20) at 0.5, 5 of [20, 40) at 0.25
    assert curve.total(5, 25) == pytest.approx(5 * 1.0 + 10 * 0.5 + 5 * 0.25)  # 11.25
    assert curve.mean(5, 25) == pytest.approx(11.25 / 20)  # 0.5625
    assert curve.mean(22, 23) == pytest.approx(0.25)  # inside one bin
    assert curve.total(0, 40) == pytest.approx(10 + 5 + 5)
    assert curve.total(7, 7) == 0.0


def test_curve_window_means_with_partial_bins():
    curve = Curve(edges=np.array([0, 10, 20, 40]), values=np.array([1.0, 0.5, 0.25]))
    means = curve.window_means(np.array([10, 25, 40, 13]), width=10)
    # [0, 10) = 1.0; [15, 25) = (5 * 0.5 + 5 * 0.25) / 10; [30, 40) = 0.25;
    # [3, 13) = (7 * 1.0 + 3 * 0.5) / 10
    np.testing.assert_allclose(means, [1.0, 0.375, 0.25, 0.85])
    assert curve.window_means(np.array([[10, 40]]), width=10).shape == (1, 2)


def test_curve_refuses_windows_outside_it_and_bad_arrays():
    curve = Curve(edges=np.array([0, 10, 20]), values=np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match=r"outside the curve, which covers requests \[0, 20\)"):
        curve.mean(15, 25)
    with pytest.raises(ValueError, match="non-empty window"):
        curve.mean(5, 5)
    with pytest.raises(ValueError, match="outside the curve"):
        curve.window_means(np.array([5]), width=10)
    with pytest.raises(ValueError, match="strictly increasing"):
        Curve(edges=np.array([0, 10, 10]), values=np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="length 2"):
        Curve(edges=np.array([0, 10, 20]), values=np.array([1.0]))
    with pytest.raises(TypeError, match="integer clocks"):
        Curve(edges=np.array([0.0, 10.0]), values=np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        Curve(edges=np.array([0, 10]), values=np.array([np.nan]))


def test_curve_is_immutable_and_compares_by_value():
    edges, values = np.array([0, 10]), np.array([1.0])
    curve = Curve(edges, values)
    edges[0] = 5  # the curve holds a copy
    assert curve.start == 0
    with pytest.raises(ValueError):
        curve.values[0] = 2.0
    assert curve == Curve(np.array([0, 10]), np.array([1.0]))
    assert curve != Curve(np.array([0, 10]), np.array([0.5]))
    copy = pickle.loads(pickle.dumps(curve))  # results cross process boundaries (Ray)
    assert copy == curve and not copy.values.flags.writeable


@settings(max_examples=60, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=1, max_size=12),
    start=st.integers(-50, 50),
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(1, 30),
)
def test_window_means_equal_a_naive_loop(widths, start, seed, width):
    rng = np.random.default_rng(seed)
    edges = start + np.concatenate([[0], np.cumsum(widths)])
    values = rng.random(len(widths))
    curve = Curve(edges, values)
    per_request = np.repeat(values, widths)  # the curve expanded request by request
    width = min(width, len(per_request))
    ends = np.arange(edges[0] + width, edges[-1] + 1)
    naive = [per_request[t - width - start : t - start].mean() for t in ends]
    np.testing.assert_allclose(curve.window_means(ends, width), naive, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Recovery, dip, adaptation regret

# Resolution 10, event at t = 40, W = 20, eps = 0.05.
EDGES = np.arange(0, 110, 10)
RHO = Curve(EDGES, np.array([0.8, 0.8, 0.8, 0.8, 0.4, 0.5, 0.6, 0.7, 0.78, 0.8]))
REGRET = Curve(EDGES, np.array([0.0, 0.0, 0.0, 0.0, 0.3, 0.25, 0.2, 0.1, 0.02, 0.0]))


def test_recovery_time_on_a_hand_made_curve():
    r = recovery(RHO, event_t=40, window=20, eps=0.05)
    # pre = mean [20, 40) = 0.8, threshold 0.95 * 0.8 = 0.76. Candidates t = 60, 70, 80, 90,
    # 100 with window means [40,60) = 0.45, [50,70) = 0.55, [60,80) = 0.65, [70,90) = 0.74,
    # [80,100) = (0.78 + 0.8) / 2 = 0.79 >= 0.76: recovered at t = 100, tau = 100 - 40 = 60.
    assert r.pre == pytest.approx(0.8)
    assert r.time == 60.0
    assert not r.censored
    assert r.censor_t == 100  # the default end: the curve's last edge
    # dip = pre - min window mean = 0.8 - 0.45
    assert r.dip == pytest.approx(0.35)
    assert math.isnan(r.regret)  # no regret curve given


def test_recovery_is_never_faster_than_the_window():
    # rho back to 0.8 the moment after the event: the first candidate is t_k + W, so tau = W.
    rho = Curve(EDGES, np.full(10, 0.8))
    assert recovery(rho, event_t=40, window=20).time == 20.0


def test_a_window_exactly_at_the_threshold_has_recovered():
    # eps = 0 on a flat curve: m(60) = 0.8 = (1 - 0) * pre, met with equality (>=, not >).
    flat = Curve(EDGES, np.full(10, 0.8))
    r = recovery(flat, event_t=40, window=20, eps=0.0)
    assert (r.time, r.censored, r.dip) == (20.0, False, 0.0)
    # Threshold 0.75 * 0.8 = 0.6 met exactly by [40, 60) = (0.5 + 0.7) / 2 (up to rounding).
    rho = Curve(EDGES, np.array([0.8, 0.8, 0.8, 0.8, 0.5, 0.7, 0.0, 0.0, 0.0, 0.0]))
    assert recovery(rho, event_t=40, window=20, eps=0.25).time == 20.0


def test_an_explicit_end_is_the_last_candidate():
    # Windows [40,60) = 0.45, [50,70) = 0.55, [60,80) = 0.7, [70,90) = 0.8 >= 0.76: recovered at
    # t = 90. With end = 90 the candidate t = 90 counts (inclusive); with end = 80 it does not.
    rho = Curve(EDGES, np.array([0.8, 0.8, 0.8, 0.8, 0.4, 0.5, 0.6, 0.8, 0.8, 0.8]))
    at_end = recovery(rho, event_t=40, window=20, end=90)
    assert (at_end.time, at_end.censored, at_end.censor_t) == (50.0, False, 90)
    before = recovery(rho, event_t=40, window=20, end=80)
    assert (before.time, before.censored, before.censor_t) == (None, True, 80)


def test_recovery_censored_when_the_next_event_comes_first():
    r = recovery(RHO, event_t=40, window=20, eps=0.05, end=90)
    # Candidates 60, 70, 80, 90: window means 0.45, 0.55, 0.65, 0.74, all < 0.76.
    assert r.time is None
    assert r.censored
    assert r.censor_t == 90
    assert r.dip == pytest.approx(0.8 - 0.45)


def test_dip_counts_only_up_to_the_recovery_clock():
    # Recovers at t = 60 (window [40, 60) = 0.8), then falls to 0.1: the later fall is not
    # part of this event's dip.
    rho = Curve(EDGES, np.array([0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1]))
    r = recovery(rho, event_t=40, window=20)
    assert r.time == 20.0
    assert r.dip == pytest.approx(0.8 - 0.8)
    # Recovers at t = 70 after [40, 60) = (0.7 + 0.5) / 2 = 0.6 and [50, 70) = (0.5+0.9) / 2 = 0.7
    rho = Curve(EDGES, np.array([0.8, 0.8, 0.8, 0.8, 0.7, 0.5, 0.9, 0.1, 0.1, 0.1]))
    r = recovery(rho, event_t=40, window=20, eps=0.15)  # threshold 0.85 * 0.8 = 0.68
    assert r.time == 30.0
    assert r.dip == pytest.approx(0.8 - 0.6)


def test_adaptation_regret():
    # Default H = end - t_k = 100 - 40: 10 * (0.3 + 0.25 + 0.2 + 0.1 + 0.02 + 0.0) = 8.7
    assert recovery(RHO, 40, 20, regret=REGRET).regret == pytest.approx(8.7)
    # H = 25: [40, 65) = 10 * 0.3 + 10 * 0.25 + 5 * 0.2 = 6.5 (a partial bin)
    assert recovery(RHO, 40, 20, regret=REGRET, regret_horizon=25).regret == pytest.approx(6.5)
    # Censored at 90: H = 50, [40, 90) = 10 * (0.3 + 0.25 + 0.2 + 0.1 + 0.02) = 8.7. The regret
    # on [90, 100) is 0.05 here, so a sum that ran on past the censoring point would be 9.2.
    regret = Curve(EDGES, np.r_[REGRET.values[:9], 0.05])
    assert recovery(RHO, 40, 20, regret=regret).regret == pytest.approx(9.2)
    assert recovery(RHO, 40, 20, end=90, regret=regret).regret == pytest.approx(8.7)
    # H = 1000 runs past the curve: clipped to [40, 100)
    assert recovery(RHO, 40, 20, regret=REGRET, regret_horizon=1000).regret == pytest.approx(8.7)


def test_recovery_errors_name_the_window():
    with pytest.raises(ValueError, match=r"pre-event window \[-10, 10\)"):
        recovery(RHO, event_t=10, window=20)
    with pytest.raises(ValueError, match="end must satisfy"):
        recovery(RHO, event_t=40, window=20, end=200)
    with pytest.raises(ValueError, match="regret too"):
        recovery(RHO, 40, 20, reference_regret=REGRET)


def test_no_candidate_window_before_the_censoring_point():
    # Next event 10 requests later, W = 20: no window fits; censored, pre known, dip nan.
    r = recovery(RHO, event_t=40, window=20, end=50)
    assert r.censored and r.time is None and r.censor_t == 50
    assert r.pre == pytest.approx(0.8)
    assert math.isnan(r.dip)


# The twin case: the learner is still climbing when the drift hits. Its twin (no drift) keeps
# climbing; the drifted learner drops below the twin and catches up slowly.
TWIN = Curve(EDGES, np.array([0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0, 1.0, 1.0, 1.0]))
CLIMB = Curve(EDGES, np.array([0.40, 0.50, 0.60, 0.70, 0.65, 0.70, 0.75, 0.85, 0.95, 1.0]))


def test_recovery_against_the_twin_is_not_fooled_by_continued_learning():
    pre_shift = recovery(CLIMB, event_t=40, window=20)
    # pre = mean [20, 40) = (0.6 + 0.7) / 2 = 0.65, threshold 0.6175; the first candidate t = 60
    # has [40, 60) = (0.65 + 0.70) / 2 = 0.675 >= 0.6175: "recovered at once", tau = W = 20,
    # with a negative dip 0.65 - 0.675 = -0.025.
    assert pre_shift.time == 20.0
    assert pre_shift.dip == pytest.approx(-0.025)

    twin = recovery(CLIMB, event_t=40, window=20, reference=TWIN)
    # t    twin window       0.95 * twin   rho window              met?
    # 60   (0.8+0.9)/2=0.85  0.8075        (0.65+0.70)/2 = 0.675   no
    # 70   (0.9+1.0)/2=0.95  0.9025        (0.70+0.75)/2 = 0.725   no
    # 80   1.0               0.95          (0.75+0.85)/2 = 0.80    no
    # 90   1.0               0.95          (0.85+0.95)/2 = 0.90    no
    # 100  1.0               0.95          (0.95+1.00)/2 = 0.975   yes -> tau = 100 - 40 = 60
    assert twin.time == 60.0
    assert not twin.censored
    assert twin.pre == pytest.approx(0.85)  # the twin's window mean at the first candidate
    # dip = max(0.85 - 0.675, 0.95 - 0.725, 1 - 0.8, 1 - 0.9, 1 - 0.975) = 0.225
    assert twin.dip == pytest.approx(0.225)


def test_recovery_against_the_twin_censored_and_excess_regret():
    twin = recovery(CLIMB, event_t=40, window=20, end=90, reference=TWIN)
    assert twin.censored and twin.time is None and twin.censor_t == 90
    assert twin.dip == pytest.approx(0.225)
    # Excess regret over the twin on [40, 70): agent 10 * (0.3 + 0.25 + 0.2) = 7.5,
    # twin 30 * 0.05 = 1.5, excess 6.0.
    twin_regret = Curve(EDGES, np.full(10, 0.05))
    r = recovery(
        CLIMB,
        40,
        20,
        reference=TWIN,
        regret=REGRET,
        reference_regret=twin_regret,
        regret_horizon=30,
    )
    assert r.regret == pytest.approx(7.5 - 1.5)


def test_twin_must_cover_the_candidate_windows():
    short = Curve(np.array([0, 50]), np.array([1.0]))
    with pytest.raises(ValueError, match="reference curve covers"):
        recovery(CLIMB, 40, 20, reference=short)


def test_recoveries_censor_each_event_at_the_next():
    # Events at 40 and 90 (twice: two drift kinds at once): the first is censored at 90, both
    # at 90 run to the horizon 100. Event 90: pre = mean [70, 90) = (0.7 + 0.78) / 2; a
    # candidate needs t >= 90 + 20 = 110 > 100, so there is none: censored.
    first, second, third = recoveries(RHO, [40, 90, 90], window=20, regret=REGRET)
    assert (first.censored, first.censor_t) == (True, 90)
    assert first.regret == pytest.approx(8.7)  # [40, 90)
    assert (second.censored, second.censor_t, third.censor_t) == (True, 100, 100)
    assert second.pre == pytest.approx((0.7 + 0.78) / 2)
    assert second.regret == pytest.approx(10 * 0.0)  # [90, 100): the last bin's regret is 0
    with pytest.raises(ValueError, match="sorted"):
        recoveries(RHO, [90, 40], window=20)


def test_an_event_in_the_first_window_is_unmeasurable_not_dropped():
    # Event at 10, W = 20: the pre-event window [-10, 10) starts before the curve.
    r = recovery(RHO, event_t=10, window=20, regret=REGRET, early="nan")
    assert (r.measurable, r.outcome, r.time, r.censored, r.censor_t) == (
        False,
        "unmeasurable",
        None,
        False,
        100,
    )
    assert math.isnan(r.pre) and math.isnan(r.dip)
    assert r.regret == pytest.approx(8.7)  # [10, 100): needs no pre-event level
    # The twin criterion needs no pre-event window: candidates t = 30 .. 100, [10, 30) = 0.8
    # against the twin's 0.8 at once: tau = W = 20.
    twin = recovery(RHO, event_t=10, window=20, reference=Curve(EDGES, np.full(10, 0.8)))
    assert (twin.measurable, twin.outcome, twin.time) == (True, "recovered", 20.0)
    # recoveries passes early on; the event at 40 is measured as before
    early, later = recoveries(RHO, [10, 40], window=20, early="nan")
    assert (early.outcome, early.censor_t) == ("unmeasurable", 40)
    assert (later.outcome, later.time) == ("recovered", 60.0)
    assert recovery(RHO, 40, 20, end=90).outcome == "censored"
    with pytest.raises(ValueError, match=r"\[-10, 10\) starts before .*\(early='nan'"):
        recovery(RHO, event_t=10, window=20)
    with pytest.raises(ValueError, match="early must be"):
        recovery(RHO, event_t=40, window=20, early="skip")  # type: ignore[arg-type]


def test_an_event_within_w_of_the_previous_recovers_to_a_degraded_level():
    # docs/metrics.md's pitfall: events at 40 and 50, W = 20. The first is censored at 50 (no
    # window fits); the second's pre-event window [30, 50) holds the first drop: pre = (0.8 +
    # 0.4) / 2 = 0.6, threshold 0.57, [50, 70) = 0.55, [60, 80) = 0.65: "recovered" at 80.
    first, second = recoveries(RHO, [40, 50], window=20)
    assert (first.censored, first.censor_t) == (True, 50) and math.isnan(first.dip)
    assert second.pre == pytest.approx(0.6) and second.time == 30.0
    # Against a twin that stays at 0.8 the second event has not recovered by the end:
    # [80, 100) = 0.79 >= 0.76 is its first window within eps of the twin: tau = 50.
    flat = Curve(EDGES, np.full(10, 0.8))
    assert recoveries(RHO, [40, 50], window=20, reference=flat)[1].time == 50.0


# ---------------------------------------------------------------------------------------------
# Forgetting on probes

# R[i, j]: at the end of regime i, on regime j's probe.
R3 = np.array(
    [
        [0.9, 0.3, 0.5],
        [0.6, 0.8, 0.4],
        [0.7, 0.5, 0.85],
    ]
)
B3 = np.array([0.2, 0.25, 0.3])  # the random policy on each probe


def test_continual_metrics_on_a_hand_made_matrix():
    assert acc(R3) == pytest.approx((0.7 + 0.5 + 0.85) / 3)  # 0.68333
    # BWT = ((0.7 - 0.9) + (0.5 - 0.8)) / 2 = -0.25
    assert bwt(R3) == pytest.approx(-0.25)
    # FWT = ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.3 - 0.25) + (0.4 - 0.3)) / 2 = 0.075
    assert fwt(R3, B3) == pytest.approx(0.075)
    # f_0 = max(0.9, 0.6) - 0.7 = 0.2; f_1 = max(0.3, 0.8) - 0.5 = 0.3
    np.testing.assert_allclose(forgetting_per_regime(R3), [0.2, 0.3])
    assert forgetting(R3) == pytest.approx(0.25)
    np.testing.assert_allclose(plasticity_gap(R3), [0.1, 0.2, 0.15])


def test_forgetting_maxes_over_every_earlier_regime_end():
    # Recurring regimes: probe 1 was served well (0.95) at the end of regime 0, before regime 1
    # came round. Chaudhry et al.'s max over l < m counts it: f_1 = 0.95 - 0.5.
    R = R3.copy()
    R[0, 1] = 0.95
    np.testing.assert_allclose(forgetting_per_regime(R), [0.2, 0.45])


def test_forgetting_is_negative_when_the_final_agent_is_the_best_so_far():
    # R[m-1, j] is each column's maximum: the max runs over l < m - 1 only, so
    # f_0 = max(0.5, 0.6) - 0.7 = -0.1 and f_1 = max(0.3, 0.4) - 0.9 = -0.5 (a max that took in
    # the final row would give 0 for both).
    R = np.array([[0.5, 0.3, 0.2], [0.6, 0.4, 0.3], [0.7, 0.9, 0.8]])
    np.testing.assert_allclose(forgetting_per_regime(R), [-0.1, -0.5])
    assert forgetting(R) == pytest.approx(-0.3)


def test_one_regime_gives_nan_not_an_error():
    R = np.array([[0.7]])
    assert acc(R) == pytest.approx(0.7)
    assert math.isnan(bwt(R))
    assert math.isnan(fwt(R, np.array([0.2])))
    assert math.isnan(forgetting(R))
    assert forgetting_per_regime(R).shape == (0,)
    np.testing.assert_allclose(plasticity_gap(R), [0.3])


def test_continual_metrics_refuse_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        acc(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"baseline must have shape \(3,\)"):
        fwt(R3, np.ones(2))


def test_regime_matrix_picks_the_last_evaluation_of_each_regime():
    eval_t = np.array([50, 100, 150, 200, 250, 300])
    P = np.arange(6)[:, None] * 10.0 + np.arange(3)  # P[e, j] = 10 e + j: rows identifiable
    R = regime_matrix(P, eval_t, regime_ends=np.array([100, 220, 300]))
    # Regime 0 ends at 100: evaluation 1 (at 100, inclusive); regime 1 at 220: evaluation 3
    # (200); regime 2 at 300: evaluation 5.
    np.testing.assert_array_equal(R, P[[1, 3, 5]])


def test_regime_matrix_names_a_regime_without_evaluation():
    P = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"regime 0 ends at clock 40, before any evaluation"):
        regime_matrix(P, np.array([50, 100]), np.array([40, 100]))
    with pytest.raises(ValueError, match="strictly increasing"):
        regime_matrix(P, np.array([100, 50]), np.array([100, 200]))
    with pytest.raises(ValueError, match=r"\(E, m\)"):
        regime_matrix(np.ones((2, 3)), np.array([50, 100]), np.array([40, 100]))


# ---------------------------------------------------------------------------------------------
# Ranking on probes


def test_auc_on_hand_cases():
    # The textbook case: positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs.
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # A tie: positives {0.5, 0.9}, negatives {0.5, 0.2}: (0.5 + 1 + 1 + 1) / 4 = 0.875
    assert auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([1, 0, 0, 1])) == pytest.approx(0.875)
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_scikit_learn_with_ties(seed):
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(seed)
    n = 200
    scores = rng.integers(0, 12, n) / 4.0  # 12 distinct values: many ties
    labels = rng.random(n) < 0.3
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # Row by row, vectorised (ranking_metrics' path), on a matrix of such lists.
    scores = rng.integers(0, 5, (50, 8)).astype(float)
    relevance = rng.random((50, 8))
    labels = relevance >= 0.5
    both = labels.any(axis=1) & ~labels.all(axis=1)
    expected = np.mean(
        [roc_auc_score(y, s) for y, s in zip(labels[both], scores[both], strict=True)]
    )
    assert ranking_metrics(scores, relevance, k=3)["auc"] == pytest.approx(expected, abs=1e-12)


def test_average_ranks_share_ties():
    x = np.array([[0.5, 0.2, 0.5, 0.9], [3.0, 3.0, 3.0, 1.0]])
    np.testing.assert_allclose(average_ranks(x), [[2.5, 1, 2.5, 4], [3, 3, 3, 1]])


SCORES = np.array(
    [
        [0.9, 0.2, 0.7, 0.1],
        [0.5, 0.5, 0.5, 0.3],  # three tied at ranked positions 0, 1, 2, across the cut at k = 2
        [0.4, 0.3, 0.2, 0.1],
    ]
)
RELEVANCE = np.array(
    [
        [0.6, 0.8, 0.3, 0.1],  # relevant (>= 0.5): positions 0, 1
        [0.2, 0.9, 0.1, 0.4],  # relevant: position 1
        [0.1, 0.2, 0.3, 0.4],  # none relevant
    ]
)


def test_ranking_metrics_on_a_hand_case():
    # docs/metrics.md's worked example.
    m = ranking_metrics(SCORES, RELEVANCE, k=2)
    # Top-2: request 0 -> positions 0, 2 (1 hit of 2 relevant); request 1 -> two of the three
    # tied 0, 1, 2 at random: each is in the top-2 with probability 2/3, so 2/3 expected hits
    # (its relevant position 1) of 1 relevant; request 2 -> 0, 1 (no relevant item).
    assert m["precision_at_k"] == pytest.approx((1 / 2 + (2 / 3) / 2 + 0 / 2) / 3)  # 5/18
    assert m["recall_at_k"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # 7/12 (request 2 left out)
    # F1 from the two means: 2 * (5/18) * (7/12) / (5/18 + 7/12) = 35/93
    assert m["f1_at_k"] == pytest.approx(35 / 93)
    # NDCG@2, gains = relevance, discounts 1 and 1/log2(3), 0 past k; a tied group's members
    # each get the mean discount of the group's positions, (1 + 1/log2(3) + 0) / 3:
    ndcg = [
        (0.6 + 0.3 / LOG2_3) / (0.8 + 0.6 / LOG2_3),  # ranked 0.6, 0.3; ideal 0.8, 0.6
        (0.2 + 0.9 + 0.1) * (1 + 1 / LOG2_3) / 3 / (0.9 + 0.4 / LOG2_3),
        (0.1 + 0.2 / LOG2_3) / (0.4 + 0.3 / LOG2_3),  # graded: defined without relevant items
    ]
    assert m["ndcg_at_k"] == pytest.approx(np.mean(ndcg))
    # AUC over all 4 candidates: request 0, positives {0.9, 0.2} vs negatives {0.7, 0.1}: 3/4;
    # request 1, positive 0.5 vs {0.5, 0.5, 0.3}: (0.5 + 0.5 + 1) / 3; request 2 has one class.
    assert m["auc"] == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_ties_inside_the_top_k_and_below_it_change_nothing_but_the_discounts():
    # k = 3, scores 0.9 > 0.5 = 0.5 > 0.1 = 0.1 = 0.1: the pair at positions 1, 2 is wholly in
    # the top-3 (credit 1 each, discount (d2 + d3) / 2); the triple at 3, 4, 5 wholly out.
    scores = np.array([[0.5, 0.1, 0.9, 0.1, 0.5, 0.1]])
    relevance = np.array([[0.0, 0.7, 0.2, 0.9, 0.6, 0.0]])
    m = ranking_metrics(scores, relevance, k=3)
    assert m["precision_at_k"] == pytest.approx(1 / 3)  # position 4 (0.6) of 0.6, 0.9, 0.7
    assert m["recall_at_k"] == pytest.approx(1 / 3)
    d2, d3 = 1 / LOG2_3, 1 / 2  # 1 / log2(4) = 1/2
    dcg = 0.2 * 1 + (0.0 + 0.6) * (d2 + d3) / 2
    assert m["ndcg_at_k"] == pytest.approx(dcg / (0.9 + 0.7 * d2 + 0.6 * d3))


def test_a_tie_across_the_cut_shares_the_top_k_credit():
    # k = 1 on constant scores (a collapsed model): each of the 4 is first with probability 1/4.
    relevance = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.9]])
    m = ranking_metrics(np.zeros((2, 4)), relevance, k=1)
    assert m["precision_at_k"] == pytest.approx(1 / 4)  # 1/4 in each request, not 1 and 0
    assert m["recall_at_k"] == pytest.approx(1 / 4)
    assert m["f1_at_k"] == pytest.approx(1 / 4)
    assert m["ndcg_at_k"] == pytest.approx((1.2 / 4) / 0.9)  # mean discount 1/4 per item


def test_a_constant_scorer_scores_as_the_average_random_scorer_not_as_popularity():
    # Candidates laid out popular block first (retrieval's order): relevance falls with
    # position. A position tie-break would rank a constant scorer like popularity; the random
    # tie-break gives exactly the mean over every strict order of the candidates.
    rng = np.random.default_rng(0)
    n, c, k = 40, 5, 2
    relevance = np.sort(rng.random((n, c)), axis=1)[:, ::-1] * rng.uniform(0.6, 1.0, (n, 1))
    constant = ranking_metrics(np.full((n, c), 0.3), relevance, k)
    orders = [
        ranking_metrics(np.broadcast_to(np.array(p, dtype=float), (n, c)), relevance, k)
        for p in itertools.permutations(range(c))
    ]
    average = {key: np.mean([o[key] for o in orders]) for key in constant}
    for key in ("precision_at_k", "recall_at_k", "ndcg_at_k"):
        assert constant[key] == pytest.approx(average[key], rel=1e-12), key
    # F1 is the harmonic mean of the mean precision and recall, not a mean of F1s
    p, r = average["precision_at_k"], average["recall_at_k"]
    assert constant["f1_at_k"] == pytest.approx(2 * p * r / (p + r), rel=1e-12)
    popular = ranking_metrics(-np.arange(c, dtype=float)[None].repeat(n, 0), relevance, k)
    assert popular["ndcg_at_k"] == pytest.approx(1.0)  # the ideal order here
    assert constant["ndcg_at_k"] < popular["ndcg_at_k"] - 0.2
    assert constant["precision_at_k"] < popular["precision_at_k"]


def test_ranking_metrics_threshold_and_undefined_cases():
    # Threshold 0.95: nothing is relevant: recall, F1 and AUC are undefined, precision is 0.
    m = ranking_metrics(SCORES, RELEVANCE, k=2, threshold=0.95)
    assert m["precision_at_k"] == 0.0
    assert all(math.isnan(m[key]) for key in ("recall_at_k", "f1_at_k", "auc"))
    assert not math.isnan(m["ndcg_at_k"])
    with pytest.raises(ValueError, match="k must be an integer <= 4"):
        ranking_metrics(SCORES, RELEVANCE, k=5)
    with pytest.raises(ValueError, match=">= 0"):
        ranking_metrics(SCORES, -RELEVANCE, k=2)


# ---------------------------------------------------------------------------------------------
# CurveRecorder


def test_curve_recorder_over_uneven_steps_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    n, clock0, resolution = 23, 100, 5
    oracle = rng.uniform(0.5, 1.0, n)
    expected = oracle * rng.uniform(0.2, 1.0, n)
    oracle[3] = expected[3] = 0.0  # nothing clickable: normalised counts as 1
    clicks = (rng.random(n) < 0.3).astype(float)
    recorder = CurveRecorder(resolution)
    start = 0
    for size in (3, 7, 1, 0, 12):  # bins [100, 105), ..., [120, 123): the last one partial
        stop = start + size
        recorder.update(
            clock0 + start, expected[start:stop], oracle[start:stop], clicks[start:stop]
        )
        start = stop
    curves = recorder.result()

    edges = [100, 105, 110, 115, 120, 123]
    normalised = np.divide(expected, oracle, out=np.ones(n), where=oracle > 0)
    direct = {
        "normalised": normalised,
        "expected": expected,
        "oracle": oracle,
        "regret": oracle - expected,
        "clicks": clicks,
    }
    assert set(curves) == set(direct)
    for name, per_request in direct.items():
        bins = [per_request[a - clock0 : b - clock0].mean() for a, b in itertools.pairwise(edges)]
        np.testing.assert_array_equal(curves[name].edges, edges)
        np.testing.assert_allclose(curves[name].values, bins, rtol=1e-12, err_msg=name)


def test_curve_recorder_hand_case_contiguity_and_reset():
    recorder = CurveRecorder(resolution=2)
    recorder.update(10, np.array([0.2, 0.4, 0.3]), np.array([0.4, 0.4, 0.6]), np.ones(3))
    curve = recorder.result()["normalised"]
    # [10, 12): (0.2/0.4 + 0.4/0.4) / 2 = 0.75; [12, 13): 0.3/0.6 = 0.5
    assert curve.edges.tolist() == [10, 12, 13]
    np.testing.assert_allclose(curve.values, [0.75, 0.5])
    np.testing.assert_allclose(recorder.result()["regret"].values, [(0.2 + 0.0) / 2, 0.3])
    with pytest.raises(ValueError, match="previous update ended at clock 13"):
        recorder.update(14, np.ones(1), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="length 1"):
        recorder.update(13, np.ones(1), np.ones(2), np.ones(1))
    assert recorder.result()["normalised"] == curve  # refused updates record nothing
    recorder.update(13, np.array([0.1]), np.array([0.2]), np.zeros(1))  # fills [12, 14)
    np.testing.assert_allclose(recorder.result()["normalised"].values, [0.75, 0.5])
    recorder.reset()
    with pytest.raises(ValueError, match="before any request"):
        recorder.result()
    recorder.update(0, np.ones(1), np.ones(1), np.ones(1))  # a new clock0 after reset
    assert recorder.result()["clicks"].edges.tolist() == [0, 1]
    assert repr(recorder) == "CurveRecorder(resolution=2)"


# ---------------------------------------------------------------------------------------------
# The summary over seeds (driftrec.experiments.summary)

# Student t quantiles in closed form: t_{0.975, 1} = tan(0.475 pi) (Cauchy), and
# t_{0.975, 2} = (2p - 1) / sqrt(2 p (1 - p)) at p = 0.975.
T1 = math.tan(0.475 * math.pi)  # 12.7062...
T2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.3027...


def test_t_interval_by_hand():
    mean, half = t_interval([0.4])
    assert mean == 0.4 and math.isnan(half)  # one replicate: no interval
    # n = 2: s = |a - b| / sqrt(2), half = t * s / sqrt(2) = t * |a - b| / 2
    assert t_interval([25.0, 30.0]) == pytest.approx((27.5, T1 * 5 / 2))
    # n = 3: mean 2, s = 1, half = t * 1 / sqrt(3); NaNs and Nones are dropped first
    assert t_interval([1.0, math.nan, 2.0, None, 3.0]) == pytest.approx((2.0, T2 / math.sqrt(3)))
    assert all(math.isnan(x) for x in t_interval([math.nan]))


def test_paired_differences_by_hand():
    # Two learners and a baseline on the same three seeded worlds. b trails a by 0.01 at every
    # seed: a paired difference of -0.01 with no spread, although the seeds' levels (0.5, 0.6,
    # 0.7) make each agent's own interval about +-0.25 wide. c differs from a by +-0.02
    # (mean 0, s = 0.02): within noise. The oracle, a baseline, is never the leader.
    from driftrec.experiments.summary import _paired

    rows = []
    for seed, level in enumerate((0.5, 0.6, 0.7)):
        for agent, reward in (("a", level), ("b", level - 0.01), ("oracle", 1.0)):
            rows.append({"scenario": "s", "agent": agent, "seed": seed, "reward": reward})
        rows.append(
            {"scenario": "s", "agent": "c", "seed": seed, "reward": level + (0.02, -0.02, 0)[seed]}
        )
    cells = pd.DataFrame(rows)
    cells["final_reward"], cells["forgetting"] = cells.reward, 0.1
    paired = _paired(cells, {"oracle"}).set_index("agent")
    assert set(paired.versus) == {"a"} and "a" not in paired.index  # the leader, not the oracle
    b, c = paired.loc["b"], paired.loc["c"]
    assert b.seeds == 3 and b.reward == pytest.approx(-0.01) and b.reward_ci == pytest.approx(0)
    assert b.verdict == "worse" and b.forgetting == 0.0
    assert c.reward == pytest.approx(0) and c.reward_ci == pytest.approx(T2 * 0.02 / math.sqrt(3))
    assert c.verdict == "within noise"
    assert paired.loc["oracle"].verdict == "better"
    one = _paired(cells[cells.seed == 0], {"oracle"}).set_index("agent")
    assert set(one.verdict) == {"one seed"}
    # A partial report: b finished seeds 0 and 1 only, c only seed 2 (at 0.69, above a's mean
    # over its three seeds). The leader is chosen among the agents that ran the most seeds,
    # and each is paired on the seeds it shares with it.
    partial = cells[(cells.agent == "a") | ((cells.agent == "b") & (cells.seed < 2))]
    partial = pd.concat([partial, partial.iloc[:1].assign(agent="c", seed=2, reward=0.69)])
    paired = _paired(partial, set()).set_index("agent")
    assert set(paired.versus) == {"a"}
    assert paired.loc["b"].seeds == 2 and paired.loc["b"].reward == pytest.approx(-0.01)
    assert paired.loc["c"].seeds == 1 and paired.loc["c"].reward == pytest.approx(-0.01)
    d = cells[(cells.agent == "a") & (cells.seed == 1)].assign(agent="d")
    disjoint = pd.concat([partial[partial.agent == "c"], d])
    assert _paired(disjoint, set()).verdict.tolist() == ["no common seed"]


def _spec(seeds: list[int]):
    return load_spec(
        {
            "name": "aggregation",
            "horizon": 100,
            "num_envs": 10,
            "seeds": seeds,
            "world": {"num_users": 20, "num_items": 20, "num_candidates": 5, "slate_size": 2},
            "scenarios": [{"name": "sudden", "params": {"at": 40}}],
            "agents": [{"name": "online"}],
            "evaluation": {"window": 20, "eps": 0.05},
        },
        deep=False,
    )


def _cell(
    seed: int,
    rho: list[float],
    events: list[int],
    twin: Curve | None = None,
    fired: list[int] | None = None,
):
    """A synthetic cell on EDGES with oracle 1 (regret = 1 - rho) and no probes; its drift
    events are measured at ``events``, fired at ``fired`` (default: the same clocks)."""
    values = np.array(rho)
    curves = {"normalised": Curve(EDGES, values), "regret": Curve(EDGES, 1.0 - values)}
    twin_curves = None
    if twin is not None:
        twin_curves = {"normalised": twin, "regret": Curve(EDGES, 1.0 - twin.values)}
    return CellResult(
        cell_id=f"sudden__online__s{seed}",
        scenario="sudden",
        agent="online",
        seed=seed,
        horizon=100,
        curves=curves,
        twin_curves=twin_curves,
        events=[
            {"t": t, "kind": "sudden", "magnitude": 1.0, "similarity": None}
            for t in (events if fired is None else fired)
        ],
        regime_ends=np.array([100]),
        measured_events=np.array(events, dtype=np.int64),
        eval_t=np.zeros(0, dtype=np.int64),
        probe=np.zeros((0, 1)),
        probe_random=np.array([0.5]),
        ranking={key: np.zeros(0) for key in RANKING_KEYS},
        cost={"learn_seconds": 0.0},
        sessions={"session_return": 1.0, "session_length": 1.0, "sessions": 1},
        seconds=0.0,
    )


def test_the_summary_averages_each_seed_over_its_events_then_over_seeds():
    # Events at 40 (censored at 70) and 70 (at the horizon 100), W = 20, eps = 0.05.
    cells = [
        # seed 0: event 40, pre 1, [40, 60) = 1: tau 20, dip 0; event 70, pre 1, [70, 90) =
        # 0.75, [80, 100) = 1: tau 30, dip 0.25. Regret [40, 70) 0, [70, 100) 10 * 0.5 = 5.
        _cell(0, [1, 1, 1, 1, 1, 1, 1, 0.5, 1, 1], [40, 70]),
        # seed 1: event 40, [40, 60) = 0.55, [50, 70) = 1: tau 30, dip 0.45; event 70, pre 1,
        # windows 0.5, 0.5: censored, dip 0.5. Regret 10 * 0.9 = 9 and 30 * 0.5 = 15.
        _cell(1, [1, 1, 1, 1, 0.1, 1, 1, 0.5, 0.5, 0.5], [40, 70]),
        # seed 2: event 40, windows 0.2, 0.2: censored, dip 0.8; event 70, pre 0.2, windows
        # 0.1, 0.1 < 0.19: censored, dip 0.1. Regret 30 * 0.8 = 24 and 30 * 0.9 = 27.
        _cell(2, [1, 1, 1, 1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1], [40, 70]),
    ]
    tables = build_tables(cells, _spec([0, 1, 2]))
    outcomes = ["recovered", "recovered", "recovered", "censored", "censored", "censored"]
    assert tables.recovery.outcome.tolist() == outcomes
    (row,) = tables.summary.to_dict("records")
    # Recovery: seed 0's mean (20 + 30) / 2 = 25, seed 1's 30, seed 2 recovered from none.
    # Over the two seeds: 27.5 +- t_{0.975,1} * 5 / 2 (pooling the events, 26.7 over n = 3).
    assert row["recovery_time"] == pytest.approx(27.5)
    assert row["recovery_time_ci"] == pytest.approx(T1 * 5 / 2)
    # Dip per seed: 0.125, 0.475, 0.45: mean 0.35, s^2 = (0.225^2 + 0.125^2 + 0.1^2) / 2
    assert row["dip"] == pytest.approx(0.35)
    assert row["dip_ci"] == pytest.approx(T2 * math.sqrt(0.076250 / 2) / math.sqrt(3))
    # Adaptation regret per seed: 2.5, 12, 25.5: mean 40 / 3
    assert row["adaptation_regret"] == pytest.approx(40 / 3)
    spread = np.std([2.5, 12.0, 25.5], ddof=1)
    assert row["adaptation_regret_ci"] == pytest.approx(T2 * spread / math.sqrt(3))
    # Counts are of events, all seeds pooled
    assert (row["censored"], row["unmeasurable"]) == ("3/6", "0/6")


def test_an_early_event_has_a_row_and_is_counted_as_unmeasurable():
    flat = Curve(EDGES, np.full(10, 0.8))
    # seed 0: events at 10 (no pre-event window: W = 20) and 40 (RHO: tau 60), with a twin
    # that stays at 0.8. seed 1: its only event is early.
    cells = [
        _cell(0, RHO.values.tolist(), [10, 40], twin=flat),
        _cell(1, RHO.values.tolist(), [10]),
    ]
    tables = build_tables(cells, _spec([0, 1]))
    rec = tables.recovery
    assert rec[["seed", "event_t", "outcome"]].values.tolist() == [
        [0, 10, "unmeasurable"],
        [0, 40, "recovered"],
        [1, 10, "unmeasurable"],
    ]
    early = rec.iloc[0]
    assert math.isnan(early.pre) and math.isnan(early.recovery_time) and math.isnan(early.dip)
    assert not early.censored and early.censor_t == 40
    assert early.adaptation_regret == pytest.approx(10 * 0.2 * 3)  # [10, 40) at 1 - 0.8
    # Against the twin the early event is measured: [10, 30) = 0.8 = the twin's: tau 20
    assert (early.twin_outcome, early.twin_recovery_time) == ("recovered", 20.0)
    assert math.isnan(rec.iloc[2].twin_recovery_time)  # seed 1 ran no twin
    (row,) = tables.summary.to_dict("records")
    # The plain criterion measured one event of three; seed 1 has no measurable event
    assert (row["censored"], row["unmeasurable"]) == ("0/1", "2/3")
    assert row["recovery_time"] == 60.0 and math.isnan(row["recovery_time_ci"])
    # The twin criterion, seed 0 alone: (20 + 60) / 2
    assert (row["twin_censored"], row["twin_recovery_time"]) == ("0/2", 40.0)
    # Adaptation regret needs no pre-event level. Regret 1 - rho: 0.2 up to 40, then 0.6, 0.5,
    # 0.4, 0.3, 0.22, 0.2: [40, 100) = 22.2. Seed 0: (6 + 22.2) / 2 = 14.1; seed 1: [10, 100)
    # = 28.2. Over seeds: 21.15.
    assert row["adaptation_regret"] == pytest.approx((14.1 + 28.2) / 2)


def test_an_event_measured_at_the_next_batch_keeps_its_kind():
    # Fired at 35 within a batch of num_envs = 10: measured from 40, the batch grid.
    tables = build_tables([_cell(0, RHO.values.tolist(), [40], fired=[35])], _spec([0]))
    assert tables.recovery[["event_t", "kind", "magnitude"]].values.tolist() == [
        [40, "sudden", 1.0]
    ]


def test_both_report_footers_say_what_is_averaged_over_what():
    legend = [("reward", "mean normalised reward over the run")]
    page = _Page("t", ["scenario", "agent"], [["sudden", "online"]], {}, [], 1, legend)
    for text in (_markdown(page), _html(page)):
        flat = " ".join(unescape(text).split())
        assert "first averaged over each seed's drift events" in flat
        assert "recovery times over the events that recovered" in flat
        legend_text = re.sub(r"<[^>]+>|\*", "", flat)  # bold in HTML and Markdown
        assert "reward: mean normalised reward over the run" in legend_text  # the legend, both

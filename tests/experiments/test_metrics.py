"""The metrics of DESIGN section 6 on hand-computed cases (the arithmetic is in the comments;
docs/metrics.md works through the same numbers)."""

import itertools
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # Censored at 90: H = 50, [40, 90) = 10 * (0.3 + 0.25 + 0.2 + 0.1 + 0.02) = 8.7
    assert recovery(RHO, 40, 20, end=90, regret=REGRET).regret == pytest.approx(8.7)
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
        [0.5, 0.5, 0.3, 0.3],  # ties: position 0 ranks before position 1
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
    m = ranking_metrics(SCORES, RELEVANCE, k=2)
    # Top-2: request 0 -> positions 0, 2 (1 hit of 2 relevant); request 1 -> 0, 1 (1 hit of 1);
    # request 2 -> 0, 1 (no relevant item).
    assert m["precision_at_k"] == pytest.approx((1 / 2 + 1 / 2 + 0 / 2) / 3)  # 1/3
    assert m["recall_at_k"] == pytest.approx((1 / 2 + 1 / 1) / 2)  # 0.75 (request 2 left out)
    # F1 from the two means: 2 * (1/3) * 0.75 / (1/3 + 0.75) = 6/13
    assert m["f1_at_k"] == pytest.approx(6 / 13)
    # NDCG@2, gains = relevance, discounts 1 and 1/log2(3):
    ndcg = [
        (0.6 + 0.3 / LOG2_3) / (0.8 + 0.6 / LOG2_3),  # ranked 0.6, 0.3; ideal 0.8, 0.6
        (0.2 + 0.9 / LOG2_3) / (0.9 + 0.4 / LOG2_3),  # ranked 0.2, 0.9 (stable tie)
        (0.1 + 0.2 / LOG2_3) / (0.4 + 0.3 / LOG2_3),  # graded: defined without relevant items
    ]
    assert m["ndcg_at_k"] == pytest.approx(np.mean(ndcg))
    # AUC over all 4 candidates: request 0, positives {0.9, 0.2} vs negatives {0.7, 0.1}: 3/4;
    # request 1, positive 0.5 vs {0.5, 0.3, 0.3}: (0.5 + 1 + 1) / 3; request 2 has one class.
    assert m["auc"] == pytest.approx((3 / 4 + 2.5 / 3) / 2)


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

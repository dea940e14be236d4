"""The no-drift twin of a scheduled-drift world reproduces it exactly up to the drift, then
differs (the twin is what the world would have been without it)."""

import numpy as np
import pytest

from driftrec.simulators import SessionBatch
from driftrec.simulators.scenarios import resolve_world

SMALL = {"num_users": 1_500, "num_items": 600, "num_candidates": 20, "slate_size": 4}
CASES = {
    "sudden": {"at": 3_000},
    "recurring": {"period": 3_000},
    "cohort_shift": {"shift_at": 3_000, "new_cohort_at": 6_000},
    "gradual": {"start": 3_000, "duration": 2_000},
    "catalog_churn": {"every": 3_000, "quality_shift_at": 5_000},
}


def run(world, steps, sessions=100):
    batch = SessionBatch(world, sessions)
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        request = batch.requests
        slates = np.argsort(rng.random((sessions, 20)), axis=1)[:, :4]
        step = batch.serve(slates)
        out.append((request.users, request.candidates, request.utilities, step.response))
    return out


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_twin_equals_the_world_up_to_the_first_drift_and_differs_after(scenario):
    spec = resolve_world(scenario, **SMALL, **CASES[scenario])
    world, twin = spec.build(4), spec.twin().build(4)
    a, b = run(world, 60), run(twin, 60)
    first = min(e.t for *_, r in a for e in r.events)
    assert first == 3_000  # the first drift (scheduled or, for churn, continuous)
    before = first // 100  # steps served entirely before the drift fires
    for (ua, ca, xa, ra), (ub, cb, xb, rb) in zip(a[:before], b[:before], strict=True):
        np.testing.assert_array_equal(ua, ub)
        np.testing.assert_array_equal(ca, cb)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ra.reward, rb.reward)
        np.testing.assert_array_equal(ra.expected_reward, rb.expected_reward)
    assert any(r.events for *_, r in a) and not any(r.events for *_, r in b)
    after = [np.abs(xa - xb).max() for (_, _, xa, _), (_, _, xb, _) in zip(a, b, strict=True)]
    assert max(after[before + 1 :]) > 0  # the worlds part after the drift
    assert twin.regime_boundaries(10**6) == []

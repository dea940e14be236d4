"""Each drift kind does what it says, measured on the world's true state."""

import numpy as np
import pytest

from driftrec.simulators import (
    AlternatingPopulation,
    CatalogChurn,
    ClickNoise,
    CohortMixShift,
    FeedbackLoop,
    GradualShift,
    IncrementalDrift,
    NewCohort,
    RecurringShift,
    SuddenShift,
    World,
    WorldConfig,
    build_world,
)
from driftrec.simulators.drift import random_plane_basis, rotation

SMALL = WorldConfig(
    num_users=600, num_items=500, num_candidates=20, slate_size=4, initial_user_fraction=1.0
)


def cosines(a, b):
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def serve_random(world, steps, batch=50):
    """Serve uniformly random slates for ``steps`` batches; return the events that fired."""
    rng = np.random.default_rng(0)
    k, c = world.config.slate_size, world.config.num_candidates
    events = []
    for _ in range(steps):
        requests = world.make_requests(world.sample_users(batch))
        slates = np.argsort(rng.random((batch, c)), axis=1)[:, :k]
        events.extend(world.respond(requests, slates).events)
    return events


@pytest.mark.parametrize("similarity", [0.9, 0.5, 0.0, -0.3])
def test_rotation_gives_exact_cosine_for_every_vector(similarity):
    rng = np.random.default_rng(0)
    r = rotation(random_plane_basis(rng, 16), np.arccos(similarity))
    x = rng.standard_normal((100, 16))
    np.testing.assert_allclose(cosines(x, x @ r.T), similarity, atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(16), atol=1e-12)


@pytest.mark.parametrize("similarity", [0.8, 0.3, 0.0])
def test_sudden_shift_hits_requested_similarity_at_scheduled_time(similarity):
    world = World(SMALL, [SuddenShift(at=500, similarity=similarity, cohorts=(0, 2))], seed=1)
    before = world.users.theta.copy()
    events = serve_random(world, 8)  # 400 requests: nothing yet
    assert events == []
    np.testing.assert_array_equal(world.users.theta, before)
    events = serve_random(world, 4)
    assert [(e.t, e.kind, e.magnitude, e.cohorts) for e in events] == [
        (500, "sudden", similarity, (0, 2))
    ]
    affected = np.isin(world.users.cohort, (0, 2))
    np.testing.assert_allclose(
        cosines(before[affected], world.users.theta[affected]), similarity, atol=1e-5
    )
    np.testing.assert_array_equal(world.users.theta[~affected], before[~affected])


def test_gradual_shift_progresses_evenly_to_the_requested_similarity():
    proc = GradualShift(start=1_000, duration=4_000, similarity=0.0, steps=4)
    world = World(SMALL, [proc], seed=2)
    before = world.users.theta.copy()
    world.advance(3_000)  # steps at 1000 and 2000 fired: half the angle
    np.testing.assert_allclose(cosines(before, world.users.theta), np.cos(np.pi / 4), atol=1e-5)
    events = world.advance(10_000)
    np.testing.assert_allclose(cosines(before, world.users.theta), 0.0, atol=1e-5)
    assert [e.kind for e in events] == ["gradual_end"]
    assert world.regime(999) == 0 and world.regime(1_000) == 1


def test_incremental_drift_moves_by_the_requested_similarity_per_interval():
    world = World(SMALL, [IncrementalDrift(interval=100, similarity=0.95)], seed=3)
    before = world.users.theta.copy()
    events = world.advance(100)
    assert [(e.t, e.kind) for e in events] == [(100, "incremental")]
    np.testing.assert_allclose(cosines(before, world.users.theta), 0.95, atol=1e-5)
    events = world.advance(1_000)
    assert [e.t for e in events] == list(range(200, 1_001, 100))
    assert cosines(before, world.users.theta).mean() < 0.95


def test_recurring_preferences_return_exactly_to_the_earlier_state():
    world = World(SMALL, [RecurringShift(period=1_000, similarity=0.1)], seed=4)
    regime_a = world.users.theta.copy()
    world.advance(1_000)
    np.testing.assert_allclose(cosines(regime_a, world.users.theta), 0.1, atol=1e-5)
    regime_b = world.users.theta.copy()
    world.advance(2_000)
    np.testing.assert_allclose(world.users.theta, regime_a, atol=1e-5)
    world.advance(3_000)
    np.testing.assert_allclose(world.users.theta, regime_b, atol=1e-5)
    assert [world.regime(t) for t in (0, 999, 1_000, 2_500, 3_000)] == [0, 0, 1, 2, 3]


def test_recurring_population_alternates_who_is_active():
    world = World(SMALL, [AlternatingPopulation(period=1_000)], seed=5)
    preferences = world.users.theta.copy()
    assert set(world.users.cohort[world.sample_users(500)] % 2) == {0}
    world.advance(1_000)
    assert set(world.users.cohort[world.sample_users(500)] % 2) == {1}
    world.advance(2_000)
    assert set(world.users.cohort[world.sample_users(500)] % 2) == {0}
    np.testing.assert_array_equal(world.users.theta, preferences)  # only absent, not wrong


def request_shares(world, n=20_000):
    ids = world.sample_users(n, np.random.default_rng(0))
    counts = np.bincount(world.users.cohort[ids], minlength=len(world.users.cohort_centres))
    return counts / n


def test_cohort_mix_shift_changes_the_mix_as_scheduled():
    cfg = SMALL.replace(num_cohorts=2, activity_alpha=50.0)  # near-equal activity per user
    world = World(cfg, [CohortMixShift(start=1_000, duration=1, target=(0.0, 1.0))], seed=6)
    shares = request_shares(world)
    expected0 = (world.users.cohort == 0).mean()
    assert abs(shares[0] - expected0) < 0.02
    (event,) = world.advance(1_000)
    assert event.kind == "cohort_shift" and event.t == 1_000
    assert request_shares(world)[0] == 0.0
    # magnitude is the total-variation distance between request shares before and after
    assert abs(event.magnitude - shares[0]) < 0.02


def test_new_cohort_arrives_at_its_time_only():
    world = World(SMALL, [NewCohort(at=2_000, fraction=0.25)], seed=7)
    new = len(world.users.cohort_centres) - 1
    assert new == SMALL.num_cohorts
    assert (world.users.cohort == new).sum() == 150
    assert new not in world.users.cohort[world.sample_users(5_000)]
    (event,) = world.advance(2_000)
    assert (event.kind, event.cohorts) == ("new_cohort", (new,))
    assert new in world.users.cohort[world.sample_users(5_000)]


def test_catalog_churn_retired_items_never_appear_and_new_items_do():
    cfg = SMALL.replace(initial_item_fraction=0.5, retrieval_refresh=50)
    world = World(cfg, [CatalogChurn(every=500, fraction=0.2)], seed=8)
    initial = np.flatnonzero(world.items.available(0))
    events = serve_random(world, 40)  # 2,000 requests: 4 churn rounds
    assert [e.t for e in events] == [500, 1_000, 1_500, 2_000]
    assert all(e.items == 50 for e in events)
    retired = np.flatnonzero(world.items.retirement <= world.clock)
    assert len(retired) == 200
    seen = set()
    for _ in range(20):
        cands = world.make_requests(world.sample_users(50)).candidates
        assert not np.isin(cands, retired).any()
        seen.update(cands.ravel().tolist())
        world.respond(world.make_requests(world.sample_users(1)), np.zeros((1, 4), np.int64) - 1)
    released = set(np.flatnonzero(world.items.arrival > 0).tolist())
    assert released & seen, "new items must show up as candidates"
    assert len(np.flatnonzero(world.items.available(world.clock))) == len(initial)


def test_feedback_loop_pulls_preferences_toward_consumed_items():
    world = World(SMALL, [FeedbackLoop(strength=0.5, report_every=1_000)], seed=9)
    before = world.users.theta.copy()
    requests = world.make_requests(np.arange(200))  # distinct users: one click each at most
    slates, _ = world.oracle(requests)
    response = world.respond(requests, slates)
    clicked = response.true_click_slot >= 0
    users, items = requests.users[clicked], response.clicked_item[clicked]
    phi = world.items.phi[items]
    assert (cosines(world.users.theta[users], phi) > cosines(before[users], phi)).all()
    events = serve_random(world, 20)
    assert [e.kind for e in events] == ["feedback_loop"]
    assert 0.0 < events[0].magnitude < 1.0


def test_click_noise_corrupts_observed_clicks_only_inside_its_window():
    noise = ClickNoise(start=1_000, end=3_000, flip_prob=0.3, bot_fraction=0.2)
    world = World(SMALL, [noise], seed=10)

    def mismatch(n=2_000):
        requests = world.make_requests(world.sample_users(n))
        slates, _ = world.oracle(requests)
        r = world.respond(requests, slates)
        assert np.allclose(r.expected_reward, r.oracle_expected_reward)  # truth untouched
        return (r.click_slot != r.true_click_slot).mean()

    assert world.clock == 0 and mismatch(1_000) == 0.0
    assert mismatch(1_500) > 0.2  # roughly flip 0.3 plus bots on the rest
    events = world.advance(3_500)
    assert [e.kind for e in events] == ["click_noise_end"]
    assert mismatch() == 0.0


def test_scenario_presets_build_and_reject_unknown_names():
    world = build_world("sudden", seed=0, at=123, num_users=300, num_items=300)
    assert world.regime_boundaries(1_000) == [123]
    with pytest.raises(ValueError, match="valid scenarios are"):
        build_world("tsunami")
    with pytest.raises(TypeError, match="Scenario parameters: \\['at', 'cohorts', 'similarity'\\]"):
        build_world("sudden", when=5)


def test_bad_drift_parameters_fail_clearly():
    with pytest.raises(ValueError, match="cosine"):
        SuddenShift(at=10, similarity=1.5)
    with pytest.raises(ValueError, match="cohorts \\[42\\] do not exist"):
        World(SMALL, [SuddenShift(at=10, cohorts=(42,))], seed=0).advance(20)

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
    world = World.draw(SMALL, [SuddenShift(at=500, similarity=similarity, cohorts=(0, 2))], seed=1)
    before = world.users.theta.copy()
    events = serve_random(world, 8)  # 400 requests: nothing yet
    assert events == []
    np.testing.assert_array_equal(world.users.theta, before)
    events = serve_random(world, 4)
    assert [(e.t, e.kind, e.similarity, e.cohorts) for e in events] == [
        (500, "sudden", similarity, (0, 2))
    ]
    assert events[0].magnitude == pytest.approx(1.0 - similarity)  # grows with the change
    affected = np.isin(world.users.cohort, (0, 2))
    np.testing.assert_allclose(
        cosines(before[affected], world.users.theta[affected]), similarity, atol=1e-5
    )
    np.testing.assert_array_equal(world.users.theta[~affected], before[~affected])


def test_gradual_shift_progresses_evenly_to_the_requested_similarity():
    proc = GradualShift(start=1_000, duration=4_000, similarity=0.0, steps=4)
    world = World.draw(SMALL, [proc], seed=2)
    before = world.users.theta.copy()
    world.advance(3_000)  # steps at 1000 and 2000 fired: half the angle
    np.testing.assert_allclose(cosines(before, world.users.theta), np.cos(np.pi / 4), atol=1e-5)
    events = world.advance(10_000)
    np.testing.assert_allclose(cosines(before, world.users.theta), 0.0, atol=1e-5)
    assert [e.kind for e in events] == ["gradual_end"]
    assert world.regime(999) == 0 and world.regime(1_000) == 1


def test_incremental_drift_moves_by_the_requested_similarity_per_interval():
    world = World.draw(SMALL, [IncrementalDrift(interval=100, similarity=0.95)], seed=3)
    before = world.users.theta.copy()
    events = world.advance(100)
    assert [(e.t, e.kind) for e in events] == [(100, "incremental")]
    np.testing.assert_allclose(cosines(before, world.users.theta), 0.95, atol=1e-5)
    events = world.advance(1_000)
    assert [e.t for e in events] == list(range(200, 1_001, 100))
    assert cosines(before, world.users.theta).mean() < 0.95


def test_recurring_preferences_return_exactly_to_the_earlier_state():
    world = World.draw(SMALL, [RecurringShift(period=1_000, similarity=0.1)], seed=4)
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
    world = World.draw(SMALL, [AlternatingPopulation(period=1_000)], seed=5)
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
    world = World.draw(cfg, [CohortMixShift(start=1_000, duration=1, target=(0.0, 1.0))], seed=6)
    shares = request_shares(world)
    expected0 = (world.users.cohort == 0).mean()
    assert abs(shares[0] - expected0) < 0.02
    (event,) = world.advance(1_000)
    assert event.kind == "cohort_shift" and event.t == 1_000
    assert request_shares(world)[0] == 0.0
    # magnitude is the total-variation distance between request shares before and after
    assert abs(event.magnitude - shares[0]) < 0.02


def test_new_cohort_arrives_at_its_time_only():
    world = World.draw(SMALL, [NewCohort(at=2_000, fraction=0.25)], seed=7)
    new = len(world.users.cohort_centres) - 1
    assert new == SMALL.num_cohorts
    assert (world.users.cohort == new).sum() == 150
    assert new not in world.users.cohort[world.sample_users(5_000)]
    (event,) = world.advance(2_000)
    assert (event.kind, event.cohorts) == ("new_cohort", (new,))
    assert new in world.users.cohort[world.sample_users(5_000)]


def test_catalog_churn_retired_items_never_appear_and_new_items_do():
    cfg = SMALL.replace(initial_item_fraction=0.5)
    world = World.draw(cfg, [CatalogChurn(every=500, fraction=0.2)], seed=8)
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
    world = World.draw(SMALL, [FeedbackLoop(strength=0.5, report_every=1_000)], seed=9)
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
    world = World.draw(SMALL, [noise], seed=10)

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
        World.draw(SMALL, [SuddenShift(at=10, cohorts=(42,))], seed=0)  # at construction


# ---------------------------------------------------------------- world-model defects (issue 6)


def inactive_share_after_switch(leak, seed, sessions=1_024, requests=5_000):
    """Share of the first ``requests`` after a population switch that come from the group
    that just became inactive, and that group's expected share under the new activity."""
    from driftrec.simulators import SessionBatch
    from driftrec.simulators.drift import cohort_request_shares

    world = build_world(
        "recurring", seed=seed, period=20_480, leak=leak, num_users=5_000, num_items=500,
        num_candidates=20, slate_size=4, initial_user_fraction=1.0,
    )  # fmt: skip
    batch = SessionBatch(world, sessions)
    rng = np.random.default_rng(0)
    while not batch.serve(np.argsort(rng.random((sessions, 20)), axis=1)[:, :4]).response.events:
        pass
    assert world.regime() == 1
    users = []
    while len(users) * sessions < requests:
        users.append(batch.requests.users.copy())
        batch.serve(np.argsort(rng.random((sessions, 20)), axis=1)[:, :4])
    cohorts = world.users.cohort[np.concatenate(users)[:requests]]
    inactive = cohorts % 2 == 0  # even cohorts are active in A, inactive in B
    expected = cohort_request_shares(world.users, world.clock)[0::2].sum()
    return inactive.mean(), expected


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("leak", [0.0, 0.2])
def test_population_switch_is_sharp_for_running_sessions(leak, seed):
    """Before the fix, running sessions went on for ~20 requests each, so 27-68% of B's first
    5,000 requests came from A's users. Now the inactive group's share right after the switch
    is its expected share under the new activity (at most ``leak``), to within 0.03: 5,000
    requests from about 1,000 sessions of ~5 requests each have a standard error near 0.01."""
    share, expected = inactive_share_after_switch(leak, seed)
    assert expected <= leak + 1e-9
    assert share <= leak + 0.03
    assert abs(share - expected) <= 0.03, (share, expected)


def test_thinned_sessions_end_with_termination_and_no_churn():
    from driftrec.simulators import SessionBatch

    world = build_world(
        "recurring", seed=0, period=1_000, num_users=2_000, num_items=300, num_candidates=20,
        slate_size=4, churn_prob=1.0, initial_user_fraction=1.0,
    )  # fmt: skip
    batch = SessionBatch(world, 500)
    slates = np.tile(np.arange(4), (500, 1))
    step = batch.serve(slates)
    alive = world.users.alive.sum()
    step = batch.serve(slates)  # the clock passes 1,000: every A session ends at once
    assert step.response.events
    assert step.terminated.all()
    assert world.users.alive.sum() >= alive - step.terminated.sum()  # thinning is not churn
    assert set(world.users.cohort[batch.users] % 2) == {1}


def test_new_cohort_features_describe_their_own_taste():
    """Before the fix the new cohort's features came from the taste they had before it was
    redrawn (correlation ~0.02 against ~0.95 for everyone else)."""
    world = build_world("cohort_shift", seed=0, num_users=4_000, num_items=300)
    users = world.users
    clean = users.theta @ users.feature_map * np.sqrt(users.theta.shape[1])
    corr = np.array([np.corrcoef(clean[u], users.features[u])[0, 1] for u in range(4_000)])
    new = users.cohort == len(users.cohort_centres) - 1
    assert new.sum() == 800
    assert corr[new].mean() > 0.9 and abs(corr[new].mean() - corr[~new].mean()) < 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohort_shift_magnitude_is_the_tv_distance_of_request_shares_among_present_users(seed):
    """Before the fix the magnitude counted users not yet arrived and the reserved new cohort
    (0.377 against a true 0.449). Checked against an independent count of present users'
    activity, and against the shares of requests actually sampled."""
    world = build_world(
        "cohort_shift", seed=seed, shift_at=5_000, shift_duration=2_000, new_cohort_at=3_000,
        initial_user_fraction=0.6, arrival_horizon=20_000, num_users=6_000, num_items=300,
    )  # fmt: skip
    last_step = 5_000 + (19 * 2_000) // 20  # 20 steps spread evenly over the duration
    events = world.advance(last_step - 1)
    assert [(e.kind, e.t) for e in events] == [("new_cohort", 3_000), ("cohort_shift", 5_000)]
    planned = events[1].magnitude
    (event,) = world.advance(last_step)
    assert (event.kind, event.t) == ("cohort_shift_end", last_step)
    users = world.users
    # the planned size: the target multipliers, over the users present at the start
    present = (users.arrival <= 5_000) & users.alive
    weight = np.bincount(
        users.cohort, users.activity * present, minlength=len(users.cohort_centres)
    )
    target = users.cohort_activity  # reached now
    old, new = weight / weight.sum(), weight * target / (weight * target).sum()
    assert planned == pytest.approx(0.5 * np.abs(new - old).sum(), abs=1e-12)
    # the realised size, over the users present at the last step
    present = (users.arrival <= last_step) & users.alive
    n = len(users.cohort_centres)
    weight = np.bincount(users.cohort, users.activity * present, minlength=n)
    old = weight / weight.sum()  # every multiplier was 1 before the shift
    new = weight * users.cohort_activity / (weight * users.cohort_activity).sum()
    assert event.magnitude == pytest.approx(0.5 * np.abs(new - old).sum(), abs=1e-12)
    # and against the shares of requests actually sampled now (200k draws: error < 0.005)
    assert event.magnitude == pytest.approx(
        0.5 * np.abs(request_shares(world, 200_000) - old).sum(), abs=0.01
    )


@pytest.mark.parametrize(("duration", "steps"), [(99, 50), (149, 50), (4_000, 4), (7, 50)])
def test_gradual_drift_ends_at_start_plus_duration_exactly(duration, steps):
    """Before the fix, duration=99 ended at +50 and duration=149 at +100."""
    start = 1_000
    world = World.draw(SMALL, [GradualShift(start, duration, 0.0, steps=steps)], seed=0)
    before = world.users.theta.copy()
    world.advance(start + duration - 1)
    assert cosines(before, world.users.theta).min() > 1e-3  # not there yet
    (event,) = world.advance(start + duration)
    assert (event.kind, event.t) == ("gradual_end", start + duration)
    np.testing.assert_allclose(cosines(before, world.users.theta), 0.0, atol=1e-5)


def test_cohort_mix_steps_spread_evenly_to_the_end_of_the_duration():
    cfg = SMALL.replace(num_cohorts=2)
    shift = CohortMixShift(start=1_000, duration=99, target=(0.0, 1.0), steps=20)
    world = World.draw(cfg, [shift], seed=0)
    world.advance(1_093)
    assert world.users.cohort_activity[0] > 0.0
    world.advance(1_094)  # last step: floor(19 * 99 / 20) = 94
    assert world.users.cohort_activity[0] == 0.0


PREFERENCE_PROCESSES = [
    lambda s: SuddenShift(at=100, similarity=s),
    lambda s: GradualShift(start=100, duration=100, similarity=s),
    lambda s: IncrementalDrift(interval=100, similarity=s),
    lambda s: RecurringShift(period=100, similarity=s),
]


@pytest.mark.parametrize("make", PREFERENCE_PROCESSES)
def test_preference_drift_magnitude_grows_with_severity_and_is_zero_for_none(make):
    magnitudes = []
    for similarity in (1.0, 0.9, 0.5, 0.0, -0.5):
        events = World.draw(SMALL, [make(similarity)], seed=0).advance(300)
        assert all(e.similarity == similarity for e in events)
        magnitudes.append(events[0].magnitude)
    assert magnitudes[0] == 0.0
    assert magnitudes == sorted(magnitudes) and len(set(magnitudes)) == 5


def test_every_drift_kind_reports_zero_magnitude_for_no_change():
    config = SMALL.replace(num_cohorts=2, initial_item_fraction=0.5)
    assert World.draw(config, [CohortMixShift(10, target=(1.0, 1.0))], seed=0).advance(100)[
        0
    ].magnitude == pytest.approx(0.0)
    assert World.draw(config, [AlternatingPopulation(10, leak=0.0)], seed=0).advance(10)[
        0
    ].magnitude == pytest.approx(1.0)  # everything changes hands
    world = World.draw(config, [FeedbackLoop(strength=0.0, report_every=100)], seed=0)
    assert world.advance(100)[0].magnitude == pytest.approx(0.0, abs=1e-6)

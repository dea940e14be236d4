"""The world: seeding, sessions, probes, logged data, configuration errors."""

import itertools
import math
import pickle

import numpy as np
import pytest

from driftrec.simulators import SessionBatch, World, WorldConfig, build_world
from driftrec.simulators.logged import slate_propensity

SMALL = dict(num_users=400, num_items=500, num_candidates=20, slate_size=4)


def rollout(world, steps=30, batch=16):
    sessions = SessionBatch(world, batch)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        slates = np.argsort(rng.random((batch, 20)), axis=1)[:, :4]
        step = sessions.serve(slates)
        out.append(
            (
                sessions.requests.candidates.copy(),
                step.response.reward.copy(),
                step.response.expected_reward.copy(),
                step.terminated.copy(),
            )
        )
    return out


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_same_seed_same_trajectory_different_seed_differs():
    a = rollout(build_world("sudden", seed=5, at=200, **SMALL))
    b = rollout(build_world("sudden", seed=5, at=200, **SMALL))
    c = rollout(build_world("sudden", seed=6, at=200, **SMALL))
    assert_same(a, b)
    assert not np.array_equal(a[-1][0], c[-1][0])


def test_probe_sets_and_logs_do_not_change_the_trajectory():
    plain = build_world("gradual", seed=3, start=100, duration=200, **SMALL)
    probed = build_world("gradual", seed=3, start=100, duration=200, **SMALL)
    probed.probe_set(50)
    probed.log_interactions(100, "softmax")
    assert_same(rollout(plain), rollout(probed))


def test_pickled_world_continues_identically():
    world = build_world("catalog_churn", seed=1, every=100, **SMALL)
    rollout(world, steps=10)
    clone = pickle.loads(pickle.dumps(world))
    assert_same(rollout(world), rollout(clone))


def test_heavy_tailed_activity_few_users_make_most_requests():
    world = World.draw(
        WorldConfig(num_users=5_000, num_items=300, initial_user_fraction=1.0), seed=0
    )
    counts = np.bincount(world.sample_users(100_000), minlength=5_000)
    top = np.sort(counts)[::-1]
    assert top[:500].sum() / counts.sum() > 0.3  # top 10% of users make > 30% of requests


def test_late_users_arrive_over_time():
    world = World.draw(
        WorldConfig(**SMALL, initial_user_fraction=0.5, arrival_horizon=1_000), seed=0
    )
    late = world.users.arrival > 0
    assert not np.isin(world.sample_users(5_000), np.flatnonzero(late)).any()
    world.advance(1_000)
    assert np.isin(world.sample_users(5_000), np.flatnonzero(late)).any()


def test_sessions_end_and_dissatisfied_users_churn():
    world = World.draw(WorldConfig(**SMALL, churn_prob=1.0, no_click_utility=8.0), seed=0)
    sessions = SessionBatch(world, 32)
    ended = 0
    for _ in range(50):
        step = sessions.serve(np.full((32, 4), -1))  # empty slates: nobody ever clicks
        ended += step.terminated.sum()
    assert ended > 0
    assert (~world.users.alive).sum() > 0
    assert not np.isin(world.sample_users(2_000), np.flatnonzero(~world.users.alive)).any()


def test_boredom_lowers_utility_of_a_just_clicked_topic():
    world = World.draw(WorldConfig(**SMALL, boredom_increment=1.0), seed=0)
    user = np.array([0])
    requests = world.make_requests(user)
    slates, _ = world.oracle(requests)
    for _ in range(30):
        r = world.respond(requests, slates)
        if r.true_click_slot[0] >= 0:
            break
        requests = world.make_requests(user)
        slates, _ = world.oracle(requests)
    topic = world.items.topic[r.clicked_item[0]]
    assert world.users.boredom[0, topic] > 0
    assert world.users.history[0, 0] == r.clicked_item[0]


def test_probe_set_scores_policies_exactly():
    world = build_world("stationary", seed=0, **SMALL)
    probe = world.probe_set(200)
    assert probe.observation["candidate_ids"].shape == (200, 20)
    assert probe.normalised_reward(probe.oracle_slates) == pytest.approx(1.0)
    np.testing.assert_allclose(
        probe.expected_reward(probe.oracle_slates), probe.oracle_expected_reward
    )
    assert 0.2 < float(np.mean(probe.random_expected_reward / probe.oracle_expected_reward)) < 0.9
    relevance = probe.click_probability()
    assert relevance.shape == (200, 20) and ((relevance > 0) & (relevance < 1)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_repeated_position_is_shown_once_outside_the_environment_too(seed):
    # An agent's greedy slate may repeat its best candidate in every slot: the probe and the
    # world score it as the environment serves it (once, at the first slot), so it never
    # beats the oracle (it did: 1.05 of the oracle on a probe, negative regret in respond).
    world = build_world("stationary", seed=seed, **SMALL)
    probe = world.probe_set(100)
    best = probe.oracle_slates[:, :1]
    repeated = np.repeat(best, 4, axis=1)
    shown_once = np.concatenate([best, np.full((100, 3), -1)], axis=1)
    np.testing.assert_array_equal(
        probe.expected_reward(repeated), probe.expected_reward(shown_once)
    )
    assert probe.normalised_reward(repeated) < 1.0
    requests = world.make_requests(world.sample_users(50))
    oracle_slates, oracle_value = world.oracle(requests)
    repeated = np.repeat(oracle_slates[:, :1], 4, axis=1)
    probs = world.slot_probabilities(requests, repeated)
    assert (probs[:, 0] > 0).all() and (probs[:, 1:] == 0).all()
    response = world.respond(requests, repeated)
    assert (response.expected_reward <= oracle_value).all()
    assert set(response.click_slot.tolist()) <= {-1, 0}
    for sessions in (1, 16):  # the single request's path too
        batch = SessionBatch(world, sessions)
        oracle_slates, oracle_value = world.oracle(batch.requests)
        step = batch.serve(np.repeat(oracle_slates[:, :1], 4, axis=1))
        assert (step.response.expected_reward <= oracle_value).all()
        assert set(step.response.click_slot.tolist()) <= {-1, 0}


@pytest.mark.parametrize(
    "slates, error, match",
    [
        (np.zeros((30, 3), dtype=np.int64), ValueError, r"shape \(30, 4\)"),
        (np.zeros((4, 30), dtype=np.int64), ValueError, r"shape \(30, 4\)"),
        (np.zeros((30, 4)), TypeError, "integer array"),
        (np.full((30, 4), 20), ValueError, r"\[0, 19\]"),
        (np.full((30, 4), -2), ValueError, "-1 for an empty slot"),
    ],
)
def test_the_world_and_the_probe_refuse_slates_they_cannot_score(slates, error, match):
    world = build_world("stationary", seed=0, **SMALL)
    probe = world.probe_set(30)
    requests = world.make_requests(world.sample_users(30))
    for score in (
        probe.expected_reward,
        probe.normalised_reward,
        lambda s: world.slot_probabilities(requests, s),
        lambda s: world.expected_reward(requests, s),
        lambda s: world.respond(requests, s),
        SessionBatch(world, 30).serve,
    ):
        with pytest.raises(error, match=match):
            score(slates)
    assert world.clock == 0  # nothing was served


def test_uniform_logging_propensity_is_one_over_ordered_slates():
    world = build_world("stationary", seed=0, **SMALL)
    log = world.log_interactions(300, "uniform")
    np.testing.assert_allclose(log.propensity, 1 / math.perm(20, 4))
    assert log.slates.shape == (300, 4)
    assert all(len(set(row)) == 4 for row in log.slates.tolist())


def test_softmax_logging_propensities_match_empirical_frequencies():
    # three live items, three candidates: every request ranks the same set (in some order)
    cfg = WorldConfig(
        num_users=1,
        num_items=4,
        initial_item_fraction=0.75,
        num_candidates=3,
        slate_size=2,
        boredom_increment=0.0,
    )
    world = World.draw(cfg, seed=0)
    log = world.log_interactions(20_000, "softmax", temperature=0.5)
    chosen = np.take_along_axis(log.observation["candidate_ids"], log.slates, axis=1)
    _keys, first, counts = np.unique(chosen, axis=0, return_index=True, return_counts=True)
    cand_sets = np.sort(log.observation["candidate_ids"], axis=1)
    assert (cand_sets == cand_sets[0]).all(), "one user, three candidates: same set every time"
    freq = counts / len(chosen)
    p = log.propensity[first]
    assert 0.999 < p.sum() <= 1.0 + 1e-12  # the unseen ordered slates are the unlikely ones
    sigma = np.sqrt(p * (1 - p) / len(chosen))
    assert np.all(np.abs(freq - p) < 4.5 * sigma)


@pytest.mark.parametrize("temperature", [1.0, 1e-2, 1e-6])
def test_slate_propensities_are_a_distribution_over_ordered_slates_at_any_temperature(
    temperature,
):
    """Every ordered slate of a row, enumerated: the propensities sum to 1 and the greedy
    slate takes nearly all of it when the temperature is low (where subtracting chosen mass
    from the total used to leave 0 / 0 = NaN)."""
    utilities = np.random.default_rng(0).normal(0.0, 3.0, (4, 6))
    slates = np.array(list(itertools.permutations(range(6), 3)))  # all 120 ordered slates
    for row in utilities / temperature:
        p = slate_propensity(np.broadcast_to(row, (len(slates), 6)), slates)
        assert np.isfinite(p).all() and (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, rel=1e-9)
        greedy = tuple(np.argsort(-row)[:3])
        if temperature <= 1e-2:
            assert p[slates.tolist().index(list(greedy))] > 0.99
    world = build_world("stationary", seed=0, **SMALL)
    log = world.log_interactions(300, "softmax", temperature=1e-6)
    assert np.isfinite(log.propensity).all() and (log.propensity > 0.99).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent_dim": 15}, "latent_dim must be even"),
        ({"slate_size": 30}, "cannot exceed num_candidates"),
        ({"num_items": 20}, "only 16 items are live"),
        ({"choice_model": "probit"}, "choice_model must be one of"),
        ({"num_users": 0}, "num_users must be an integer >= 1, got 0"),
    ],
)
def test_bad_world_configuration_fails_with_a_clear_message(change, message):
    with pytest.raises(ValueError, match=message):
        WorldConfig(**{**SMALL, **change})


def test_unknown_world_parameter_lists_valid_ones():
    with pytest.raises(TypeError, match="unknown world parameter"):
        WorldConfig().replace(num_userz=3)


def test_requests_must_be_served_once_in_order():
    world = build_world("stationary", seed=0, **SMALL)
    requests = world.make_requests(world.sample_users(3))
    world.respond(requests, np.zeros((3, 4), np.int64))
    with pytest.raises(RuntimeError, match="serve each batch of requests once"):
        world.respond(requests, np.zeros((3, 4), np.int64))


@pytest.mark.parametrize("n", [1, 3, 200])
def test_candidates_are_distinct_live_items_from_every_pool(n):
    world = build_world("stationary", seed=0, num_users=400, num_items=2_000)
    requests = world.make_requests(world.sample_users(n))
    cands = requests.candidates
    assert cands.shape == (n, 100)
    assert all(len(set(row)) == 100 for row in cands.tolist())
    assert world.items.available(world.clock)[cands].all()
    popular, fresh, rest = (pool for pool, _ in world.retrieval.pools(world.clock))
    for pool, share in ((popular, 20), (fresh, 10), (rest, 70)):
        assert (np.isin(cands, pool).sum(axis=1) == share).all()


@pytest.mark.parametrize(
    "shares",
    [
        dict(num_candidates=7, popular_fraction=0.5, fresh_fraction=0.5),  # both round up
        dict(num_candidates=3, popular_fraction=0.5, fresh_fraction=0.5),
        dict(num_items=300, popular_fraction=0.2, fresh_fraction=0.8),  # fresh pool too small
        dict(num_items=300, popular_fraction=0.0, fresh_fraction=1.0),
        dict(num_candidates=200, popular_fraction=1.0, fresh_fraction=0.0),  # every live item
    ],
)
@pytest.mark.parametrize("n", [1, 64])
def test_any_valid_pool_shares_give_full_rows_of_distinct_live_candidates(shares, n):
    """Shares that sum to 1, or ask a pool for more than it holds, are valid settings: every
    request still gets num_candidates distinct live items, through a long run."""
    params = {"num_users": 200, "num_items": 400, "slate_size": 1, **shares}
    world = build_world("catalog_churn", seed=0, every=20 * n, **params)  # churns 3 times
    c = world.config.num_candidates
    sessions = SessionBatch(world, n)
    for _ in range(60):
        cands = sessions.requests.candidates
        assert cands.shape == (n, c)
        assert all(len(set(row)) == c for row in cands.tolist())
        assert world.items.available(world.clock)[cands].all()
        sessions.serve(np.zeros((n, 1), dtype=np.int64))


def test_utilities_scored_in_chunks_equal_the_whole_batch_to_the_bit(monkeypatch):
    """Large batches gather the candidates' latent vectors in cache-sized chunks of rows; the
    utilities (boredom included) are the same as scoring the batch at once."""
    import driftrec.simulators.scoring as scoring_module

    world = build_world("stationary", seed=4, num_users=400, num_items=300, num_candidates=20)
    rng = np.random.default_rng(0)
    world.users.boredom[:] = rng.random(world.users.boredom.shape).astype(np.float32)
    users = rng.integers(0, 360, 50)
    candidates = rng.integers(0, 240, (50, 20))
    whole = world.utilities(users, candidates)
    monkeypatch.setattr(scoring_module, "UTILITY_CHUNK_BYTES", 7 * 20 * 16 * 4)  # 7-row chunks
    chunked = world.utilities(users, candidates)
    assert chunked.dtype == whole.dtype
    np.testing.assert_array_equal(chunked, whole)


def assert_uniform(counts: np.ndarray, what: str) -> None:
    """``counts`` of equally likely outcomes pass a chi-square test at p < 1e-7."""
    expected = counts.sum() / len(counts)
    statistic = float(((counts - expected) ** 2 / expected).sum())
    df = len(counts) - 1
    assert statistic < df + 6 * math.sqrt(2 * df), f"{what}: chi-square {statistic:.0f}, {df} df"


POOLS = dict(num_users=50, num_items=400, num_candidates=10, slate_size=2, popular_pool=20)
POOLS.update(fresh_pool=20, popular_fraction=0.3, fresh_fraction=0.2)


@pytest.mark.parametrize("spare", [True, False], ids=["spare draws", "drawing again"])
def test_a_request_drawn_alone_is_a_uniform_ordered_sample_of_each_pool(spare):
    # A request served alone (every step of the single environment) draws positions and keeps
    # the first distinct ones; without spare draws nearly every request draws again, which must
    # not bias anything. The rest comes from all live items with the pooled ones rejected.
    world = build_world("stationary", seed=0, **POOLS)
    retrieval = world.retrieval
    (popular, _), (fresh, _), (rest, _) = retrieval.pools(world.clock)
    plan = retrieval._row_plan(spare)
    rng = np.random.default_rng(1)
    rows = np.array([plan.draw(rng) for _ in range(30_000)])
    assert all(len(set(row)) == 10 for row in rows.tolist())
    for pool, slots in ((popular, [0, 1, 2]), (fresh, [3, 4]), (rest, [5, 9])):
        assert np.isin(rows[:, slots[0] : slots[-1] + 1], pool).all()
        for slot in slots:
            counts = (rows[:, slot, None] == pool[None]).sum(axis=0)
            assert_uniform(counts, f"slot {slot} over its pool of {len(pool)}")
    # Ordered pairs of the popular block: all 20 * 19 equally likely.
    first, second = np.searchsorted(popular, rows[:, 0]), np.searchsorted(popular, rows[:, 1])
    pairs = np.bincount(first * 20 + second, minlength=400).reshape(20, 20)
    assert (np.diag(pairs) == 0).all()
    assert_uniform(pairs[~np.eye(20, dtype=bool)], "ordered pairs of the popular block")


def test_a_request_taking_most_of_a_pool_takes_a_uniform_permutation_of_it():
    world = build_world("stationary", seed=0, **dict(POOLS, popular_pool=4))  # 3 of 4
    retrieval = world.retrieval
    (popular, count), *_ = retrieval.pools(world.clock)
    assert (len(popular), count) == (4, 3)
    rng = np.random.default_rng(2)
    rows = np.array([retrieval.retrieve(1, world.clock, rng)[0, :3] for _ in range(12_000)])
    codes = (np.searchsorted(popular, rows) * np.array([16, 4, 1])).sum(axis=1)
    triples = np.bincount(codes, minlength=64)
    ordered = [16 * a + 4 * b + c for a in range(4) for b in range(4) for c in range(4)]
    distinct = [code for code in ordered if len({code // 16, code // 4 % 4, code % 4}) == 3]
    assert triples[[c for c in ordered if c not in distinct]].sum() == 0
    assert_uniform(triples[distinct], "ordered triples of a pool of 4")


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300, 9_000])
def test_sorted_unique_is_numpys_unique(n):
    from driftrec.simulators.retrieval import sorted_unique

    values = np.random.default_rng(n).integers(0, 40 if n < 100 else 50_000, n)
    got, want = sorted_unique(values), np.unique(values)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)

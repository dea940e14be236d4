"""Choice models: closed forms on hand-computed cases, the oracle against brute force, sampling."""

import itertools
import math

import numpy as np
import pytest

from driftrec.simulators.choice import (
    CascadeChoice,
    MultinomialLogitChoice,
    make_choice_model,
    position_bias_terms,
    sample_slots,
)


def mnl(k=3, s0=0.5, strength=1.0):
    return MultinomialLogitChoice(k, s0, position_bias_terms(k, strength))


def test_position_bias_is_dcg_shaped():
    np.testing.assert_allclose(position_bias_terms(4, 2.0), [0.0, -2.0, -2 * math.log2(3), -4.0])


def test_mnl_probabilities_hand_computed():
    model = mnl(k=2, s0=0.0, strength=1.0)  # b = [0, -1]
    p = model.slot_probabilities(np.array([[1.0, 2.0]]), np.ones((1, 2), bool))
    w1, w2 = math.exp(1.0), math.exp(2.0 - 1.0)
    np.testing.assert_allclose(p[0], [w1 / (1 + w1 + w2), w2 / (1 + w1 + w2)])


def test_mnl_empty_slot_gets_no_probability():
    model = mnl(k=2, s0=0.0, strength=0.0)
    p = model.slot_probabilities(np.array([[1.0, 5.0]]), np.array([[True, False]]))
    np.testing.assert_allclose(p[0], [math.e / (1 + math.e), 0.0])


def test_cascade_probabilities_hand_computed():
    model = CascadeChoice(3, 0.0)
    s = np.array([[0.0, math.log(3.0), -math.log(3.0)]])  # attractions 1/2, 3/4, 1/4
    p = model.slot_probabilities(s, np.ones((1, 3), bool))
    np.testing.assert_allclose(p[0], [0.5, 0.5 * 0.75, 0.5 * 0.25 * 0.25])


def all_actions(c, k):
    """Every action of the action space (k-tuples of positions); a repeat is an empty slot."""
    for action in itertools.product(range(c), repeat=k):
        slate = list(action)
        for j in range(k):
            if action[j] in action[:j]:
                slate[j] = -1
        yield np.array(slate)


def brute_force(model, utilities, values):
    c, k = utilities.shape[1], model.slate_size
    best = np.full(len(utilities), -np.inf)
    for slate in all_actions(c, k):
        slates = np.tile(slate, (len(utilities), 1))
        su = np.take_along_axis(utilities, np.maximum(slates, 0), axis=1)
        p = model.slot_probabilities(su, slates >= 0)
        v = p if values is None else p * np.take_along_axis(values, np.maximum(slates, 0), 1)
        best = np.maximum(best, v.sum(axis=1))
    return best


@pytest.mark.parametrize("kind", ["mnl", "cascade"])
@pytest.mark.parametrize("reward", ["click", "engagement"])
def test_oracle_equals_brute_force(kind, reward):
    rng = np.random.default_rng(7)
    n, c, k = 40, 6, 3
    model = make_choice_model(kind, k, no_click_utility=0.5, position_bias=1.2)
    utilities = rng.normal(0, 1.5, (n, c))
    values = np.exp(rng.normal(0, 1.0, (n, c))) if reward == "engagement" else None
    slates, value = model.oracle(utilities, values)
    np.testing.assert_allclose(value, brute_force(model, utilities, values), rtol=1e-10)
    # the returned slate really achieves the returned value
    su = np.take_along_axis(utilities, np.maximum(slates, 0), axis=1)
    p = model.slot_probabilities(su, slates >= 0)
    achieved = p if values is None else p * np.take_along_axis(values, np.maximum(slates, 0), 1)
    np.testing.assert_allclose(achieved.sum(axis=1), value, rtol=1e-10)


def test_engagement_oracle_is_not_top_k_by_utility():
    # One high-utility, low-value item: the oracle must leave it out (assortment effect).
    model = mnl(k=2, s0=0.0, strength=0.0)
    utilities = np.array([[3.0, 0.0, 0.0]])
    values = np.array([[0.01, 1.0, 1.0]])
    slate, value = model.oracle(utilities, values)
    assert set(slate[0].tolist()) == {1, 2}
    np.testing.assert_allclose(value, [2 / 3])


def test_random_slate_expected_reward_matches_closed_form():
    from driftrec.simulators import World, WorldConfig

    world = World.draw(
        WorldConfig(num_users=50, num_items=80, num_candidates=8, slate_size=3), seed=2
    )
    requests = world.make_requests(world.sample_users(5))
    rng = np.random.default_rng(0)
    slates = np.stack([rng.permutation(8)[:3] for _ in range(5)])
    cfg = world.config
    expected = []
    for row in range(5):
        w = [
            math.exp(requests.utilities[row, slates[row, j]] - cfg.position_bias * math.log2(1 + j))
            for j in range(3)
        ]
        expected.append(sum(w) / (math.exp(cfg.no_click_utility) + sum(w)))
    np.testing.assert_allclose(world.expected_reward(requests, slates), expected, rtol=1e-6)


@pytest.mark.parametrize("kind", ["mnl", "cascade"])
def test_click_frequencies_match_probabilities(kind):
    # 20,000 draws of one slate; each slot frequency (and no-click) is binomial. A 4.5-sigma
    # band keeps the chance of a false failure below 1e-4 over the 4 outcomes.
    model = make_choice_model(kind, 3, no_click_utility=0.3, position_bias=1.0)
    n = 20_000
    utilities = np.tile([[1.0, 0.2, -0.5]], (n, 1))
    p = model.slot_probabilities(utilities, np.ones((n, 3), bool))
    slots = sample_slots(p, np.random.default_rng(11))
    probs = np.append(p[0], 1 - p[0].sum())
    freq = np.array([(slots == j).mean() for j in range(3)] + [(slots == -1).mean()])
    sigma = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) < 4.5 * sigma), (freq, probs)


def test_unknown_choice_model_lists_valid():
    with pytest.raises(ValueError, match="valid ones are"):
        make_choice_model("probit", 3, 0.0, 1.0)


@pytest.mark.parametrize("kind", ["mnl", "cascade"])
@pytest.mark.parametrize("reward", ["click", "engagement"])
def test_oracle_value_equals_the_full_oracle(kind, reward):
    from driftrec.simulators.choice import oracle_value

    rng = np.random.default_rng(3)
    model = make_choice_model(kind, 4, no_click_utility=1.0, position_bias=0.8)
    utilities = rng.normal(0, 2, (50, 12))
    values = np.exp(rng.normal(0, 1, (50, 12))) if reward == "engagement" else None
    np.testing.assert_allclose(
        oracle_value(model, utilities, values), model.oracle(utilities, values)[1], rtol=1e-12
    )


def test_large_float32_batches_match_float64_probabilities_and_never_overflow():
    # A batch of float32 utilities from EXP32_ROWS rows on takes the float32 exponential: the
    # probabilities agree with float64 to the float32 utilities' own precision, sum to at most
    # one, and a logit near float32's overflow sends the batch to float64 instead of to inf.
    from driftrec.simulators.choice import EXP32_MAX, EXP32_ROWS, row_sums

    rng = np.random.default_rng(0)
    model = mnl(k=5, s0=-1.0, strength=1.0)
    utilities = rng.normal(0, 3, (EXP32_ROWS, 5)).astype(np.float32)
    fast = model.slot_probabilities(utilities)
    exact = model.slot_probabilities(utilities.astype(np.float64))
    np.testing.assert_allclose(fast, exact, rtol=1e-6)
    assert (row_sums(fast) <= 1.0).all()
    utilities[3, 0] = EXP32_MAX + 5.0  # exp(86) in float32 is finite, exp(92) is not
    utilities[4, 1] = 95.0
    near = model.slot_probabilities(utilities)
    assert np.isfinite(near).all()
    np.testing.assert_allclose(near, model.slot_probabilities(utilities.astype(np.float64)))
    assert near[4, 1] == pytest.approx(1.0, abs=1e-12)


def test_row_sums_add_slot_by_slot_for_one_row_and_many():
    # One order of additions for a batch and for a single row, whatever the batch size.
    from driftrec.simulators.choice import row_sums

    rng = np.random.default_rng(1)
    values = rng.random((7, 10)) * 10.0 ** rng.integers(-8, 8, (7, 10))
    sequential = [sum(row.tolist()) for row in values]
    assert row_sums(values).tolist() == sequential
    assert [row_sums(values[i : i + 1])[0] for i in range(7)] == sequential

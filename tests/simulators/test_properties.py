"""Property test: for every scenario, parameter sets drawn by hypothesis, bad ones included,
either fail when the world is built, with a message that names a parameter, or run 2,000
requests (through the drift: drift times are drawn inside that range) with finite ground truth
and ``0 <= expected <= oracle``.

Valid draws keep at least 90 users present at t=0 (``num_users >= 300``,
``initial_user_fraction >= 0.3``) and ``churn_prob`` at most 0.02, so that no legitimate world
runs out of users within 2,000 requests (up to 2,000 sessions of one request each): a world of
3 users that churn is a valid world that dies young, with an error that says so (tested in
tests/envs)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftrec.simulators import SCENARIOS, SessionBatch, WorldConfig, build_world
from driftrec.simulators.scenarios import scenario_parameters

BAD_NUMBERS = st.sampled_from(
    [math.nan, math.inf, -math.inf, "3", None, True, -1, 0, 2.5, -0.5, (1, 2), 10**12]
)


def integers(low: int, high: int) -> st.SearchStrategy:
    """Plain ints and NumPy ints in [low, high]."""
    plain = st.integers(low, high)
    return st.one_of(plain, plain.map(np.int64), plain.map(np.int32))


def reals(low: float, high: float) -> st.SearchStrategy:
    plain = st.floats(low, high, allow_nan=False)
    return st.one_of(plain, plain.map(np.float32), plain.map(np.float64))


def maybe_bad(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a good value, sometimes a bad one."""
    return st.one_of(good, good, good, BAD_NUMBERS)


WORLD = {
    "num_users": maybe_bad(integers(300, 3_000)),
    "num_items": maybe_bad(integers(30, 2_000)),
    "num_candidates": maybe_bad(integers(1, 40)),
    "slate_size": maybe_bad(integers(1, 12)),
    "latent_dim": maybe_bad(st.sampled_from([2, 4, 8, 16])),
    "num_topics": maybe_bad(integers(1, 30)),
    "num_cohorts": maybe_bad(integers(1, 10)),
    "affinity_scale": maybe_bad(reals(-10, 20)),
    "no_click_utility": maybe_bad(reals(-5, 10)),
    "position_bias": maybe_bad(reals(0, 3)),
    "quality_scale": maybe_bad(reals(0, 3)),
    "session_mean_length": maybe_bad(reals(1, 60)),
    "session_max_length": maybe_bad(integers(1, 200)),
    "leave_prob": maybe_bad(reals(0, 1)),
    "churn_prob": maybe_bad(reals(0, 0.02)),
    "initial_user_fraction": maybe_bad(reals(0.3, 1)),
    "initial_item_fraction": maybe_bad(reals(0.3, 1)),
    "activity_alpha": maybe_bad(reals(0.2, 5)),
    "boredom_increment": maybe_bad(reals(0, 3)),
    "boredom_decay": maybe_bad(reals(0.01, 1)),
    "monotony_boredom": maybe_bad(reals(0, 3)),
    "choice_model": st.sampled_from(["mnl", "cascade", "probit"]),
    "reward": st.sampled_from(["click", "engagement", "views"]),
}

TIMES = integers(1, 2_500)
"""Drift clocks: inside the 2,000 requests run, or just after."""


def scenario_strategy(name: str, default: object) -> st.SearchStrategy:
    """A strategy for scenario parameter ``name`` with default ``default``."""
    if name in ("similarity",):
        return maybe_bad(reals(-1, 1)) | st.just(1.5)
    if name in ("leak", "fraction", "new_cohort_fraction", "quality_shift_fraction"):
        return maybe_bad(reals(0, 0.99))
    if name in ("flip_prob", "bot_fraction"):
        return maybe_bad(reals(0, 1))
    if name == "initial_item_fraction":
        return maybe_bad(reals(0.3, 1))
    if name in ("monotony_boredom", "num_topics"):
        return WORLD[name]
    if name == "strength":
        return maybe_bad(reals(0, 1))
    if name == "mode":
        return st.sampled_from(["population", "preferences", "weekly"])
    if name == "cohorts":
        return st.one_of(
            st.lists(st.integers(0, 12), min_size=1, max_size=4, unique=True).map(tuple),
            st.just(3),
            st.just(()),
            st.just(("a",)),
        )
    if name == "target":
        return st.one_of(
            st.lists(st.floats(0, 3), min_size=1, max_size=11).map(tuple),
            st.just((math.nan,) * 8),
            st.just(3.0),
        )
    if name in ("end", "duration", "shift_duration", "period", "interval", "every"):
        return maybe_bad(integers(1, 2_500))
    if name in ("report_every", "regime_every"):
        return maybe_bad(integers(1, 3_000))
    if isinstance(default, int) or default is None:
        return maybe_bad(TIMES)
    raise AssertionError(f"no strategy for scenario parameter {name}")


@st.composite
def parameter_sets(draw: st.DrawFn, name: str) -> dict:
    params = {}
    for key, strategy in WORLD.items():
        if draw(st.booleans()):
            params[key] = draw(strategy)
    for key, default in scenario_parameters(name).items():
        if draw(st.booleans()):
            params[key] = draw(scenario_strategy(key, default))
    return params


def run(world, requests=2_000, sessions=100) -> None:
    batch = SessionBatch(world, sessions)
    rng = np.random.default_rng(0)
    c, k = world.config.num_candidates, world.config.slate_size
    for _ in range(requests // sessions):
        slates = np.argsort(rng.random((sessions, c)), axis=1)[:, :k]
        response = batch.serve(slates).response
        expected, oracle = response.expected_reward, response.oracle_expected_reward
        assert np.isfinite(expected).all() and np.isfinite(oracle).all()
        assert (expected >= 0).all() and (expected <= oracle + 1e-9).all()


NAMED = set(WorldConfig.field_names()) | {"seed"}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
@given(data=st.data())
def test_bad_parameters_fail_at_build_naming_one_and_good_ones_run(name, data):
    params = data.draw(parameter_sets(name))
    try:
        world = build_world(name, seed=0, **params)
    except (ValueError, TypeError) as error:
        message = str(error)
        names = set(params) | set(scenario_parameters(name)) | NAMED
        assert any(re.search(rf"\b{key}\b", message) for key in names), (params, message)
        return
    run(world)

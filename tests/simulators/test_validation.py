"""Every bad parameter fails when the world is configured, naming the parameter; never when a
drift fires hours into a run. Sweeps built from NumPy grids work."""

import math
import re

import numpy as np
import pytest

from driftrec.simulators import SessionBatch, World, WorldConfig, build_world
from driftrec.simulators.drift import (
    AlternatingPopulation,
    CohortMixShift,
    GradualShift,
    SuddenShift,
)
from driftrec.simulators.drift.base import MAX_STEPS, step_times
from driftrec.simulators.scenarios import resolve_world
from driftrec.validation import MAX_TIME

TINY = {"num_users": 300, "num_items": 300, "num_candidates": 20, "slate_size": 4}


def test_cohort_shift_target_has_one_value_per_initial_cohort_checked_up_front():
    # The documented meaning: num_cohorts values; the new cohort is not part of it.
    world = build_world("cohort_shift", seed=0, target=(1.0,) * 7 + (2.0,), **TINY)
    world.advance(200_000)  # the shift and the new cohort both fire without complaint
    assert world.users.cohort_activity[7] == 2.0
    with pytest.raises(ValueError, match=r"target needs one activity multiplier per initial "):
        build_world("cohort_shift", seed=0, target=(1.0,) * 9, **TINY)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"cohorts": (99,)}, ValueError, r"cohorts \[99\] do not exist"),
        ({"cohorts": 3}, TypeError, r"cohorts must be a sequence of integers, got 3"),
        ({"cohorts": (1, 1)}, ValueError, r"cohorts must not repeat"),
        ({"cohorts": (-1,)}, ValueError, r"cohorts\[0\] must be an integer >= 0"),
        ({"similarity": "0.5"}, TypeError, r"similarity must be a real number, got '0.5'"),
        ({"similarity": float("nan")}, ValueError, r"similarity must be finite"),
        ({"at": 1.5}, TypeError, r"at must be an integer, got 1.5"),
        ({"at": 0}, ValueError, r"at must be an integer >= 1"),
        ({"at": 10**30}, ValueError, r"at is a time in requests and must be at most 10\*\*15"),
    ],
)
def test_bad_drift_parameters_fail_at_construction(params, error, message):
    with pytest.raises(error, match=message):
        resolve_world("sudden", **TINY, **params)


@pytest.mark.parametrize(
    ("scenario", "params", "message"),
    [
        # Each of these was accepted once and then overflowed in the middle of a run.
        ("gradual", {"start": 10**30}, r"start is a time in requests"),
        ("cohort_shift", {"shift_duration": 2**63}, r"shift_duration is a time in requests"),
        ("cohort_shift", {"target": (1e308,) * 8}, r"target\[0\] must be in \[0, 1e\+06\]"),
        ("feedback_loop", {"strength": 1e150}, r"strength must be in \[0, 1000\]"),
        ("recurring", {"period": 10**16}, r"period is a time in requests"),
    ],
)
def test_values_that_would_overflow_mid_run_fail_at_construction(scenario, params, message):
    with pytest.raises(ValueError, match=message):
        resolve_world(scenario, **TINY, **params)


def test_the_largest_accepted_times_and_step_counts_run_to_the_end():
    """At the bounds the checks admit, scheduled drift still fires on time: no int64 overflow
    in the step schedule (MAX_TIME * MAX_STEPS would overflow) and none in the clock."""
    start = MAX_TIME // 3
    times = step_times(start, MAX_TIME - start, MAX_STEPS)
    assert times.tolist() == [start + j * (MAX_TIME - start) // MAX_STEPS for j in range(10_001)]
    for scenario, params in [
        ("gradual", {"start": MAX_TIME - 10, "duration": 10}),
        ("sudden", {"at": MAX_TIME}),
        ("cohort_shift", {"shift_at": MAX_TIME - 9, "new_cohort_at": MAX_TIME}),
    ]:
        world = build_world(scenario, seed=0, **TINY, **params)
        world.advance(MAX_TIME - 10)
        assert world.advance(MAX_TIME)[-1].t == MAX_TIME
    with pytest.raises(ValueError, match=r"t is a time in requests"):
        world.advance(MAX_TIME + 1)
    with pytest.raises(ValueError, match=r"steps must be an integer <= 10000"):
        GradualShift(10, 100, steps=MAX_STEPS + 1)


def test_the_extreme_accepted_world_settings_stay_finite():
    """The widest spreads, heaviest activity tail and strongest feedback the checks admit give
    finite utilities and rewards (beyond them the draws overflowed into NaN)."""
    extremes = {"activity_alpha": 0.1, "cohort_spread": 1e3, "topic_spread": 1e3}
    extremes |= {"feature_noise": 1e3, "arrival_horizon": MAX_TIME}
    for scenario, params in [
        ("stationary", extremes),
        ("cohort_shift", {"shift_at": 10, "shift_duration": 20, "target": (1e6,) + (0.0,) * 7}),
        ("feedback_loop", {"strength": 1e3}),
    ]:
        world = build_world(scenario, seed=0, **TINY, **params)
        sessions = SessionBatch(world, 16)
        for _ in range(30):
            response = sessions.serve(np.zeros((16, 4), dtype=np.int64)).response
            assert np.isfinite(response.expected_reward).all(), scenario
            assert np.isfinite(response.oracle_expected_reward).all(), scenario
            assert np.isfinite(sessions.requests.utilities).all(), scenario


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("affinity_scale", "6", TypeError, r"affinity_scale must be a real number, got '6'"),
        ("affinity_scale", math.inf, ValueError, r"affinity_scale must be finite"),
        ("affinity_scale", math.nan, ValueError, r"affinity_scale must be finite"),
        ("no_click_utility", math.nan, ValueError, r"no_click_utility must be finite"),
        ("session_mean_length", math.nan, ValueError, r"session_mean_length must be finite"),
        ("session_mean_length", math.inf, ValueError, r"session_mean_length must be finite"),
        ("churn_prob", 1.5, ValueError, r"churn_prob must be in \[0, 1\]"),
        ("num_users", 10.0, TypeError, r"num_users must be an integer, got 10.0"),
        ("num_users", True, TypeError, r"num_users must be an integer, got True"),
        ("choice_model", "probit", ValueError, r"choice_model must be one of"),
        ("activity_alpha", 0.01, ValueError, r"activity_alpha must be in \[0.1, inf\)"),
        ("cohort_spread", 1e308, ValueError, r"cohort_spread must be in \[0, 1000\]"),
        ("topic_spread", 1e308, ValueError, r"topic_spread must be in \[0, 1000\]"),
        ("feature_noise", 1e308, ValueError, r"feature_noise must be in \[0, 1000\]"),
        ("arrival_horizon", 10**30, ValueError, r"arrival_horizon is a time in requests"),
    ],
)
def test_bad_world_settings_fail_at_construction(name, value, error, message):
    with pytest.raises(error, match=message):
        WorldConfig(**{**TINY, name: value})


def test_numpy_scalars_from_a_parameter_grid_are_accepted_and_normalised():
    grid = np.array([300, 500])
    config = WorldConfig(
        num_users=grid[1], num_items=np.int32(400), num_candidates=np.int64(20), slate_size=4,
        affinity_scale=np.float32(4.0), churn_prob=np.float64(0.01),
    )  # fmt: skip
    assert type(config.num_users) is int and config.num_users == 500
    assert type(config.affinity_scale) is float and config.affinity_scale == 4.0
    world = build_world(
        "sudden", seed=np.int64(3), at=np.int64(500), similarity=np.float64(0.5),
        cohorts=np.array([0, 2]), **TINY,
    )  # fmt: skip
    (event,) = world.advance(600)
    assert event.t == 500 and event.cohorts == (0, 2)
    assert type(event.cohorts[0]) is int


def test_parameters_of_the_other_recurring_mode_are_errors_not_ignored():
    with pytest.raises(ValueError, match=r"similarity applies to mode='preferences' only"):
        resolve_world("recurring", mode="population", similarity=0.5, **TINY)
    with pytest.raises(ValueError, match=r"leak applies to mode='population' only"):
        resolve_world("recurring", mode="preferences", leak=0.1, **TINY)
    with pytest.raises(ValueError, match=r"mode must be one of \['population', 'preferences'\]"):
        resolve_world("recurring", mode="cohorts", **TINY)
    # each alone is fine
    resolve_world("recurring", mode="population", leak=0.1, **TINY)
    resolve_world("recurring", mode="preferences", similarity=0.5, **TINY)
    # a falsy leak of the wrong type is not read as 0
    for leak in ([], "", ()):
        with pytest.raises(TypeError, match=r"leak must be a real number"):
            resolve_world("recurring", mode="population", leak=leak, **TINY)


def test_a_new_cohort_that_would_take_every_user_is_refused_up_front():
    # One user: the new cohort takes at least one member, which leaves nobody at t=0.
    with pytest.raises(ValueError, match=r"leaves nobody for the cohorts present before"):
        resolve_world("cohort_shift", num_users=1, num_items=30, num_candidates=3, slate_size=1)


def test_catalog_churn_without_a_reserve_is_refused():
    with pytest.raises(ValueError, match=r"initial_item_fraction=1.0 leaves none"):
        resolve_world("catalog_churn", initial_item_fraction=1.0, **TINY)


def test_catalog_churn_warns_once_when_the_reserve_runs_out():
    world = build_world(
        "catalog_churn", seed=0, every=1_000, fraction=0.5, initial_item_fraction=0.8, **TINY
    )
    with pytest.warns(RuntimeWarning, match="reserve of unreleased items is used up"):
        events = world.advance(10_000)
    assert len([e for e in events if e.kind == "catalog_churn"]) == 1  # 60 of 60 released


def test_an_alternating_population_needs_two_cohorts():
    with pytest.raises(ValueError, match=r"at least 2 cohorts"):
        resolve_world("recurring", num_cohorts=1, **TINY)
    with pytest.raises(ValueError, match=r"groups must be disjoint"):
        AlternatingPopulation(100, groups=((0, 1), (1, 2)))


def test_processes_are_validated_against_the_config_by_the_world_itself():
    config = WorldConfig(**TINY, num_cohorts=4)
    with pytest.raises(ValueError, match=r"cohorts \[4\] do not exist"):
        World.draw(config, [GradualShift(10, 100, cohorts=(4,))])
    with pytest.raises(ValueError, match=r"target needs one activity multiplier"):
        World.draw(config, [CohortMixShift(10, target=(1.0, 2.0))])
    with pytest.raises(TypeError, match="must be DriftProcess instances"):
        World.draw(config, ["sudden"])
    with pytest.raises(ValueError, match=r"regime_every must be an integer >= 1"):
        World.draw(config, [SuddenShift(5)], regime_every=0)
    with pytest.raises(TypeError, match=r"seed must be an integer"):
        World.draw(config, seed=1.5)


@pytest.mark.parametrize("value, shown", [(10**15 + 1, "1,000,000,000,000,001"), (10**30, "1e+30")])
def test_a_time_past_the_bound_is_shown_so_it_does_not_read_as_the_bound(value, shown):
    with pytest.raises(ValueError, match=re.escape(f"at most 10**15, got {shown}") + "$"):
        build_world("stationary", arrival_horizon=value)


def test_a_misspelt_name_is_answered_with_the_closest_valid_one():
    from driftrec.agents import make_agent
    from driftrec.envs import RecDriftVectorEnv

    with pytest.raises(ValueError, match=r"unknown scenario 'suden'; .* \(did you mean 'sudden'"):
        build_world("suden")
    with pytest.raises(ValueError, match=r"got 'casade' \(did you mean 'cascade'\?\); register"):
        WorldConfig(choice_model="casade")
    with pytest.raises(ValueError, match=r"got 'clik' \(did you mean 'click'\?\)$"):
        WorldConfig(reward="clik")
    with pytest.raises(ValueError, match=r"unknown agent 'onlne'.* \(did you mean 'online'\?\)"):
        make_agent("onlne", RecDriftVectorEnv(2, "stationary", num_users=300, num_items=200))
    with pytest.raises(ValueError, match=r"got 'probit'$"):  # nothing close: no guess
        WorldConfig(reward="probit")

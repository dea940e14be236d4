"""Environments: Gymnasium API (registry-driven), determinism, pickling, parity, bad input."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import driftrec  # noqa: F401  (registers the ids)
from driftrec.envs import RecDriftEnv, RecDriftVectorEnv, registered_ids

SMALL = dict(num_users=300, num_items=400, num_candidates=20, slate_size=5)
IDS = registered_ids()


def test_every_preset_has_an_id():
    from driftrec.simulators import SCENARIOS

    assert len(IDS) == len(SCENARIOS) + 1
    assert "driftrec/Sudden-v0" in IDS and "driftrec/CohortShift-v0" in IDS


@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id):
    env = gym.make(env_id, **SMALL)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def trajectory(env, steps=80, seed=0, action_seed=1):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(action_seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, _truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, terminated, info["expected_reward"], info["t"]))
        if terminated:
            out.append(env.reset()[0])
    return out


def assert_same_tree(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id):
    kwargs = dict(SMALL)
    a = trajectory(gym.make(env_id, **kwargs))
    b = trajectory(gym.make(env_id, **kwargs))
    assert_same_tree(a, b)
    c = trajectory(gym.make(env_id, **kwargs), seed=1)
    with pytest.raises(AssertionError):
        assert_same_tree(a, c)


@pytest.mark.parametrize(
    "env_id", ["driftrec/Sudden-v0", "driftrec/CatalogChurn-v0", "driftrec/FeedbackLoop-v0"]
)
def test_pickle_round_trip_mid_stream_continues_identically(env_id):
    env = gym.make(env_id, **SMALL, **({"at": 60} if "Sudden" in env_id else {}))
    trajectory(env, steps=50)
    clone = pickle.loads(pickle.dumps(env))
    env.action_space.seed(9)
    clone.action_space.seed(9)
    for _ in range(60):
        a = env.action_space.sample()
        step = env.step(a)
        assert_same_tree(step, clone.step(a))
        if step[2]:  # terminated
            assert_same_tree(env.reset(), clone.reset())


def test_vector_env_with_one_session_reproduces_the_single_env_step_for_step():
    single = RecDriftEnv("sudden", **SMALL, at=100)
    batched = RecDriftVectorEnv(1, "sudden", **SMALL, at=100)
    obs_s, _ = single.reset(seed=4)
    obs_b, _ = batched.reset(seed=4)
    rng = np.random.default_rng(0)
    terminations = 0
    for _ in range(300):
        assert_same_tree(obs_s, {k: v[0] for k, v in obs_b.items()})
        action = rng.integers(0, 20, 5)
        obs_s, r_s, term_s, trunc_s, info_s = single.step(action)
        obs_b, r_b, term_b, trunc_b, info_b, final = batched._step(action[None], final_obs=True)
        assert (r_s, term_s, trunc_s) == (r_b[0], term_b[0], trunc_b[0])
        for key in info_s:
            assert_same_tree(info_s[key], info_b[key][0])
        if term_s:
            terminations += 1
            # the single env returns the ended session's terminal observation ...
            assert_same_tree(obs_s, {k: v[0] for k, v in final.items()})
            with pytest.raises(gym.error.ResetNeeded, match=r"session ended .*call reset\(\)"):
                single.step(action)
            obs_s, _ = single.reset()  # ... and reset() the next session, already waiting
    assert terminations > 3
    assert single.world.clock == 300 and single.world.regime() == 1


LEAN_CASES = [
    ("sudden", dict(SMALL, at=60)),
    ("cohort_shift", dict(SMALL, shift_at=40, shift_duration=60, new_cohort_at=120)),
    ("catalog_churn", dict(num_users=300, num_items=60, num_candidates=20, slate_size=3)),
    ("feedback_loop", dict(SMALL)),
    ("noisy", dict(SMALL)),
    ("monotony", dict(SMALL, reward="engagement")),
    ("stationary", dict(SMALL, choice_model="cascade", session_mean_length=2.0, churn_prob=0.5)),
]


def lean_trajectory(scenario, kwargs, lean, monkeypatch, steps=200):
    import driftrec.simulators.requests as requests

    monkeypatch.setattr(requests, "LEAN_SINGLE_REQUEST", lean)
    env = RecDriftEnv(scenario, **kwargs)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(5)
    c, k = env.config.num_candidates, env.config.slate_size
    out = [obs]
    for i in range(steps):
        action = rng.integers(0, c, k)
        action[-1] = action[0] if i % 3 == 0 else action[-1]  # repeats: empty slots
        action = (action, action.tolist(), action.astype(np.int32)[None])[i % 3]
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info, env.oracle_scores()))
        if terminated:
            out.append(env.reset()[0])
    world = env.world
    out.append((world.users.boredom, world.users.history, world.users.alive))
    out.append((world.retrieval.popularity_ref, world.rng.requests.random()))
    return out


@pytest.mark.parametrize(("scenario", "kwargs"), LEAN_CASES, ids=[c[0] for c in LEAN_CASES])
def test_the_lean_one_request_path_is_the_batched_computation_to_the_bit(
    scenario, kwargs, monkeypatch
):
    # LEAN_SINGLE_REQUEST only changes how one request is computed, never what: the same
    # observations, rewards, infos and world state, and the same random streams.
    lean = lean_trajectory(scenario, kwargs, True, monkeypatch)
    batched = lean_trajectory(scenario, kwargs, False, monkeypatch)
    assert_same_tree(lean, batched)


def test_make_vec_gives_the_native_batched_env():
    env = gym.make_vec("driftrec/Sudden-v0", num_envs=16, **SMALL)
    assert isinstance(env, RecDriftVectorEnv)
    obs, _ = env.reset(seed=0)
    assert obs["candidate_features"].shape == (16, 20, 8)
    obs, reward, term, trunc, info = env.step(env.action_space.sample())
    assert reward.shape == term.shape == trunc.shape == (16,)
    for key in ("expected_reward", "oracle_expected_reward", "regime", "t", "drift_events"):
        assert len(info[key]) == 16, key
    assert (info["expected_reward"] <= info["oracle_expected_reward"] + 1e-12).all()
    np.testing.assert_array_equal(info["t"], np.arange(16))
    assert env.world.clock == 16


def test_drift_events_and_regime_reported_in_info():
    env = RecDriftVectorEnv(50, "sudden", **SMALL, at=120)
    env.reset(seed=0)
    seen = []
    for _ in range(4):
        _, _, _, _, info = env.step(env.action_space.sample())
        seen.append((info["regime"][0], info["drift_events"][0]))
    # steps serve clocks 0-49, 50-99, 100-149, 150-199: the shift at 120 fires at the end of
    # the third step (that batch was served by the pre-shift world) and rules the fourth.
    assert [r for r, _ in seen] == [0, 0, 0, 1]
    assert [len(e) for _, e in seen] == [0, 0, 1, 0]
    assert seen[2][1][0].t == 120 and seen[2][1][0].kind == "sudden"


def test_repeated_position_is_shown_once_and_the_later_slot_is_empty():
    env = RecDriftVectorEnv(1, **SMALL)
    env.reset(seed=0)
    requests = env.sessions.requests
    expected = env.world.expected_reward(requests, np.array([[3, 7, -1, -1, -1]]))
    _, _, _, _, info = env.step(np.array([[3, 7, 3, 7, 7]]))
    np.testing.assert_allclose(info["expected_reward"], expected)


def test_oracle_action_achieves_the_oracle_value():
    env = RecDriftEnv(**SMALL)
    env.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = env.step(env.oracle_action())
        assert info["expected_reward"] == pytest.approx(info["oracle_expected_reward"])


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (np.array([0, 1, 2, 3, 20]), ValueError, r"in \[0, 19\]"),
        (np.array([0, 1, 2, -1, 4]), ValueError, r"in \[0, 19\]"),
        (np.array([0, 1, 2]), ValueError, r"shape \(5,\)"),
        (np.array([[0, 1, 2, 3, 4]] * 2), ValueError, r"shape \(5,\)"),
        (np.array([0.0, 1, 2, 3, np.nan]), TypeError, "contains NaN"),
        (np.array([0.0, 1, 2, 3, 4]), TypeError, "integer array"),
        (["a", "b", "c", "d", "e"], TypeError, "integer array"),
    ],
)
def test_bad_actions_raise_clearly_and_leave_the_world_unchanged(action, error, message):
    env = RecDriftEnv(**SMALL)
    env.reset(seed=0)
    before = pickle.dumps(env.world)
    with pytest.raises(error, match=message):
        env.step(action)
    assert pickle.dumps(env.world) == before
    env.step(np.arange(5))  # still usable


def test_unknown_scenario_or_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid scenarios are \['catalog_churn'"):
        gym.make("driftrec/RecDrift-v0", scenario="tsunami")
    with pytest.raises(TypeError, match=r"Scenario parameters: \['at'.*world parameters"):
        gym.make("driftrec/Sudden-v0", magnitude=0.5)


def test_world_persists_across_reset_and_is_rebuilt_by_seed():
    env = RecDriftEnv(**SMALL)
    env.reset(seed=0)
    for _ in range(30):
        if env.step(np.arange(5))[2]:
            env.reset()
    clock = env.world.clock
    env.reset()
    assert env.world.clock == clock
    env.reset(seed=0)
    assert env.world.clock == 0


def test_step_before_reset_is_an_error():
    with pytest.raises(gym.error.ResetNeeded, match=r"call reset\(\) before step\(\)"):
        RecDriftVectorEnv(2, **SMALL).step(np.zeros((2, 5), np.int64))
    # the ground-truth channels name themselves, not step()
    with pytest.raises(gym.error.ResetNeeded, match=r"call reset\(\) before oracle_action\(\)"):
        RecDriftEnv(**SMALL).oracle_action()


def test_the_vector_env_refuses_a_render_mode_saying_why():
    with pytest.raises(ValueError, match=r"RecDriftVectorEnv does not render; render one RecDrift"):
        gym.make_vec("driftrec/Sudden-v0", num_envs=2, render_mode="ansi", **SMALL)
    gym.make_vec("driftrec/Sudden-v0", num_envs=2, **SMALL).close()  # without one, fine


def test_render_ansi():
    env = RecDriftEnv(render_mode="ansi", **SMALL)
    env.reset(seed=0)
    env.step(np.arange(5))
    assert "expected=" in env.render()


def test_observations_are_not_overwritten_by_later_steps():
    env = RecDriftVectorEnv(64, **SMALL, session_mean_length=1.0)  # every session ends at once
    obs, _ = env.reset(seed=0)
    users = obs["user_id"].copy()
    candidates = obs["candidate_ids"].copy()
    env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs["user_id"], users)
    np.testing.assert_array_equal(obs["candidate_ids"], candidates)


def test_repeats_become_empty_slots_exactly_as_specified():
    from driftrec.envs.spaces import action_to_slates
    from driftrec.simulators import WorldConfig

    config = WorldConfig(**SMALL)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (500, 5))  # many repeats
    expected = actions.copy()
    for row in expected:
        seen = set()
        for j, position in enumerate(row.tolist()):
            if position in seen:
                row[j] = -1
            seen.add(position)
    np.testing.assert_array_equal(action_to_slates(actions, 500, config), expected)


@pytest.mark.parametrize(
    ("scenario", "kwargs"),
    [
        ("catalog_churn", dict(num_users=400, num_items=600, every=300, fraction=0.2)),
        ("monotony", dict(num_users=400, num_items=600, reward="engagement")),
    ],
    ids=["catalog_churn", "monotony-engagement"],
)
def test_large_catalogues_gather_item_rows_through_the_batch_index_to_the_same_numbers(
    scenario, kwargs, monkeypatch
):
    # From COMPACT_ITEMS live items on, a batch's item rows are read once per distinct item
    # and the candidates' from that copy: the same observations, rewards, infos and world.
    import driftrec.simulators.retrieval as retrieval

    def trajectory(compact_from):
        monkeypatch.setattr(retrieval, "COMPACT_ITEMS", compact_from)
        env = RecDriftVectorEnv(32, scenario, **kwargs)
        obs, _ = env.reset(seed=5)
        assert (env.pending_requests().index is not None) == (compact_from == 0)
        rng = np.random.default_rng(2)
        c, k = env.config.num_candidates, env.config.slate_size
        out = [obs]
        for _ in range(40):
            out.append(env.step(rng.integers(0, c, (32, k))))
            out.append(env.oracle_scores())
        world = env.world
        out.append((world.users.boredom, world.users.history, world.retrieval.popularity_ref))
        return out

    assert_same_tree(trajectory(0), trajectory(10**9))


def test_a_preset_registered_after_import_gets_its_id_at_once():
    from driftrec.envs import env_id
    from driftrec.simulators import SCENARIOS, Scenario, SuddenShift

    # A user's own id over the same entry point is theirs: registering or removing a preset
    # leaves it (it was deleted whenever SCENARIOS changed).
    gym.register("mylab/SuddenAt50-v0", entry_point="driftrec.envs.single:RecDriftEnv",
                 kwargs={"preset": "sudden", "at": 50})  # fmt: skip

    @SCENARIOS.register()
    def late_shock(at: int = 50) -> Scenario:
        """A shock, registered after ``import driftrec``."""
        return Scenario("late_shock", (SuddenShift(at=at),))

    try:
        assert env_id("late_shock") == "driftrec/LateShock-v0" in registered_ids()
        env = gym.make("driftrec/LateShock-v0", at=20, **SMALL)
        env.reset(seed=0)
        vec = gym.make_vec("driftrec/LateShock-v0", num_envs=4, at=20, **SMALL)
        vec.reset(seed=0)
        events = [vec.step(vec.action_space.sample())[4]["drift_events"][0] for _ in range(8)]
        assert any(e and e[0].kind == "sudden" for e in events)
    finally:
        SCENARIOS.unregister("late_shock")
    assert "driftrec/LateShock-v0" not in gym.registry  # gone with its preset
    with pytest.raises(gym.error.NameNotFound):
        gym.make("driftrec/LateShock-v0")
    assert "mylab/SuddenAt50-v0" in gym.registry
    del gym.registry["mylab/SuddenAt50-v0"]

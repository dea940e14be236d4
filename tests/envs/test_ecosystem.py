"""The environments fit the RL ecosystem without glue: Stable-Baselines3's checker and policies,
gymnasium's vector wrappers in both autoreset modes, fresh worker processes, and the documented
ways to reach ground truth."""

import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import driftrec  # noqa: F401  (registers the ids)
from driftrec.envs import RecDriftVectorEnv, registered_ids
from driftrec.simulators.scenarios import WorldSpec

SMALL = dict(num_users=300, num_items=400, num_candidates=20, slate_size=5)
IDS = registered_ids()


@pytest.mark.parametrize("env_id", IDS)
def test_stable_baselines3_check_env_passes(env_id):
    from stable_baselines3.common.env_checker import check_env

    env = gym.make(env_id, **SMALL)
    check_env(env, warn=False)
    assert env.observation_space["user_id"].shape == (1,)


def test_stable_baselines3_multi_input_policy_trains_on_the_single_env():
    from stable_baselines3 import PPO

    env = gym.make("driftrec/Stationary-v0", **SMALL)
    model = PPO(
        "MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(128)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (5,)


def test_sb3_vec_env_keeps_one_world_whose_clock_counts_every_request():
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    from driftrec.rl.sb3 import SB3VecEnv

    venv = SB3VecEnv(8, "sudden", at=400, **SMALL)
    venv.seed(0)
    obs = venv.reset()
    assert obs["user_id"].shape == (8, 1)
    fired = []
    for step in range(60):
        obs, _, dones, infos = venv.step(np.tile(np.arange(5), (8, 1)))
        assert [info["t"] for info in infos] == list(range(8 * step, 8 * step + 8))
        assert all(isinstance(info["drift_events"], tuple) for info in infos)  # every step
        if infos[0]["drift_events"]:
            fired.append(infos[0]["drift_events"][0].t)
        for i in np.flatnonzero(dones):
            terminal = infos[i]["terminal_observation"]
            assert terminal["candidate_ids"].shape == (20,)
            assert infos[i]["TimeLimit.truncated"] is False
    assert fired == [400]  # the shared clock reaches 400 after 50 steps of 8
    # SB3's own make_vec_env builds 8 worlds, each with its own clock: no drift after 60 steps
    separate = make_vec_env("driftrec/Sudden-v0", n_envs=8, env_kwargs=dict(at=400, **SMALL))
    separate.reset()
    clocks = separate.get_attr("world")
    assert len({id(w) for w in clocks}) == 8
    # and an SB3 algorithm runs on the shared-world adapter
    A2C("MultiInputPolicy", venv, n_steps=4, seed=0, device="cpu").learn(64)


# ---------------------------------------------------------------- gymnasium vector wrappers


def session_lengths(env, steps, seed=0):
    """Run random slates; return the true length of every session that ended (counted from the
    served requests of each slot) and the lengths RecordEpisodeStatistics reported."""
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(env)
    wrapped.reset(seed=seed)
    wrapped.action_space.seed(seed)
    served = np.zeros(env.num_envs, dtype=np.int64)
    true, reported = [], []
    for _ in range(steps):
        _, _, terminated, _, info = wrapped.step(wrapped.action_space.sample())
        served += info["served"]
        for i in np.flatnonzero(terminated):
            true.append(served[i])
            served[i] = 0
        if "episode" in info:
            reported.extend(info["episode"]["l"][info["_episode"]].tolist())
    return true, reported


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_record_episode_statistics_reports_true_session_lengths(mode):
    env = RecDriftVectorEnv(16, autoreset_mode=mode, **SMALL)
    true, reported = session_lengths(env, 200)
    assert len(true) > 50
    assert reported == true


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_dict_info_to_list_works_in_both_modes(mode):
    env = RecDriftVectorEnv(4, "sudden", at=40, autoreset_mode=mode, **SMALL)
    env = gym.wrappers.vector.DictInfoToList(env)
    _, infos = env.reset(seed=0)
    assert len(infos) == 4 and all("t" in info for info in infos)
    for _ in range(20):
        *_, infos = env.step(env.action_space.sample())
        assert len(infos) == 4
        assert all(np.isfinite(info["expected_reward"]) for info in infos)


def test_observation_wrappers_work_in_next_step_mode_and_say_so_otherwise():
    """gymnasium's vector observation wrappers demand NEXT_STEP (they could not transform a
    same-step final observation); the native env offers it."""
    same = RecDriftVectorEnv(4, autoreset_mode=AutoresetMode.SAME_STEP, **SMALL)
    with pytest.raises(ValueError, match="NEXT_STEP"):
        gym.wrappers.vector.FlattenObservation(same)
    env = gym.make_vec(
        "driftrec/Sudden-v0", num_envs=4, at=40, autoreset_mode=AutoresetMode.NEXT_STEP, **SMALL
    )
    env = gym.wrappers.vector.FlattenObservation(env)
    env = gym.wrappers.vector.DictInfoToList(env)
    obs, infos = env.reset(seed=0)
    assert obs.shape == (4, gym.spaces.flatdim(env.unwrapped.single_observation_space))
    assert len(infos) == 4 and all("t" in info for info in infos)
    for _ in range(20):
        obs, *_, infos = env.step(env.action_space.sample())
        assert obs.shape[0] == 4 and len(infos) == 4
        assert all(np.isfinite(info["expected_reward"]) for info in infos)


def test_normalize_observation_and_reward_run_in_next_step_mode():
    env = RecDriftVectorEnv(4, autoreset_mode=AutoresetMode.NEXT_STEP, **SMALL)
    env = gym.wrappers.vector.FlattenObservation(env)
    env = gym.wrappers.vector.NormalizeObservation(env)
    env = gym.wrappers.vector.NormalizeReward(env)
    env.reset(seed=0)
    for _ in range(30):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert np.isfinite(obs).all() and np.isfinite(reward).all()


def test_every_info_value_is_per_env_at_reset_and_step():
    env = RecDriftVectorEnv(6, **SMALL)
    _, info = env.reset(seed=0)
    assert info["t"].shape == (6,)
    _, _, _, _, info = env.step(env.action_space.sample())
    for key, value in info.items():
        assert isinstance(value, np.ndarray) and value.shape == (6,), key


def test_next_step_mode_ignores_the_action_after_a_termination_and_serves_nothing_for_it():
    env = RecDriftVectorEnv(
        8, autoreset_mode=AutoresetMode.NEXT_STEP, session_mean_length=2.0, **SMALL
    )
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = env.reset(seed=0)
    action = np.tile(np.arange(5), (8, 1))
    for _ in range(40):
        user_before = obs["user_id"][:, 0].copy()
        clock = env.world.clock
        obs, reward, terminated, _, info = env.step(action)
        # a terminal observation belongs to the user whose session ended
        np.testing.assert_array_equal(obs["user_id"][terminated, 0], user_before[terminated])
        assert env.world.clock == clock + info["served"].sum()
        if terminated.any():
            ended = terminated.copy()
            obs, reward, terminated, _, info = env.step(action)
            assert not info["served"][ended].any() and info["served"][~ended].all()
            assert (reward[ended] == 0).all() and not terminated[ended].any()
            assert (info["expected_reward"][ended] == 0).all()
            assert (info["click_slot"][ended] == -1).all()


# ---------------------------------------------------------------- ids, presets, construction


def test_a_preset_id_refuses_another_scenario():
    with pytest.raises(ValueError, match=r"driftrec/Sudden-v0 is the 'sudden' preset"):
        gym.make("driftrec/Sudden-v0", scenario="gradual", **SMALL)
    env = gym.make("driftrec/Sudden-v0", scenario="sudden", **SMALL)  # the same one is fine
    assert env.unwrapped.batch.scenario == "sudden"
    assert gym.make("driftrec/RecDrift-v0", scenario="gradual").unwrapped.batch.scenario == (
        "gradual"
    )
    with pytest.raises(ValueError, match="is the 'sudden' preset"):
        gym.make_vec("driftrec/Sudden-v0", num_envs=2, scenario="gradual", **SMALL)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"target": (1.0,) * 9}, ValueError, "one activity multiplier per initial cohort"),
        ({"num_users": np.int64(500)}, None, None),
        ({"affinity_scale": "6"}, TypeError, "affinity_scale must be a real number"),
        ({"no_click_utility": float("nan")}, ValueError, "no_click_utility must be finite"),
    ],
)
def test_gym_make_validates_every_parameter_up_front(params, error, message):
    if error is None:
        env = gym.make("driftrec/CohortShift-v0", **{**SMALL, **params})
        assert env.unwrapped.config.num_users == 500
        return
    with pytest.raises(error, match=message):
        gym.make("driftrec/CohortShift-v0", **{**SMALL, **params})


@pytest.mark.parametrize("name", ["num_envs", "autoreset_mode"])
def test_gym_make_of_a_vector_setting_points_to_make_vec(name):
    """Before: TypeError "got multiple values for argument 'num_envs'"."""
    value = {"num_envs": 4, "autoreset_mode": "NextStep"}[name]
    with pytest.raises(ValueError, match=rf"takes no {name}: .*gymnasium.make_vec"):
        gym.make("driftrec/Sudden-v0", **{name: value})


@pytest.mark.parametrize("single", [True, False])
def test_reset_refuses_options_it_does_not_know(single):
    """Before: a typo such as ``keep_session`` was ignored (the sessions restarted)."""
    env = gym.make("driftrec/Sudden-v0", **SMALL) if single else RecDriftVectorEnv(2, **SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="a dict with the key 'keep_sessions'"):
        env.reset(options={"keep_session": True})
    with pytest.raises(ValueError, match="must be True or False"):
        env.reset(options={"keep_sessions": "yes"})
    env.reset(options={"keep_sessions": False})


def test_the_world_is_drawn_once_per_reset_not_at_construction(monkeypatch):
    builds = []
    original = WorldSpec.build

    def counting(self, seed=None):
        builds.append(seed)
        return original(self, seed)

    monkeypatch.setattr(WorldSpec, "build", counting)
    env = gym.make("driftrec/Sudden-v0", **SMALL)
    assert builds == [] and env.unwrapped.world is None
    env.reset(seed=3)
    assert builds == [3]
    env.reset()
    assert builds == [3]
    venv = gym.make_vec("driftrec/Sudden-v0", num_envs=4, **SMALL)
    venv.reset(seed=5)
    assert builds == [3, 5]


def test_ids_resolve_in_a_fresh_process_that_never_imported_driftrec():
    code = textwrap.dedent(
        """
        import sys
        import gymnasium as gym
        assert "driftrec" not in sys.modules
        env = gym.make("driftrec:driftrec/Sudden-v0", num_users=300, num_items=400)
        obs, info = env.reset(seed=0)
        venv = gym.make_vec("driftrec:driftrec/Stationary-v0", num_envs=3, num_users=300,
                            num_items=400)
        obs, info = venv.reset(seed=0)
        print(type(venv).__name__, obs["user_id"].shape)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "RecDriftVectorEnv (3, 1)"


def test_oracle_action_is_reachable_through_gymnasium_wrappers():
    env = gym.make("driftrec/Sudden-v0", **SMALL)
    env.reset(seed=0)
    action = env.unwrapped.oracle_action()
    _, _, _, _, info = env.step(action)
    assert info["expected_reward"] == pytest.approx(info["oracle_expected_reward"])


@pytest.mark.slow  # 1.5M requests
def test_a_world_warns_long_before_it_runs_out_of_users():
    """docs/rl.md's SB3 world (500 users) under fixed slates: the warning comes about 200,000
    requests before the error (seed 0: 1,285,120 and 1,484,288; seeds 1 and 2 alike)."""
    env = RecDriftVectorEnv(512, num_users=500, num_items=300, num_candidates=10, slate_size=3)
    env.reset(seed=0)
    warned_at = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="every user has churned"):
            while True:
                env.step(np.tile([0, 1, 2], (512, 1)))
                if caught and warned_at is None:
                    warned_at = env.clock
    assert len(caught) == 1 and "soon run out of users" in str(caught[0].message)
    assert warned_at is not None and env.clock - warned_at > 100_000


def test_an_exhausted_world_says_how_to_recover():
    env = RecDriftVectorEnv(
        4, num_users=20, num_items=300, num_candidates=20, slate_size=2, churn_prob=1.0,
        leave_prob=1.0, no_click_utility=20.0, initial_user_fraction=1.0,
    )  # fmt: skip
    env.reset(seed=0)
    # a warning first, once, while users are left ...
    with pytest.warns(RuntimeWarning, match=r"soon run out of users .*lower churn_prob"):
        with pytest.raises(RuntimeError, match=r"reset\(seed=\.\.\.\)") as error:
            for _ in range(10_000):
                env.step(np.tile([0, 1], (4, 1)))
    assert "every user has churned" in str(error.value)
    with pytest.raises(RuntimeError, match=r"reset\(seed=\.\.\.\)"):
        env.reset()  # a plain reset keeps the exhausted world
    obs, _ = env.reset(seed=1)  # a new world
    assert obs["user_id"].shape == (4, 1)


def test_a_scenario_registered_by_a_user_is_a_first_class_scenario(capsys):
    from driftrec.envs import env_id, register_envs
    from driftrec.experiments.cli import main
    from driftrec.simulators import SCENARIOS, Scenario, SuddenShift

    @SCENARIOS.register()
    def double_shift(first: int = 300, second: int = 600) -> Scenario:
        """Two orthogonal shifts."""
        return Scenario("double_shift", (SuddenShift(first), SuddenShift(second)))

    try:
        register_envs()
        env = gym.make(env_id("double_shift"), second=900, **SMALL)
        env.reset(seed=0)
        assert env.unwrapped.world.regime_boundaries(1_000) == [300, 900]
        with pytest.raises(TypeError, match=r"Scenario parameters: \['first', 'second'\]"):
            gym.make(env_id("double_shift"), third=5, **SMALL)
        assert main(["list"]) == 0
        assert "driftrec/DoubleShift-v0" in capsys.readouterr().out
    finally:
        SCENARIOS.unregister("double_shift")
        gym.registry.pop(env_id("double_shift"), None)

"""The score action and the per-candidate layout: hand-computed cases, errors, and the wrappers
on the single and the vector environment (both autoreset modes)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from driftrec.envs import RecDriftEnv, RecDriftVectorEnv
from driftrec.envs.spaces import observation_space
from driftrec.rl.adapters import (
    CandidateObservation,
    ScoreAction,
    VectorCandidateObservation,
    VectorScoreAction,
    candidate_layout_dims,
    candidate_observation_space,
    score_action_space,
    scores_to_slates,
    to_candidate_layout,
)
from driftrec.simulators import WorldConfig

SMALL = dict(num_users=60, num_items=80, num_candidates=6, slate_size=2)
MODES = [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP]

# ---------------------------------------------------------------- scores_to_slates


def test_top_k_by_descending_score():
    assert scores_to_slates(np.array([0.1, -0.3, 0.9, 0.4]), 2).tolist() == [2, 3]
    batch = scores_to_slates(np.array([[0.1, -0.3, 0.9, 0.4], [4, 3, 2, 1]]), 3)
    assert batch.tolist() == [[2, 3, 0], [0, 1, 2]] and batch.dtype == np.int64


def test_ties_go_to_the_lower_position():
    assert scores_to_slates(np.array([0.5, 1.0, 0.5, 1.0, 0.5]), 4).tolist() == [1, 3, 0, 2]
    # scores clipped to the bound tie there: the lower position comes first
    assert scores_to_slates(np.array([-1.0, 1.0, 1.0, -1.0], np.float32), 3).tolist() == [1, 2, 0]
    assert scores_to_slates(np.zeros(5), 5).tolist() == [0, 1, 2, 3, 4]
    assert scores_to_slates(np.array([0.0, -0.0, 0.0]), 2).tolist() == [0, 1]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused(bad):
    with pytest.raises(ValueError, match="finite score"):
        scores_to_slates(np.array([[0.1, bad, 0.2], [0.0, 0.0, 0.0]]), 2)


@pytest.mark.parametrize(
    ("scores", "k", "error", "message"),
    [
        (np.zeros((2, 3, 4)), 2, ValueError, r"shape \(C,\) or \(B, C\)"),
        (np.zeros(0), 1, ValueError, "C >= 1"),
        (np.zeros(3), 4, ValueError, r"slate_size must be in \[1, 3\]"),
        (np.zeros(3), 0, ValueError, r"slate_size must be in \[1, 3\]"),
        (np.zeros(3), 2.0, TypeError, "slate_size must be an int"),
        (np.array([True, False]), 1, TypeError, "real-valued"),
        (np.array(["a", "b"]), 1, TypeError, "real-valued"),
    ],
)
def test_bad_scores_are_refused_with_what_was_expected(scores, k, error, message):
    with pytest.raises(error, match=message):
        scores_to_slates(scores, k)


def test_score_action_space():
    space = score_action_space(7)
    assert space == gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    with pytest.raises(ValueError, match=">= 1"):
        score_action_space(0)


# ---------------------------------------------------------------- the layout

TINY = WorldConfig(
    num_users=10,
    num_items=10,
    num_candidates=3,
    slate_size=2,
    user_feature_dim=2,
    item_feature_dim=2,
    history_length=4,
    num_topics=3,
)
HAND = {
    "user_id": np.array([4]),
    "user_features": np.array([0.5, -1.0], np.float32),
    "history": np.array([7, 2, -1, -1]),  # newest first
    "candidate_ids": np.array([2, 5, 7]),
    "candidate_features": np.array([[1, 2], [3, 4], [5, 6]], np.float32),
    "candidate_topics": np.array([2, 0, 2]),
}
# per row: item features | topic one-hot (T=3) | in history | recency (1 - slot / H)
HAND_CANDIDATES = [
    [1, 2, 0, 0, 1, 1, 0.75],
    [3, 4, 1, 0, 0, 0, 0.0],
    [5, 6, 0, 0, 1, 1, 1.0],
]


def test_layout_of_a_hand_checked_observation():
    out = to_candidate_layout(HAND, TINY)
    np.testing.assert_array_equal(out["user"], [0.5, -1.0, 0.5])  # history half full
    np.testing.assert_array_equal(out["candidates"], HAND_CANDIDATES)
    assert out["user"].dtype == out["candidates"].dtype == np.float32
    space = candidate_observation_space(TINY)
    assert space["user"].shape == (3,) and space["candidates"].shape == (3, 7)
    assert space.contains(out)
    # the space of the config and of the native observation space agree
    assert candidate_observation_space(observation_space(TINY)) == space
    np.testing.assert_array_equal(
        to_candidate_layout(HAND, observation_space(TINY))["candidates"], HAND_CANDIDATES
    )


def test_layout_of_a_batch_is_the_layout_of_each_row():
    other = {**HAND, "history": np.array([-1, -1, -1, -1]), "candidate_topics": np.array([1, 1, 0])}
    batch = {key: np.stack([HAND[key], other[key]]) for key in HAND}
    out = to_candidate_layout(batch, TINY)
    assert out["candidates"].shape == (2, 3, 7)
    for row, obs in enumerate((HAND, other)):
        single = to_candidate_layout(obs, TINY)
        for key in ("user", "candidates"):
            np.testing.assert_array_equal(out[key][row], single[key])
    assert out["user"][1, -1] == 0.0 and not out["candidates"][1, :, -2:].any()


def test_layout_errors_say_what_to_pass():
    with pytest.raises(KeyError, match="candidate_topics"):
        to_candidate_layout({k: v for k, v in HAND.items() if k != "candidate_topics"}, TINY)
    with pytest.raises(ValueError, match=r"candidate_topics must lie in \[0, 2\]"):
        to_candidate_layout({**HAND, "candidate_topics": np.array([0, 3, 1])}, TINY)
    with pytest.raises(TypeError, match="single_observation_space"):
        candidate_observation_space(gym.spaces.Box(0, 1, (3,)))
    vec = RecDriftVectorEnv(2, **SMALL)
    with pytest.raises(ValueError, match="single_observation_space"):
        candidate_observation_space(vec.observation_space)


def test_layout_dims_size_a_network_and_refuse_other_spaces():
    # f_u = 2 features + the history's fill; f_c = 2 features + T=3 topics + 2 history flags
    assert candidate_layout_dims(candidate_observation_space(TINY)) == (3, 3, 7)
    with pytest.raises(TypeError, match="candidate_observation_space"):
        candidate_layout_dims(observation_space(TINY))
    flat = gym.spaces.Dict(
        user=gym.spaces.Box(0, 1, (3, 1)), candidates=gym.spaces.Box(0, 1, (3, 7))
    )
    with pytest.raises(ValueError, match=r"expected user \(f_u,\) and candidates \(C, f_c\)"):
        candidate_layout_dims(flat)


# ---------------------------------------------------------------- wrappers


def wrapped_single(**kwargs):
    return CandidateObservation(ScoreAction(RecDriftEnv(**SMALL, **kwargs)))


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_single_wrappers_pass_both_checkers():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(wrapped_single(), skip_render_check=True)
    sb3_check_env(wrapped_single(), warn=False)


def test_single_wrappers_serve_the_top_k_of_the_scores():
    env = wrapped_single()
    native = RecDriftEnv(**SMALL)
    obs, _ = env.reset(seed=3)
    native_obs, _ = native.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        scores = rng.uniform(-1, 1, 6).astype(np.float32)
        obs, reward, terminated, _, info = env.step(scores)
        native_obs, native_reward, _, _, native_info = native.step(np.argsort(-scores)[:2])
        assert info["expected_reward"] == native_info["expected_reward"]
        assert reward == native_reward
        layout = to_candidate_layout(native_obs, native.config)
        np.testing.assert_array_equal(obs["candidates"], layout["candidates"])
        assert env.observation_space.contains(obs)
        if terminated:
            obs, _ = env.reset()
            native_obs, _ = native.reset()


@pytest.mark.parametrize("mode", MODES)
def test_vector_wrappers_in_both_autoreset_modes(mode):
    env = VectorCandidateObservation(
        VectorScoreAction(RecDriftVectorEnv(8, **SMALL, autoreset_mode=mode))
    )
    native = RecDriftVectorEnv(8, **SMALL, autoreset_mode=mode)
    assert env.metadata["autoreset_mode"] == mode
    assert env.single_action_space == score_action_space(6)
    obs, _ = env.reset(seed=1)
    native.reset(seed=1)
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(80):
        scores = rng.uniform(-1, 1, (8, 6)).astype(np.float32)
        obs, reward, terminated, _, info = env.step(scores)
        native_obs, native_reward, _, _, native_info = native.step(scores_to_slates(scores, 2))
        np.testing.assert_array_equal(reward, native_reward)
        np.testing.assert_array_equal(info["expected_reward"], native_info["expected_reward"])
        np.testing.assert_array_equal(
            obs["candidates"], to_candidate_layout(native_obs, native.config)["candidates"]
        )
        assert env.observation_space.contains(obs)
        ended += int(terminated.sum())
    assert ended > 0  # the autoreset path was taken


GYMNASIUM = tuple(int(part) for part in gym.__version__.split(".")[:2])


@pytest.mark.skipif(GYMNASIUM < (1, 4), reason="gymnasium 1.2 did not check the autoreset mode")
def test_gymnasium_refuses_its_own_observation_wrapper_in_same_step_mode():
    """Why VectorCandidateObservation is a plain VectorWrapper: if gymnasium ever lifts this,
    its VectorObservationWrapper could replace it."""
    from gymnasium.vector import VectorObservationWrapper

    with pytest.raises(ValueError, match="NEXT_STEP"):
        VectorObservationWrapper(
            RecDriftVectorEnv(2, **SMALL, autoreset_mode=AutoresetMode.SAME_STEP)
        )


def test_score_actions_of_the_wrong_shape_are_refused_not_ranked():
    """A policy whose output layer has the wrong size must not train on wrong slates."""
    env = VectorScoreAction(RecDriftVectorEnv(4, **SMALL))
    env.reset(seed=0)
    for shape in [(3, 6), (4, 3), (4, 12), (4,)]:
        with pytest.raises(ValueError, match=r"shape \(num_envs=4, C=6\), got"):
            env.step(np.zeros(shape, np.float32))
    single = ScoreAction(RecDriftEnv(**SMALL))
    single.reset(seed=0)
    for shape in [(4,), (12,)]:
        with pytest.raises(ValueError, match=r"one entry per candidate, 6 in this environment"):
            single.step(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"scores of shape \(C=6,\)"):
        single.step(np.zeros((1, 6), np.float32))
    with pytest.raises(TypeError, match="MultiDiscrete"):
        ScoreAction(gym.make("CartPole-v1"))

"""The Stable-Baselines3 side: SB3VecEnv with adapters, and the shared-weight policy (its
weights are shared over the candidates, so permuting the candidates permutes the means)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO

from driftrec.rl.adapters import score_action_space, scores_to_slates, to_candidate_layout
from driftrec.rl.sb3 import SB3VecEnv
from driftrec.rl.sb3_policy import CandidateScoringPolicy

SMALL = dict(num_users=60, num_items=80, num_candidates=6, slate_size=2)


def test_sb3_vec_env_with_adapters_is_the_native_one_through_the_adapters():
    adapted, native = SB3VecEnv(4, **SMALL, adapters=True), SB3VecEnv(4, **SMALL)
    assert adapted.action_space == score_action_space(6)
    assert adapted.observation_space["candidates"].shape == (6, 8 + 20 + 2)
    adapted.seed(5)
    native.seed(5)
    obs, native_obs = adapted.reset(), native.reset()
    rng = np.random.default_rng(0)
    terminal = 0
    for _ in range(60):
        scores = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
        adapted.step_async(scores)
        native.step_async(scores_to_slates(scores, 2))
        obs, reward, dones, infos = adapted.step_wait()
        native_obs, native_reward, native_dones, native_infos = native.step_wait()
        np.testing.assert_array_equal(reward, native_reward)
        np.testing.assert_array_equal(dones, native_dones)
        layout = to_candidate_layout(native_obs, native.env.config)
        np.testing.assert_array_equal(obs["candidates"], layout["candidates"])
        np.testing.assert_array_equal(obs["user"], layout["user"])
        for i in np.flatnonzero(dones):
            final = infos[i]["terminal_observation"]
            expected = to_candidate_layout(native_infos[i]["terminal_observation"], SMALL_CONFIG)
            np.testing.assert_array_equal(final["candidates"], expected["candidates"])
            terminal += 1
    assert terminal > 0
    with pytest.raises(TypeError, match=r"adapters must be True or False"):
        SB3VecEnv(4, **SMALL, adapters="yes")
    adapted.step_async(np.zeros((4, 3), np.float32))  # an output layer of the wrong size
    with pytest.raises(ValueError, match=r"scores of shape \(num_envs=4, C=6\), got \(4, 3\)"):
        adapted.step_wait()


SMALL_CONFIG = SB3VecEnv(1, **SMALL).env.config


def small_policy(seed=0, hidden=16):
    venv = SB3VecEnv(4, **SMALL, adapters=True)
    venv.seed(seed)
    model = PPO(
        CandidateScoringPolicy,
        venv,
        n_steps=8,
        batch_size=16,
        n_epochs=1,
        seed=seed,
        device="cpu",
        policy_kwargs={"hidden": hidden},
    )
    return model, venv


def test_permuting_the_candidates_permutes_the_means_and_keeps_the_value():
    model, venv = small_policy()
    model.learn(64)  # trained weights, not only the initial ones
    policy = model.policy
    obs = venv.reset()
    perm = np.array([3, 0, 5, 1, 4, 2])
    permuted = {"user": obs["user"], "candidates": obs["candidates"][:, perm]}
    means, means_p = policy.score_means(obs), policy.score_means(permuted)
    assert means.shape == (4, 6)
    np.testing.assert_allclose(means_p, means[:, perm], rtol=1e-5, atol=1e-6)
    assert not np.allclose(means, means[:, :1])  # the scores do depend on the candidate
    with torch.no_grad():
        value = policy.predict_values(policy.obs_to_tensor(obs)[0])
        value_p = policy.predict_values(policy.obs_to_tensor(permuted)[0])
    np.testing.assert_allclose(value_p.numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    # one log std for every position; the scorer's outputs are the means themselves
    assert policy.log_std.shape == (1,)
    assert isinstance(policy.action_net, torch.nn.Identity)


def test_one_scorer_for_every_position():
    model, _ = small_policy()
    scorer = model.policy.mlp_extractor.scorer
    n_user, n_cand = 8 + 1, 8 + 20 + 2
    # the actor's parameters do not grow with C: one scorer, not one head per position
    actor = sum(
        p.numel()
        for m in (scorer.score_user, scorer.score_candidate, scorer.score_head)
        for p in m.parameters()
    )
    h = 16
    assert actor == (n_user * h + h) + (n_cand * h + h) + (3 * h * h + h) + (h + 1)


def test_the_policy_is_the_shared_scorer():
    # SB3's actor and critic are the CandidateScorer's (the network of the RLlib module too):
    # the means are its scores, the values its value; no parameter lies outside it but log_std.
    model, venv = small_policy()
    model.learn(64)
    policy = model.policy
    scorer = policy.mlp_extractor.scorer
    assert policy.value_net is scorer.value_head
    obs = venv.reset()
    tensors = policy.obs_to_tensor(obs)[0]
    user, candidates = tensors["user"], tensors["candidates"]
    with torch.no_grad():
        np.testing.assert_allclose(
            policy.score_means(obs), scorer.scores(user, candidates).numpy(), rtol=1e-6
        )
        torch.testing.assert_close(
            policy.predict_values(tensors).squeeze(-1), scorer.value(user, candidates)
        )
    others = {id(p) for p in policy.parameters()} - {id(p) for p in scorer.parameters()}
    assert others == {id(policy.log_std)}


def test_same_seed_same_training():
    # one after the other: Stable-Baselines3 seeds torch's global RNG at construction
    a, _ = small_policy(seed=3)
    a.learn(64)
    b, _ = small_policy(seed=3)
    b.learn(64)
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_save_and_load_round_trip(tmp_path):
    model, venv = small_policy(hidden=12)
    model.learn(32)
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", device="cpu")
    obs = venv.reset()
    np.testing.assert_allclose(
        loaded.policy.score_means(obs), model.policy.score_means(obs), rtol=1e-6
    )
    assert loaded.policy.hidden == 12


def test_the_policy_refuses_other_spaces():
    venv = SB3VecEnv(2, **SMALL)
    with pytest.raises(TypeError, match="adapters=True"):
        PPO(CandidateScoringPolicy, venv, device="cpu")
    adapted = SB3VecEnv(2, **SMALL, adapters=True)
    with pytest.raises(TypeError, match="score action"):
        CandidateScoringPolicy(adapted.observation_space, spaces.Box(-1, 1, (5,)), lambda _: 1e-3)
    with pytest.raises(ValueError, match="fixes net_arch"):
        PPO(CandidateScoringPolicy, adapted, policy_kwargs={"net_arch": [8]}, device="cpu")


def test_a2c_trains_with_the_policy_and_serves_valid_slates():
    from stable_baselines3 import A2C

    venv = SB3VecEnv(4, **SMALL, adapters=True)
    model = A2C(CandidateScoringPolicy, venv, n_steps=4, seed=0, device="cpu")
    model.learn(64)
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4, 6) and np.all(np.abs(actions) <= 1.0)
    slates = scores_to_slates(actions, 2)
    assert slates.shape == (4, 2) and (slates[:, 0] != slates[:, 1]).all()

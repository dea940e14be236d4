"""RLlib support (``driftrec.rl.rllib``, ``examples/rllib_ppo.py``).

The shared candidate scorer is plain torch and is tested here. Everything that imports RLlib
runs in a subprocess under what ``pip install -e ".[rl]"`` adds (RLlib's dependencies and the
gymnasium 1.2.2 it pins), which ``scripts/setup.sh`` installs into ``.venv/compat/rllib`` and
which goes first on the subprocess's ``PYTHONPATH``: the main environment keeps its newer
gymnasium for the rest of the suite. ``pytest`` leaves ``driftrec/rl/rllib.py`` out when it
collects doctests (``--ignore`` in ``pyproject.toml``); its doctests run in the subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from driftrec.rl.candidate_scorer import CandidateScorer

ROOT = Path(__file__).resolve().parents[2]
COMPAT = Path(sys.prefix) / "compat" / "rllib"


def rl_extra_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that sees what the ``rl`` extra installs."""
    marker = COMPAT / ".driftrec-complete"
    assert marker.is_file(), f"{COMPAT} is missing: run `make setup` (scripts/setup.sh)"
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(COMPAT), str(ROOT)]),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }


def run(args: list[str], timeout: float, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=rl_extra_env(**extra),
    )  # fmt: skip


# ---------------------------------------------------------------- the shared scorer (torch)


def inputs(batch: int, candidates: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    user = torch.randn(batch, 5, generator=generator)
    return user, torch.randn(batch, candidates, 7, generator=generator)


def trained_like(net: CandidateScorer) -> CandidateScorer:
    # The scorer starts near-constant (a small score output); give every parameter a value so
    # that the checks below are not passed by a constant function.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return net


def test_scores_permute_with_the_candidates_and_the_value_does_not_move():
    net = trained_like(CandidateScorer(5, 7, hidden=16))
    user, candidates = inputs(3, 9)
    order = torch.tensor([4, 0, 8, 2, 7, 1, 3, 6, 5])
    scores = net.scores(user, candidates)
    torch.testing.assert_close(net.scores(user, candidates[:, order]), scores[:, order])
    torch.testing.assert_close(net.value(user, candidates[:, order]), net.value(user, candidates))
    torch.testing.assert_close(
        net.value_latent(user, candidates[:, order]), net.value_latent(user, candidates)
    )
    assert scores.std() > 0.1  # not a constant function


def test_the_value_is_the_value_head_over_the_value_latent():
    net = trained_like(CandidateScorer(5, 7, hidden=16))
    user, candidates = inputs(3, 4)
    latent = net.value_latent(user, candidates)
    assert latent.shape == (3, 16) and net.value(user, candidates).shape == (3,)
    torch.testing.assert_close(net.value(user, candidates), net.value_head(latent).squeeze(-1))


def test_a_candidates_score_depends_on_its_own_row_only():
    net = trained_like(CandidateScorer(5, 7, hidden=16))
    user, candidates = inputs(2, 6)
    changed = candidates.clone()
    changed[:, 3] += 1.0
    before, after = net.scores(user, candidates), net.scores(user, changed)
    moved = (before - after).abs() > 1e-6
    assert moved[:, 3].all() and not moved[:, [0, 1, 2, 4, 5]].any()


def test_one_set_of_weights_scores_any_number_of_candidates():
    net = trained_like(CandidateScorer(5, 7, hidden=16))
    user, candidates = inputs(2, 12)
    few = net.scores(user, candidates[:, :4])
    torch.testing.assert_close(net.scores(user, candidates)[:, :4], few)
    h = 16
    embeddings = (5 * h + h) + (7 * h + h)  # of the user and of a candidate
    assert sum(p.numel() for p in CandidateScorer(5, 7, hidden=h).parameters()) == (
        embeddings + (3 * h * h + h) + (h + 1)  # the scorer
        + embeddings + (3 * h * h + h) + (h + 1)  # the critic and its value head
    )  # fmt: skip


def test_the_scorer_starts_near_constant():
    # a score output of gain 0.01: the first policy serves about random slates
    net = CandidateScorer(5, 7, hidden=16)
    assert net.scores(*inputs(8, 10)).abs().max() < 0.1


def test_the_scorer_refuses_inputs_of_another_layout():
    net = CandidateScorer(5, 7)
    user, candidates = inputs(2, 4)
    with pytest.raises(ValueError, match=r"user_dim=5 and candidate_dim=7"):
        net.scores(user, candidates[..., :6])
    with pytest.raises(ValueError, match=r"expected user \(B, 5\) and candidates \(B, C, 7\)"):
        net.value(user[0], candidates)
    with pytest.raises(ValueError, match=r"needs C >= 1"):
        net.value_latent(user, candidates[:, :0])
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        CandidateScorer(5, 7, hidden=(64, 64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="candidate_dim must be a positive int"):
        CandidateScorer(5, 0)


# ---------------------------------------------------------------- under the rl extra (RLlib)

MODULE_CHECK = textwrap.dedent(
    """
    import sys
    import gymnasium, numpy as np, torch
    from importlib.metadata import version
    assert gymnasium.__version__ == version("gymnasium") == "1.2.2", gymnasium.__version__
    from driftrec.rl.rllib import (
        CandidateScoringRLModule, make_env, normalised_reward, real_score_space,
    )
    small = dict(num_users=80, num_items=60, num_candidates=6, slate_size=2)

    # The module: one network for every candidate, one shared log standard deviation.
    env = make_env({**small, "num_envs": 4})
    obs, _ = env.reset(seed=0)
    module = CandidateScoringRLModule(
        observation_space=env.single_observation_space,
        action_space=env.single_action_space, model_config={"hidden": 16})
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) * 0.5)
    batch = {k: torch.as_tensor(v) for k, v in obs.items()}
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    out = module.forward_exploration({"obs": batch})["action_dist_inputs"]
    perm = {"user": batch["user"], "candidates": batch["candidates"][:, order]}
    out_perm = module.forward_exploration({"obs": perm})["action_dist_inputs"]
    means, log_std = out[:, :6], out[:, 6:]
    torch.testing.assert_close(out_perm[:, :6], means[:, order])
    assert torch.all(log_std == log_std[0, 0]) and means.std() > 0.1
    torch.testing.assert_close(
        module.compute_values({"obs": perm}), module.compute_values({"obs": batch}))

    # Real-valued scores: the slate is their top-k even beyond [-1, 1] (no clipping ties).
    assert env.single_action_space == real_score_space(6)
    scores = np.array([3.0, 7.0, -2.0, 5.0, 0.5, 1e3], np.float32)
    single = make_env(small)
    single.reset(seed=0)
    real, score = single.env, single.env.env  # RealScoreAction over ScoreAction
    squashed = real.action(scores)
    assert np.all(np.abs(squashed) < 1.0)
    assert score.action(squashed).tolist() == [5, 1]
    *_, info = env.step(np.tile(scores, (4, 1)))
    assert info["served"].all()

    # The callback's sums give the normalised reward; a result without them says what to do.
    assert normalised_reward({"env_runners": {
        "driftrec_expected_reward": 3.0, "driftrec_oracle_expected_reward": 4.0}}) == 0.75
    try:
        normalised_reward({"env_runners": {}})
    except KeyError as error:
        assert "NormalisedRewardCallback" in str(error)
    else:
        raise AssertionError("no KeyError")
    try:
        CandidateScoringRLModule(observation_space=single.unwrapped.observation_space,
                                 action_space=env.single_action_space)
    except ValueError as error:
        assert "make_env" in str(error)
    else:
        raise AssertionError("no ValueError")

    # A bad env_config fails in the driver with driftrec's message (was RLlib's IndexError).
    from ray.rllib.algorithms.ppo import PPOConfig
    from driftrec.rl.rllib import ppo_config
    try:
        ppo_config(PPOConfig(), {"num_users": -1}, num_env_runners=1)
    except ValueError as error:
        assert "num_users must be an integer >= 1, got -1" in str(error), error
    else:
        raise AssertionError("no ValueError")

    # The module's doctests (pytest's own collection leaves the module out; see the docstring).
    import doctest
    import driftrec.rl.rllib
    failed, attempted = doctest.testmod(driftrec.rl.rllib)
    print("ok", failed, attempted)
    """
)


@pytest.mark.slow
def test_the_rllib_module_shares_its_weights_and_its_doctests_pass_under_the_rl_extra():
    out = run(["-c", MODULE_CHECK], timeout=240)
    assert out.returncode == 0, out.stderr[-4000:]
    ok, failed, attempted = out.stdout.split()
    assert ok == "ok" and failed == "0" and int(attempted) >= 5, out.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_the_ppo_example_trains_with_a_remote_env_runner(tmp_path_factory):
    # A driver that never imports driftrec in the workers: the env runner (a separate process)
    # must build the driftrec environment through the registered creator by itself.
    temp = tmp_path_factory.mktemp("ray")
    tiny = ["--iterations", "2", "--num-env-runners", "1", "--num-envs-per-env-runner", "4",
            "--train-batch-size", "200", "--minibatch-size", "100", "--num-epochs", "1",
            "--num-users", "100", "--num-items", "80", "--num-candidates", "6",
            "--slate-size", "2", "--hidden", "16", "--ray-temp-dir", str(temp)]  # fmt: skip
    out = run(["examples/rllib_ppo.py", *tiny], timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-4000:]
    runner = re.search(
        r"env runner 1 \(remote, pid (\d+), driver pid (\d+)\): RecDriftVectorEnv with 4 "
        r"sessions, driftrec loaded there: True",
        out.stdout,
    )
    assert runner and runner[1] != runner[2], out.stdout
    rewards = re.findall(
        r"iteration +(\d+): normalised reward (\d\.\d+) \((\d+) requests", out.stdout
    )
    assert [int(i) for i, _, _ in rewards] == [1, 2], out.stdout
    assert all(0.0 < float(r) <= 1.0 and int(n) >= 200 for _, r, n in rewards), out.stdout
    assert re.search(r"random scores: normalised reward 0\.\d+", out.stdout), out.stdout

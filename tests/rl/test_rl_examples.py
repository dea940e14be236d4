"""The SB3 example and the RL throughput benchmark keep running (tiny sizes; figures are printed,
never asserted: learning to 0.65 takes 100k steps, and speed is not a test)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_sb3_ppo_example_prints_a_figure_per_iteration():
    out = run("examples/sb3_ppo.py", "--steps", "4096", "--quiet")
    rows = re.findall(r"iteration +(\d+) +steps +([\d,]+) +normalised reward (\d\.\d{3})", out)
    # 32 sessions x 16 steps = 512 requests per iteration
    assert [int(i) for i, _, _ in rows] == list(range(1, 9))
    assert [int(s.replace(",", "")) for _, s, _ in rows] == [512 * i for i in range(1, 9)]
    assert all(0.0 < float(v) <= 1.0 for _, _, v in rows)
    assert "final normalised reward" in out.splitlines()[-1]
    assert "PPO + CandidateScoringPolicy" not in out  # --quiet: no header


def test_sb3_ppo_example_refuses_fewer_steps_than_one_iteration():
    result = subprocess.run(
        [sys.executable, "examples/sb3_ppo.py", "--steps", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2  # an argparse usage error, before any training (was NaN)
    assert "--steps must be at least one PPO iteration" in result.stderr
    assert "--n-steps = 512 requests; got 100" in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--gamma", "1.5"], "--gamma must be in [0, 1], got 1.5"),
        (["--learning-rate", "nan"], "--learning-rate must be finite, got nan"),
        (["--ent-coef", "inf"], "--ent-coef must be finite, got inf"),
        (["--batch-size", "0"], "--batch-size must be positive, got 0"),
    ],
)
def test_sb3_ppo_example_refuses_settings_ppo_would_train_on_silently(option, message):
    """PPO takes a discount of 1.5 or an infinite entropy bonus and trains to NaN or nonsense."""
    result = subprocess.run(
        [sys.executable, "examples/sb3_ppo.py", *option],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.slow
def test_rl_throughput_benchmark_runs():
    out = run("benchmarks/rl_throughput.py", "--quick")
    for row in ("rollouts: SB3VecEnv, N=4", "training: DummyVecEnv of 4 envs"):
        assert row in out
    assert re.search(r"batched / separate at N=4: rollouts [\d.]+x, training [\d.]+x", out)

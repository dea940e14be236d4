"""The benchmarks keep running (figures are printed, never asserted: speed is not a test)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_env_throughput_benchmark_runs():
    out = run("benchmarks/env_throughput.py", "--quick")
    for row in ("single env (C=100, k=10)", "single env (C=10, k=2)", "batched env, B=1024"):
        assert row in out
    assert "batched env, B=4096" in out and "gather-only bound, B=4096" in out
    assert "of the gather-only bound" in out
    assert "B=4096, round by round: median" in out  # the paired share, with its spread


@pytest.mark.slow
def test_agent_throughput_benchmark_runs():
    out = run("benchmarks/agent_throughput.py", "--models", "mf", "--seconds", "0.2")
    assert "mf" in out and "end_to_end" in out


@pytest.mark.slow
def test_world_scaling_benchmark_runs():
    out = run("benchmarks/world_scaling.py", "--quick")
    header, *rows = out.splitlines()[1:4]
    assert header.split()[:3] == ["users", "items", "build"] and "x smallest" in header
    # one row per (tiny) size, each measured in its own process; the smallest is the unit
    assert [row.split()[:2] for row in rows] == [["1,000", "500"], ["3,000", "1,500"]]
    assert rows[0].split()[-1] == "1.00"


@pytest.mark.slow
def test_single_step_floor_benchmark_runs():
    out = run("benchmarks/single_step_floor.py", "--quick")
    # both sizes, each checked against the world's own numbers before it is timed
    assert out.count("(checked: the floor's utilities") == 2
    for row in ("part: next user and candidates", "floor step, whole", "RecDriftEnv.step"):
        assert out.count(row) == 2
    assert "target 15,000 steps/s" in out and "target 20,000 steps/s" in out


@pytest.mark.slow
def test_batched_step_floor_benchmark_runs():
    out = run("benchmarks/batched_step_floor.py", "--quick")
    # both batch sizes, each checked against the world's utilities and oracle before timing
    assert out.count("(checked, to the bit:") == 2
    for row in ("gather-only bound", "floor step (bound + the four parts)", "serve the slates"):
        assert out.count(row) == 2
    assert "of the gather bound:" in out and "55% target" in out

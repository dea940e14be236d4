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
    assert "batched env, B=4096" in out and "gather-only bound" in out


@pytest.mark.slow
def test_agent_throughput_benchmark_runs():
    out = run("benchmarks/agent_throughput.py", "--models", "mf", "--seconds", "0.2")
    assert "mf" in out and "end_to_end" in out

"""Fixtures every test directory shares."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_script() -> Callable[..., str]:
    """Run a script of the repository (path and arguments) in a fresh Python process from the
    repository's root; returns its stdout, and fails the test with its stderr if it fails."""

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run

"""Small experiment specs for the tests (seconds per cell)."""

from __future__ import annotations

import copy

import pytest

TINY = {
    "name": "tiny",
    "horizon": 4_000,
    "num_envs": 200,
    "seeds": [0, 1],
    "world": {"num_users": 500, "num_items": 400, "num_candidates": 20, "slate_size": 4},
    "scenarios": [
        {"name": "sudden", "params": {"at": 2_000}},
        {"name": "recurring", "params": {"period": 1_400}},
    ],
    "agents": [{"name": "online"}, {"name": "random"}],
    "warm_start": {"requests": 600},
    "evaluation": {"window": 600, "every": 1_000, "probe_size": 60},
}


@pytest.fixture
def tiny() -> dict:
    """A fresh copy of the tiny spec (2 scenarios x 2 agents x 2 seeds)."""
    return copy.deepcopy(TINY)

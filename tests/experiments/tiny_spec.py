"""A small experiment spec shared by tests: one sudden shift at 1,000 of 2,000 requests, in
batches of 100, on a 200-user world, one seed."""

from __future__ import annotations

from typing import Any


def tiny_spec(agents: list[dict], name: str = "tiny") -> dict[str, Any]:
    """The spec, as a plain dict, with these ``agents``."""
    return {
        "name": name,
        "horizon": 2_000,
        "num_envs": 100,
        "seeds": [0],
        "world": {"num_users": 200, "num_items": 200, "num_candidates": 20, "slate_size": 4},
        "scenarios": [{"name": "sudden", "params": {"at": 1_000}}],
        "agents": agents,
        "evaluation": {"window": 300, "every": 500, "probe_size": 50},
    }

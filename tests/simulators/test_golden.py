"""Golden trajectories: same seed, same numbers, across refactors.

For four scenarios (preference, population, cohort and catalogue drift) a batched environment
runs random slates from a fixed seed; every discrete outcome (users, candidates, slates, clicks,
terminations, event times and kinds) must equal the stored one exactly, and every float (expected
and oracle rewards, event magnitudes, probe and logging values) to 1e-5 relative, float32 arrays
to 1e-6 of their largest magnitude (float32 arithmetic may differ in its last bits between CPUs
and between equivalent orders of operations). The stored files were written by
``python tests/simulators/test_golden.py`` before the world was split into components; change them
only with a CHANGELOG entry saying why the streams changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from driftrec.envs import RecDriftVectorEnv

GOLDEN = Path(__file__).parent / "golden"
SMALL = {"num_users": 2_000, "num_items": 800, "num_candidates": 30, "slate_size": 5}
SCENARIOS = {
    "sudden": {"at": 3_000, "similarity": 0.2},
    "recurring": {"period": 2_500, "leak": 0.1},
    "cohort_shift": {"shift_at": 2_000, "shift_duration": 1_000, "new_cohort_at": 5_000},
    "catalog_churn": {"every": 1_000, "fraction": 0.1, "quality_shift_at": 4_000},
}
STEPS, SESSIONS = 150, 64


def trajectory(scenario: str) -> dict[str, np.ndarray]:
    env = RecDriftVectorEnv(SESSIONS, scenario, **SMALL, **SCENARIOS[scenario])
    obs, _ = env.reset(seed=7)
    rng = np.random.default_rng(11)
    out: dict[str, list] = {key: [] for key in ("users", "candidates", "slates", "click")}
    out.update({key: [] for key in ("terminated", "expected", "oracle", "reward", "regime")})
    events = []
    for _ in range(STEPS):
        slates = np.argsort(rng.random((SESSIONS, 30)), axis=1)[:, :5]
        repeat = rng.random(SESSIONS) < 0.2  # some repeated positions (empty slots)
        slates[:, 4] = np.where(repeat, slates[:, 0], slates[:, 4])
        out["users"].append(obs["user_id"][:, 0])
        out["candidates"].append(obs["candidate_ids"])
        out["slates"].append(slates)
        obs, reward, terminated, _, info = env.step(slates)
        out["click"].append(info["click_slot"])
        out["terminated"].append(terminated)
        out["expected"].append(info["expected_reward"])
        out["oracle"].append(info["oracle_expected_reward"])
        out["reward"].append(reward)
        out["regime"].append(info["regime"])
        events.extend(info["drift_events"][0])
    world = env.world
    probe = world.probe_set(200)
    logged = world.log_interactions(200, "softmax")
    result = {key: np.stack(value) for key, value in out.items()}
    result["event_t"] = np.array([e.t for e in events], dtype=np.int64)
    result["event_kind"] = np.array([e.kind for e in events])
    result["event_magnitude"] = np.array([e.magnitude for e in events], dtype=np.float64)
    result["probe_candidates"] = probe.observation["candidate_ids"]
    result["probe_utilities"] = probe.requests.utilities
    result["probe_oracle"] = probe.oracle_expected_reward
    result["probe_random"] = probe.random_expected_reward
    result["logged_slates"] = logged.slates
    result["logged_propensity"] = logged.propensity
    result["logged_click"] = logged.click_slot
    result["clock"] = np.array([world.clock])
    return result


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_gives_the_stored_trajectory(scenario):
    stored = np.load(GOLDEN / f"{scenario}.npz")
    now = trajectory(scenario)
    assert set(stored.files) == set(now)
    for key in stored.files:
        want, got = stored[key], now[key]
        if want.dtype.kind in "fc":
            # A float32 value such as a utility is a sum of terms of order 1 that may cancel:
            # its last bits are those of the terms, so it is compared at the array's scale.
            # Values computed from utilities (propensities are products of k softmax terms)
            # carry their few-ulp differences, amplified: 1e-5 relative.
            scale = float(np.abs(want).max(initial=0.0)) if want.dtype == np.float32 else 0.0
            np.testing.assert_allclose(
                got, want, rtol=1e-5, atol=max(1e-9, 1e-6 * scale), err_msg=key
            )
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)


if __name__ == "__main__":  # write the golden files (only when streams change on purpose)
    GOLDEN.mkdir(exist_ok=True)
    for name in sys.argv[1:] or sorted(SCENARIOS):
        np.savez_compressed(GOLDEN / f"{name}.npz", **trajectory(name))
        print("wrote", GOLDEN / f"{name}.npz")

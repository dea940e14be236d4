"""The environments under the older gymnasium releases the project allows (1.1, 1.2, 1.3; 1.2.2 is
what RLlib pins): they build, pass gymnasium's checker, and gymnasium's own vector
``RecordEpisodeStatistics`` reports true session lengths. Those releases count same-step
episodes one step short, which is why the default autoreset mode there is next-step.

Each version is installed by ``scripts/setup.sh`` into ``.venv/compat/gymnasium-<version>``
(pure Python, no dependencies) and put first on ``PYTHONPATH`` of a subprocess."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

COMPAT = Path(sys.prefix) / "compat"
VERSIONS = ("1.1.1", "1.2.2", "1.3.0")

CHECK = textwrap.dedent(
    """
    import sys
    import gymnasium as gym
    import numpy as np
    assert gym.__version__ == sys.argv[1], gym.__version__
    from gymnasium.utils.env_checker import check_env
    import driftrec
    from driftrec.envs.vector import DEFAULT_AUTORESET_MODE
    small = dict(num_users=300, num_items=400, num_candidates=20, slate_size=5)
    check_env(gym.make("driftrec/Sudden-v0", **small).unwrapped)
    venv = gym.make_vec("driftrec/Sudden-v0", num_envs=16, **small)
    env = gym.wrappers.vector.RecordEpisodeStatistics(venv)
    env.reset(seed=0)
    env.action_space.seed(0)
    served, true, reported = np.zeros(16, int), [], []
    for _ in range(200):
        _, _, terminated, _, info = env.step(env.action_space.sample())
        served += info["served"]
        for i in np.flatnonzero(terminated):
            true.append(int(served[i]))
            served[i] = 0
        if "episode" in info:
            reported.extend(info["episode"]["l"][info["_episode"]].tolist())
    assert len(true) > 100 and reported == true, (true[:10], reported[:10])
    print(DEFAULT_AUTORESET_MODE.value, len(true))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_environments_and_episode_statistics_under_old_gymnasium(version):
    path = COMPAT / f"gymnasium-{version}"
    assert (path / "gymnasium").is_dir(), f"{path} is missing: run `make setup` (scripts/setup.sh)"
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run(
        [sys.executable, "-c", CHECK, version],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    mode, episodes = out.stdout.split()
    assert mode == "NextStep" and int(episodes) > 100

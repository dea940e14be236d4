"""On Ray, a cell's own exception names the cell (scenario, agent, seed) in one line, not
``ray::_remote_cell()``; finished cells stay. The command runs in a fresh process, which starts
and stops its own local Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_spec import tiny_spec

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

BAD_AGENT = '''
from driftrec.agents import AGENTS
from driftrec.agents.baselines import RandomAgent
from driftrec.agents.protocol import task_sizes


class Bad(RandomAgent):
    """Acts once (so the spec check's one call passes), then fails in the cell."""

    acted = False

    def act(self, obs):
        if self.acted:
            raise ValueError("bad agent acted")
        self.acted = True
        return super().act(obs)


@AGENTS.register("review_bad")
def review_bad(env_or_spaces, settings, /):
    """Raises when it acts."""
    return Bad(task_sizes(env_or_spaces), seed=settings.seed)
'''


def test_a_failing_cell_on_ray_is_named_in_one_line(tmp_path):
    """In a fresh process, as a user runs it (the command starts its own local Ray)."""
    (tmp_path / "review_bad_plugins.py").write_text(BAD_AGENT)
    spec = tmp_path / "spec.yaml"
    agents = [{"name": "random"}, {"name": "review_bad"}]
    spec.write_text(yaml.safe_dump({**tiny_spec(agents), "imports": ["review_bad_plugins"]}))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "driftrec.experiments.cli", "run", str(spec), "--quiet"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    err = result.stderr
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if "Started a local Ray" not in line]
    assert len(lines) == 1, lines  # besides Ray's own start-up line
    assert (
        "cell sudden__review_bad__s0 (scenario sudden, agent review_bad, seed 0) failed: "
        in lines[0]
    )
    assert "ValueError: bad agent acted" in lines[0]
    assert "run the same command again to resume" in lines[0]

"""On Ray, a cell's own exception names the cell (scenario, agent, seed) in one line, not
``ray::_remote_cell()``; finished cells stay. One local Ray (1 CPU), started and shut down here."""

from __future__ import annotations

import os

import pytest
import yaml
from tiny_spec import tiny_spec

from driftrec.experiments.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

BAD_AGENT = '''
from driftrec.agents import AGENTS
from driftrec.agents.baselines import RandomAgent
from driftrec.agents.protocol import task_sizes


class Bad(RandomAgent):
    def act(self, obs):
        raise ValueError("bad agent acted")


@AGENTS.register("review_bad")
def review_bad(env_or_spaces, settings, /):
    """Raises when it acts."""
    return Bad(task_sizes(env_or_spaces), seed=settings.seed)
'''


def test_a_failing_cell_on_ray_is_named_in_one_line(
    tmp_path, tmp_path_factory, monkeypatch, capsys
):
    import ray

    from driftrec.agents import AGENTS

    (tmp_path / "review_bad_plugins.py").write_text(BAD_AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.shutdown()
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 2**20,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),  # short: socket paths
    )
    spec = tmp_path / "spec.yaml"
    agents = [{"name": "random"}, {"name": "review_bad"}]
    spec.write_text(yaml.safe_dump({**tiny_spec(agents), "imports": ["review_bad_plugins"]}))
    try:
        assert main(["run", str(spec), "--quiet", "--out", str(tmp_path / "out")]) == 1
    finally:
        ray.shutdown()
        if "review_bad" in AGENTS:
            AGENTS.unregister("review_bad")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if "Started a local Ray" not in line]
    assert len(lines) == 1, lines  # besides Ray's own start-up line
    assert (
        "cell sudden__review_bad__s0 (scenario sudden, agent review_bad, seed 0) failed: "
        in lines[0]
    )
    assert "ValueError: bad agent acted" in lines[0]
    assert "run the same command again to resume" in lines[0]

"""The Ray runner: the same numbers as in-process, a dead worker's cell retried, a GPU or CPU
request the cluster cannot meet refused at once. One local Ray session (2 CPUs) for the module."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from user_plugins import unregister_user_module, user_spec, write_user_module

from driftrec.experiments.experiment import run_experiment
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.runners import FAULT_ENV
from driftrec.experiments.spec import SpecError

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """A directory on the Ray workers' PYTHONPATH, for a user's module of registrations."""
    return tmp_path_factory.mktemp("plugins")


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory, plugins):
    import ray

    markers = tmp_path_factory.mktemp("killed")
    patch = pytest.MonkeyPatch()
    patch.setenv(FAULT_ENV, f"killed@{markers}")  # workers inherit it from the raylet
    patch.setenv("PYTHONPATH", os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")]))
    patch.setenv("RAY_AUTH_MODE", "disabled")
    patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.shutdown()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 2**20,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    yield markers
    ray.shutdown()
    patch.undo()


def summary(directory):
    frame = pd.read_parquet(directory / "cells.parquet")
    keep = [c for c in frame.columns if c != "seconds" and not c.endswith("_seconds")]
    return frame[[c for c in keep if c not in ("cost_peak_rss_mb", "node")]]


def test_ray_and_in_process_runners_give_identical_summaries(ray_session, tiny, tmp_path):
    tiny = {**tiny, "seeds": [1]}
    local = run_experiment(tiny, tmp_path / "local", runner="local", progress=False)
    on_ray = run_experiment(tiny, tmp_path / "ray", runner="ray", progress=False)
    pd.testing.assert_frame_equal(summary(local.parent), summary(on_ray.parent))
    cell = ResultsDir(tmp_path / "ray").read_cell("sudden__online__s1")
    assert cell.node  # ran in a Ray worker


def test_a_cell_whose_worker_dies_is_retried_and_the_results_are_complete(
    ray_session, tiny, tmp_path
):
    spec = {**tiny, "name": "killed", "seeds": [0], "scenarios": tiny["scenarios"][:1]}
    report = run_experiment(spec, tmp_path / "out", runner="ray", progress=False)
    killed = {p.name for p in ray_session.iterdir()}
    assert killed == {"sudden__online__s0", "sudden__random__s0"}  # each worker died once
    assert ResultsDir(report.parent).finished() == killed  # and its cell ran again
    assert len(pd.read_parquet(report.parent / "summary.parquet")) == 2


def test_a_gpu_request_on_a_cluster_without_gpus_fails_at_once(ray_session, tiny, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SpecError, match=r"resources\.num_gpus: .* the Ray cluster has 0"):
        run_experiment({**tiny, "resources": {"num_gpus": 1}}, out, runner="ray")
    assert not out.exists()


def test_ray_workers_import_the_users_own_scenarios_and_agents(
    ray_session, plugins, tiny, tmp_path, monkeypatch
):
    """The workers learn of a user's registrations through the spec's ``imports`` (they
    failed with 'unknown scenario' after the driver had checked the spec and written the
    directory)."""
    monkeypatch.syspath_prepend(str(plugins))
    module = write_user_module(plugins, "onray")
    try:
        report = run_experiment(
            user_spec(tiny, module, "onray"), tmp_path / "out", runner="ray", progress=False
        )
    finally:
        unregister_user_module(module, "onray")
    directory = ResultsDir(report.parent)
    assert directory.finished() == {"onray_shift__onray_random__s0", "onray_shift__online__s0"}
    node = directory.read_cell("onray_shift__online__s0").node
    assert node  # ran in a Ray worker, and the cells table says which
    cells = pd.read_parquet(directory.root / "cells.parquet").set_index(["agent", "seed"])
    assert cells.loc[("online", 0), "node"] == node


def test_more_cpus_per_cell_than_any_node_has_fails_at_once(ray_session, tiny, tmp_path):
    """Such a task would wait forever (the run hung); 2 of 2 CPUs is fine."""
    out = tmp_path / "out"
    with pytest.raises(SpecError, match=r"resources\.num_cpus: .*largest node .* has 2 "):
        run_experiment({**tiny, "resources": {"num_cpus": 3}}, out, runner="ray")
    assert not out.exists()

"""A spec run on an existing two-node cluster (both nodes on 127.0.0.1) through the command
line's ``--address``: it completes and cells ran on both nodes. Only the processes this test
started are stopped (``Cluster.shutdown``), never ``ray stop``."""

from __future__ import annotations

import pytest
import yaml

from driftrec.experiments.cli import main
from driftrec.experiments.results import ResultsDir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def test_a_spec_runs_on_a_two_node_cluster_given_its_address(tiny, tmp_path, monkeypatch, capsys):
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20},
    )
    try:
        cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
        cluster.wait_for_nodes()
        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump({**tiny, "seeds": [0]}))
        out = tmp_path / "out"
        assert main(["run", str(spec), "--address", cluster.address, "--out", str(out)]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1] == f"report: {out}/report.html"
        results = ResultsDir(out)
        nodes = {results.read_cell(cell_id).node for cell_id in results.finished()}
        assert len(results.finished()) == 4
        assert len(nodes) == 2, nodes  # both nodes ran cells
    finally:
        ray.shutdown()
        cluster.shutdown()

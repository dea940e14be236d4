"""The command line's ``run``, ``report`` and ``list`` after the user reviews: a Ray address that
answers nothing, RAY_ADDRESS, per-node resources, a failing cell, Ctrl-C, one deep check, results
directories that are damaged or hold another spec. Refusals are one line, exit 2, before the
banner, leaving nothing behind. No Ray cluster is started: what Ray answers is faked."""

from __future__ import annotations

import socket

import pytest
import yaml
from tiny_spec import tiny_spec

from driftrec.experiments import runners
from driftrec.experiments.cli import main
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import ExperimentSpec, SpecError, load_spec

FAST = [{"name": "random"}, {"name": "popularity"}]  # two cells of a second or so


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray as not initialised, with ``ray.init`` recording its address and failing at once
    (a real one against nothing retries for minutes)."""
    import ray

    calls: list[str | None] = []

    def init(address=None, **kwargs):
        calls.append(address)
        raise ConnectionError(f"Failed to connect to GCS at address {address}\nwithin 60 s")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    return calls


@pytest.fixture
def listening():
    """An address on 127.0.0.1 that accepts TCP connections (and is not Ray)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


def write_spec(tmp_path, agents=FAST, name="tiny", **changes) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**tiny_spec(agents, name), **changes}))
    return str(path)


def refused(capsys, argv: list[str]) -> str:
    """Run ``driftrec argv``; check it exits 2 with one line on stderr and nothing on stdout
    (no banner); return the line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_an_address_where_nothing_answers_is_refused_at_once_leaving_nothing(
    tmp_path, capsys, fake_ray
):
    out = tmp_path / "new" / "out"
    line = refused(
        capsys, ["run", write_spec(tmp_path), "--address", "127.0.0.1:1", "--out", str(out)]
    )
    assert (
        "nothing answers at 127.0.0.1:1: is the cluster's head running? (ray start --head" in line
    )
    assert fake_ray == []  # ray.init was never tried
    assert not (tmp_path / "new").exists()


def test_a_failure_to_join_the_cluster_is_one_line_and_leaves_nothing(
    tmp_path, capsys, fake_ray, listening
):
    out = tmp_path / "out"
    line = refused(capsys, ["run", write_spec(tmp_path), "--address", listening, "--out", str(out)])
    assert f"cannot join the Ray cluster at {listening} (from --address)" in line
    assert "Failed to connect to GCS" in line
    assert not out.exists()


def test_an_address_with_the_local_runner_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runners, "run_cell", lambda cell: pytest.fail("a cell ran"))
    out = tmp_path / "out"
    argv = ["run", write_spec(tmp_path), "--runner", "local", "--address", "127.0.0.1:6379"]
    line = refused(capsys, [*argv, "--out", str(out)])
    assert "argument --address" in line and "--runner ray" in line
    assert not out.exists()


def test_ray_address_from_the_environment_is_joined(
    tmp_path, capsys, monkeypatch, fake_ray, listening
):
    monkeypatch.setenv("RAY_ADDRESS", listening)
    out = tmp_path / "out"
    line = refused(capsys, ["run", write_spec(tmp_path), "--out", str(out)])
    assert fake_ray == [listening]  # not a fresh local Ray
    assert f"cannot join the Ray cluster at {listening} (from RAY_ADDRESS)" in line
    assert not out.exists()


def test_the_banner_says_the_address_came_from_ray_address(tmp_path, capsys, monkeypatch):
    from driftrec.experiments import experiment

    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    monkeypatch.setattr(experiment, "preflight", lambda *args: None)  # asked once, there

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runners, "_ray_results", interrupted)
    assert main(["run", write_spec(tmp_path), "--out", str(tmp_path / "out")]) == 130
    assert "on ray at 10.1.2.3:6379 (from RAY_ADDRESS) ->" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("nodes", "resources", "expected"),
    [
        # two nodes of one GPU: two GPUs in all, but not on one node
        ([{"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1}], {"num_gpus": 2}, r"largest node .* has 1 "),
        # the GPU node has too few CPUs, the big node no GPU
        (
            [{"CPU": 1, "GPU": 1}, {"CPU": 8}],
            {"num_cpus": 2, "num_gpus": 1},
            r"no node .* has both \(the largest has 1 CPUs and 1 GPUs",
        ),
        ([{"CPU": 2}], {"num_gpus": 1}, r"resources\.num_gpus: .* the Ray cluster has 0"),
        (
            [{"CPU": 2}, {"CPU": 1}],
            {"num_cpus": 3},
            r"resources\.num_cpus: .*largest node .* has 2 ",
        ),
        ([{"CPU": 1, "GPU": 1}, {"CPU": 4, "GPU": 2}], {"num_cpus": 2, "num_gpus": 2}, None),
    ],
)
def test_a_cell_must_fit_on_one_node(monkeypatch, nodes, resources, expected):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": n} for n in nodes])
    total: dict[str, float] = {}
    for node in nodes:
        for key, value in node.items():
            total[key] = total.get(key, 0) + value
    monkeypatch.setattr(ray, "cluster_resources", lambda: total)
    spec = load_spec({**tiny_spec(FAST), "resources": resources}, deep=False)
    if expected is None:
        runners.preflight(spec, "ray")
    else:
        with pytest.raises(SpecError, match=expected):
            runners.preflight(spec, "ray")


def test_a_failing_cell_is_named_in_one_line_and_the_finished_ones_kept(
    tmp_path, capsys, monkeypatch
):
    real = runners.run_cell

    def fails_second(cell):
        if cell.agent.name == "popularity":
            raise ValueError("boom\nsecond line")
        return real(cell)

    monkeypatch.setattr(runners, "run_cell", fails_second)
    out = tmp_path / "out"
    assert (
        main(["run", write_spec(tmp_path), "--runner", "local", "--quiet", "--out", str(out)]) == 1
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "cell sudden__popularity__s0 (scenario sudden, agent popularity, seed 0)" in lines[0]
    assert "ValueError: boom; second line" in lines[0]
    assert f"1 of 2 cells finished and kept in {out}" in lines[0]
    assert "run the same command again to resume" in lines[0]
    assert ResultsDir(out).finished() == {"sudden__random__s0"}


def test_ctrl_c_is_one_line_with_what_was_kept(tmp_path, capsys, monkeypatch):
    real = runners.run_cell

    def interrupted_second(cell):
        if cell.agent.name == "popularity":
            raise KeyboardInterrupt
        return real(cell)

    monkeypatch.setattr(runners, "run_cell", interrupted_second)
    out = tmp_path / "out"
    assert (
        main(["run", write_spec(tmp_path), "--runner", "local", "--quiet", "--out", str(out)])
        == 130
    )
    assert capsys.readouterr().err.strip().splitlines() == [
        f"interrupted: 1 of 2 cells finished and kept in {out}; run the same command again to "
        "resume"
    ]


def test_the_spec_is_checked_against_the_registries_once(tmp_path, capsys, monkeypatch):
    real, calls = ExperimentSpec.check_against_registries, []

    def counted(self):
        calls.append(self.name)
        return real(self)

    monkeypatch.setattr(ExperimentSpec, "check_against_registries", counted)
    spec = write_spec(tmp_path, agents=[{"name": "random"}])
    assert main(["run", spec, "--runner", "local", "--quiet", "--out", str(tmp_path / "out")]) == 0
    assert calls == ["tiny"]


def finished_dir(root, **changes) -> ResultsDir:
    """A directory prepared for the tiny spec (with ``changes``) holding one (fake) cell."""
    directory = ResultsDir(root)
    directory.prepare(load_spec({**tiny_spec(FAST), **changes}, deep=False))
    directory.write_cell("sudden__random__s0", {"fake": True})
    return directory


def test_another_specs_directory_is_refused_before_the_banner_naming_the_field(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(runners, "run_cell", lambda cell: pytest.fail("a cell ran"))
    out = tmp_path / "out"
    finished_dir(out, horizon=4_000)
    before = sorted(p.name for p in out.rglob("*"))
    line = refused(capsys, ["run", write_spec(tmp_path), "--runner", "local", "--out", str(out)])
    assert "holds results of a different spec (horizon: 4000 there, 2000 here)" in line
    assert sorted(p.name for p in out.rglob("*")) == before


def test_only_resources_changed_is_the_same_experiment(tmp_path):
    directory = finished_dir(tmp_path / "out")
    changed = load_spec({**tiny_spec(FAST), "resources": {"num_cpus": 0.5}}, deep=False)
    assert changed.fingerprint() != directory.read_spec_fingerprint()
    directory.check_compatible(changed)  # no refusal
    directory.prepare(changed)
    assert directory.finished() == {"sudden__random__s0"}


def test_a_gpu_where_the_cells_ran_on_the_cpu_is_another_experiment(tmp_path):
    """A cell with a GPU puts its model on CUDA, whose numbers differ in the last bits: a
    CPU directory resumed with num_gpus > 0 would mix them."""
    directory = finished_dir(tmp_path / "out")
    on_gpu = load_spec({**tiny_spec(FAST), "resources": {"num_gpus": 1}}, deep=False)
    with pytest.raises(SpecError, match=r"resources\.num_gpus: 0.0 there, 1.0 here \(a model"):
        directory.check_compatible(on_gpu)


def test_a_refusal_names_the_nested_field_that_differs(tmp_path):
    directory = finished_dir(tmp_path / "out")
    spec = tiny_spec(FAST)
    changed = {**spec, "evaluation": {**spec["evaluation"], "window": 200}}
    with pytest.raises(SpecError) as error:
        directory.check_compatible(load_spec(changed, deep=False))
    window = spec["evaluation"]["window"]
    assert f"(evaluation.window: {window} there, 200 here)" in str(error.value)


def test_a_spec_yaml_without_any_finished_cell_takes_the_new_spec(tmp_path, capsys):
    out = tmp_path / "out"
    ResultsDir(out).prepare(load_spec({**tiny_spec(FAST), "horizon": 4_000}, deep=False))
    spec = write_spec(tmp_path, agents=[{"name": "random"}])
    with pytest.warns(UserWarning, match=r"finished no cell: replaced with this spec"):
        assert main(["run", spec, "--runner", "local", "--quiet", "--out", str(out)]) == 0
    assert ResultsDir(out).read_spec().horizon == 2_000


def test_cells_without_a_spec_yaml_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runners, "run_cell", lambda cell: pytest.fail("a cell ran"))
    out = tmp_path / "out"
    ResultsDir(out).write_cell("sudden__random__s0", {"fake": True})
    line = refused(capsys, ["run", write_spec(tmp_path), "--runner", "local", "--out", str(out)])
    assert "holds 1 cell file(s) but" in line and "has no spec.yaml" in line
    assert sorted(p.name for p in out.rglob("*")) == ["cells", "sudden__random__s0.pkl"]


def test_an_empty_cell_file_is_named_by_report_and_run_again_by_run(tmp_path, capsys):
    out = tmp_path / "out"
    spec = write_spec(tmp_path, agents=[{"name": "random"}])
    argv = ["run", spec, "--runner", "local", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    cell = out / "cells" / "sudden__random__s0.pkl"
    cell.write_bytes(b"")  # a copy truncated it
    capsys.readouterr()
    line = refused(capsys, ["report", str(out)])
    assert str(cell) in line and "cannot be read" in line and "driftrec run" in line
    with pytest.warns(UserWarning, match=r"sudden__random__s0\.pkl cannot be read .* runs again"):
        assert main(argv) == 0
    assert (out / "cells.unreadable" / cell.name).stat().st_size == 0
    assert ResultsDir(out).read_cell("sudden__random__s0").cell_id == "sudden__random__s0"


@pytest.mark.parametrize("damage", ["horizon: [unclosed\n", "# fingerprint: 0\nhorizon: -5\n", ""])
def test_a_damaged_spec_yaml_is_named_by_report(tmp_path, capsys, damage):
    directory = finished_dir(tmp_path / "out")
    (directory.root / "spec.yaml").write_text(damage)
    line = refused(capsys, ["report", str(directory.root)])
    assert f"{directory.root / 'spec.yaml'} is damaged" in line


def test_list_shows_the_defaults_of_agents_models_and_explorations(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    online = next(line for line in out.splitlines() if line.strip().startswith("online "))
    assert "epochs=1" in online and "lr=0.01" in online
    assert "dim=32" in out  # mf's
    assert "epsilon=0.05" in out  # epsilon_greedy's
    assert "scope=['embeddings']" in out  # a tuple default shown as the list a spec gives


def test_ctrl_c_while_the_spec_is_checked_is_one_line(tmp_path, capsys, monkeypatch):
    """Before: a KeyboardInterrupt traceback from inside the registry check."""
    from driftrec.experiments import spec as spec_module

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(spec_module.ExperimentSpec, "check_against_registries", interrupted)
    assert main(["run", write_spec(tmp_path), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.strip() == "driftrec run: interrupted"
    assert not (tmp_path / "out").exists()


def test_on_ray_the_cells_finished_while_another_failed_are_kept(tmp_path, monkeypatch):
    """Ray answers the failed cell first, while the two others have finished: they are written
    before the error (they were cancelled unread). Ray itself is faked: the race is its."""
    import ray
    from ray.exceptions import RayError

    spec = load_spec({**tiny_spec(FAST), "seeds": [0, 1]}, deep=False)
    cells = spec.cells()
    failing = cells[0].id
    refs = {}

    class Task:
        def options(self, **kwargs):
            return self

        def remote(self, cell):
            refs[cell.id] = cell
            return cell.id

    def get(ref):
        if ref == failing:
            raise RayError("worker died")
        return {"fake result of": ref}

    def wait(pending, num_returns=1, timeout=None):
        ready = [failing] if num_returns == 1 else list(pending)  # the others are done too
        return ready, [r for r in pending if r not in ready]

    monkeypatch.setattr(ray, "remote", lambda function: Task())
    monkeypatch.setattr(ray, "get", get)
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "cancel", lambda ref: pytest.fail(f"{ref} cancelled"))
    directory = ResultsDir(tmp_path / "out")
    directory.prepare(spec)
    with pytest.raises(runners.CellError, match=rf"cell {failing} .* failed: RayError"):
        runners.run_cells(spec, directory, runner="ray", progress=False, checked=True)
    assert directory.finished() == {cell.id for cell in cells[1:]}

"""The command line refuses bad values before any work starts: one line on stderr that names the
option and what it accepts, exit status 2, nothing written. Bugs keep their traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from driftrec.experiments import cli, demo
from driftrec.experiments.cli import main
from driftrec.simulators.scenarios import SCENARIOS

# A valid run: 20 steps (two windows of 10) of 32 sessions, the shift inside it.
SMALL = ["--envs", "32", "--steps", "20", "--at", "320"]


def usage_error(capsys, argv: list[str]) -> str:
    """Run ``driftrec argv`` in process; check it exits 2 with one line on stderr; return it."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def no_run(monkeypatch):
    """Fail if the demo gets as far as rolling its environments."""

    def roll_demo(*args, **kwargs):
        raise AssertionError("the demo ran")

    monkeypatch.setattr(demo, "roll_demo", roll_demo)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--scenario", "foo"], ["argument --scenario", "'foo'", *SCENARIOS]),
        (["--envs", "0"], ["argument --envs", "integer >= 1", "got 0"]),
        (["--envs", "-3"], ["argument --envs", "integer >= 1", "got -3"]),
        (["--envs", "many"], ["argument --envs", "integer >= 1", "got many"]),
        (["--steps", "0"], ["argument --steps", "at least 20", "windows of 10 steps", "got 0"]),
        (["--steps", "5"], ["argument --steps", "at least 20", "windows of 10 steps", "got 5"]),
        (["--steps", "19"], ["argument --steps", "at least 20", "got 19"]),
        (["--seed", "-1"], ["argument --seed", "integer >= 0", "got -1"]),
        # 20 steps of 32 sessions: the last step starts at clock 19 * 32 = 608.
        ([*SMALL, "--at", "0"], ["argument --at", "between 1 and 608", "got 0"]),
        ([*SMALL, "--at", "609"], ["argument --at", "between 1 and 608", "got 609"]),
        ([*SMALL, "--at", "640"], ["argument --at", "between 1 and 608", "got 640"]),
        # 25 steps report two whole windows (20 steps): a shift in the last 5 would not show.
        (["--envs", "32", "--steps", "25", "--at", "620"], ["between 1 and 608", "got 620"]),
        (["--scenario", "gradual", "--at", "500"], ["argument --at", "only", "sudden"]),
    ],
)
def test_a_bad_value_is_a_one_line_usage_error_and_nothing_is_written(
    argv, expected, capsys, tmp_path, no_run
):
    out = tmp_path / "report"
    line = usage_error(capsys, ["demo", *argv, "--out", str(out)])
    assert line.startswith("driftrec demo: error: ")
    assert all(text in line for text in expected), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_out_that_cannot_be_created_is_refused_before_the_run(capsys, no_run):
    line = usage_error(capsys, ["demo", *SMALL, "--out", "/proc/driftrec-report"])
    assert line.startswith("driftrec demo: error: argument --out: cannot create directory")
    assert "'/proc/driftrec-report'" in line
    assert not Path("/proc/driftrec-report").exists()


def test_an_out_under_a_file_is_refused(capsys, tmp_path, no_run):
    (tmp_path / "file").write_text("x")
    line = usage_error(capsys, ["demo", *SMALL, "--out", str(tmp_path / "file" / "report")])
    assert line.startswith("driftrec demo: error: argument --out: cannot create directory")
    assert str(tmp_path / "file" / "report") in line
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    assert (tmp_path / "file").read_text() == "x"


def test_run_refuses_an_out_under_a_file_in_one_line(capsys, tmp_path, monkeypatch):
    from driftrec.experiments import experiment

    def run_experiment(*args, **kwargs):
        raise AssertionError("the experiment ran")

    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "sub"
    line = usage_error(capsys, ["run", "--runner", "local", "--out", str(out)])
    assert line.startswith("driftrec run: error: argument --out: cannot create directory")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_an_out_that_is_a_file_is_refused(capsys, tmp_path, no_run):
    (tmp_path / "report").write_text("x")
    line = usage_error(capsys, ["demo", *SMALL, "--out", str(tmp_path / "report")])
    assert line.endswith(
        f"argument --out: {str(tmp_path / 'report')!r} exists and is not a directory"
    )


def test_an_out_whose_report_file_is_a_directory_is_refused(capsys, tmp_path, no_run):
    (tmp_path / "demo.csv").mkdir()
    line = usage_error(capsys, ["demo", *SMALL, "--out", str(tmp_path)])
    assert line.endswith(f"{str(tmp_path / 'demo.csv')!r} exists and is not a file")
    assert [p.name for p in tmp_path.iterdir()] == ["demo.csv"]


def test_a_refused_out_leaves_no_directory_behind(capsys, tmp_path, monkeypatch, no_run):
    # The directories get created, then writing in them fails (a read-only mount, say).
    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", unwritable)
    out = tmp_path / "new" / "report"
    line = usage_error(capsys, ["demo", *SMALL, "--out", str(out)])
    assert line.endswith(
        f"argument --out: cannot write in directory {str(out)!r}: Permission denied"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_library_error_for_a_bad_parameter_is_a_usage_error(capsys, tmp_path, monkeypatch):
    # The environments reject a parameter the command line did not check (here: an unknown one).
    real = demo.make_demo_envs
    monkeypatch.setattr(demo, "make_demo_envs", lambda *a, **kw: real(*a, bogus=1, **kw))
    line = usage_error(capsys, ["demo", *SMALL, "--out", str(tmp_path / "report")])
    assert line.startswith("driftrec demo: error: unknown parameter(s) ['bogus']")
    assert list(tmp_path.iterdir()) == []


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def broken_envs(*args, **kwargs):
        raise KeyError("a bug while building")

    monkeypatch.setattr(demo, "make_demo_envs", broken_envs)
    with pytest.raises(KeyError, match="a bug while building"):
        main(["demo", *SMALL, "--out", str(tmp_path / "report")])


def test_a_value_error_during_the_run_is_a_bug_not_a_usage_error(tmp_path, monkeypatch):
    def broken_roll(*args, **kwargs):
        raise ValueError("a bug while rolling")

    monkeypatch.setattr(demo, "roll_demo", broken_roll)
    with pytest.raises(ValueError, match="a bug while rolling"):
        main(["demo", *SMALL, "--out", str(tmp_path / "report")])


def test_a_missing_command_is_a_one_line_usage_error(capsys):
    assert usage_error(capsys, []).startswith("driftrec: error: ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--steps", "5"], "argument --steps: must be at least 20"),
        (["--scenario", "foo"], "argument --scenario: invalid choice: 'foo'"),
    ],
)
def test_the_installed_command_line_refuses_in_one_line(argv, expected, tmp_path):
    out = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "-m", "driftrec.experiments.cli", "demo", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"driftrec demo: error: {expected}")
    assert not out.exists()


def test_a_short_run_without_at_puts_the_shift_in_its_middle(tmp_path, capsys):
    """The preset's clock (100,000) lies beyond 32 x 20 requests: the default moves inside."""
    assert main(["demo", "--envs", "32", "--steps", "20", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "demo.csv").is_file()
    assert "event: t=304 sudden" in capsys.readouterr().out  # (1 + 608) // 2: mid-report


@pytest.mark.slow
def test_the_installed_command_imports_a_users_module_from_the_working_directory(tiny, tmp_path):
    """``imports:`` finds a module in the working directory under the ``driftrec`` command
    too, whose own sys.path lacks it (``python -m`` would have hidden that)."""
    import yaml
    from user_plugins import user_spec, write_user_module

    module = write_user_module(tmp_path, "cli")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(user_spec(tiny, module, "cli")))
    command = Path(sys.executable).with_name("driftrec")
    run = subprocess.run(
        [str(command), "run", "spec.yaml", "--runner", "local", "--out", "out", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "cells").glob("*.pkl")) == [
        "cli_shift__cli_random__s0.pkl",
        "cli_shift__online__s0.pkl",
    ]

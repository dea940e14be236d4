"""The experiment commands of the ``driftrec`` command line: ``run``, ``report``, ``bench``, and
the agents part of ``list``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftrec.validation import one_line

__all__ = ["add_experiment_commands", "list_agents"]


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Every refusal (spec, directory, runner) comes before the banner and leaves nothing
    behind; a failing cell and Ctrl-C are one line each, the finished cells kept."""
    from driftrec.experiments.cli import missing_dirs, prepare_out, remove_empty
    from driftrec.experiments.experiment import check_experiment, run_checked
    from driftrec.experiments.runners import CellError, ray_address
    from driftrec.experiments.spec import SpecError, load_spec

    if args.address and args.runner != "ray":
        parser.error(
            f"argument --address: joins a Ray cluster, so it needs --runner ray (--runner "
            f"{args.runner} runs the cells in this process); drop one of them"
        )
    try:
        spec = load_spec(args.spec)  # checked against the registries once, here
    except SpecError as error:
        parser.error(one_line(error))
    out = Path(args.out) if args.out else Path("results") / spec.name
    created = missing_dirs(out)
    problem = prepare_out(out, ())
    if problem is not None:
        parser.error(f"argument --out: {problem}")
    try:
        directory = check_experiment(spec, out, runner=args.runner, address=args.address)
    except SpecError as error:  # refused before anything was written
        remove_empty(created)
        parser.error(one_line(error))
    except KeyboardInterrupt:
        remove_empty(created)
        print("interrupted before any cell ran; nothing written", file=sys.stderr)
        return 130
    cells = {cell.id for cell in spec.cells()}
    where = args.runner
    if args.runner == "ray":
        address, source = ray_address(args.address)
        where = "ray on this machine" if address is None else f"ray at {address}"
        where += " (from RAY_ADDRESS)" if source == "RAY_ADDRESS" else ""
    print(
        f"driftrec run: {spec.name}: {len(spec.scenarios)} scenarios x {len(spec.agents)} agents "
        f"x {len(spec.seeds)} seeds = {len(cells)} cells of {spec.horizon:,} requests, on "
        f"{where} -> {out}"
    )
    began = time.perf_counter()
    try:
        report = run_checked(
            spec, directory, runner=args.runner, address=args.address, progress=not args.quiet
        )
    except CellError as error:
        finished = len(directory.finished() & cells)
        print(
            f"{parser.prog}: error: {one_line(error)}; {finished} of {len(cells)} cells "
            f"finished and kept in {out}: fix the cause and run the same command again to "
            "resume (finished cells are skipped)",
            file=sys.stderr,
        )
        return 1
    except SpecError as error:  # the directory refused in prepare (e.g. cells set aside twice)
        parser.error(one_line(error))
    except KeyboardInterrupt:
        finished = len(directory.finished() & cells)
        print(
            f"interrupted: {finished} of {len(cells)} cells finished and kept in {out}; run "
            "the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(f"done in {time.perf_counter() - began:,.0f} s; tables, figures and summary.md in {out}")
    print(f"report: {report}")
    return 0


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from driftrec.experiments.report import write_report
    from driftrec.experiments.spec import SpecError

    try:
        report = write_report(args.directory)
    except (SpecError, FileNotFoundError) as error:
        parser.error(one_line(error))
    print(f"report: {report}")
    return 0


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Requests per second of the batched environment and of an online MF agent on it."""
    import numpy as np

    from driftrec.agents import Transition, make_agent
    from driftrec.envs import RecDriftVectorEnv

    env = RecDriftVectorEnv(args.envs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = np.argsort(rng.random((args.envs, env.config.num_candidates)), axis=1)
    actions = actions[:, : env.config.slate_size]
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < args.seconds:
        env.step(actions)
        steps += 1
    env_rate = steps * args.envs / (time.perf_counter() - began)
    agent = make_agent("online", env, model="mf", seed=0)
    obs, _ = env.reset(seed=0)
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < args.seconds:
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        obs, steps = next_obs, steps + 1
    agent_rate = steps * args.envs / (time.perf_counter() - began)
    print(f"environment, {args.envs} sessions, default sizes: {env_rate:,.0f} requests/s")
    print(f"online MF acting and learning on it:           {agent_rate:,.0f} requests/s")
    print("(benchmarks/ holds the full benchmarks: make bench)")
    return 0


def _defaults(parameters: dict[str, Any]) -> str:
    """``name=default, ...`` (``name`` alone where there is no default; tuples as the YAML
    lists a spec gives)."""
    import inspect

    shown = []
    for key, value in parameters.items():
        if value is inspect.Parameter.empty:
            shown.append(key)
        else:
            shown.append(f"{key}={list(value) if isinstance(value, tuple) else value!r}")
    return ", ".join(shown) or "-"


def _print_entries(entries: dict[str, dict[str, Any]], width: int = 16) -> None:
    import shutil
    import textwrap

    columns = max(shutil.get_terminal_size((100, 24)).columns, 60)
    for name, parameters in entries.items():
        lines = textwrap.wrap(
            _defaults(parameters), columns - width - 3, break_long_words=False
        ) or ["-"]
        print(f"  {name:<{width}} {lines[0]}")
        for line in lines[1:]:
            print(f"  {'':<{width}} {line}")


def list_agents() -> None:
    """Print the agents, models and explorations with their parameters and defaults."""
    from driftrec.agents import AGENTS, EXPLORATIONS, MODELS, agent_names

    print("Agents (make_agent name, parameters with defaults; a spec's agents.params):")
    _print_entries({name: AGENTS.parameters(name) for name in agent_names()})
    print("Models (a spec's model: NAME or {name: NAME, PARAM: VALUE}), parameters with defaults:")
    _print_entries({name: MODELS.parameters(name) for name in MODELS})
    print("Explorations (exploration: NAME or {name: NAME, PARAM: VALUE}), parameters:")
    _print_entries({name: EXPLORATIONS.parameters(name) for name in EXPLORATIONS})


def add_experiment_commands(
    sub: Any, integer: Callable[..., Callable[[str], int]]
) -> dict[str, argparse.ArgumentParser]:
    """Add ``run``, ``report`` and ``bench`` to the subcommand parsers ``sub``."""
    from driftrec.experiments.runners import RUNNERS

    run = sub.add_parser("run", help="run an experiment spec (YAML) and write its report")
    run.add_argument(
        "spec",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"),
        help="the spec (default: the shipped quickstart)",
    )
    run.add_argument("--runner", choices=RUNNERS, default="ray", help="where cells run")
    run.add_argument(
        "--address",
        default=None,
        help="join this Ray cluster (HOST:PORT; default: RAY_ADDRESS if set, else Ray starts "
        "on this machine); --runner ray only",
    )
    run.add_argument("--out", default=None, help="results directory (default results/<name>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run, parser=run)
    report = sub.add_parser("report", help="rebuild the report of a results directory")
    report.add_argument("directory")
    report.set_defaults(func=_report, parser=report)
    bench = sub.add_parser("bench", help="a quick throughput check of this machine")
    bench.add_argument("--envs", type=integer(minimum=1), default=1024)
    bench.add_argument("--seconds", type=integer(minimum=1), default=3)
    bench.set_defaults(func=_bench, parser=bench)
    return {"run": run, "report": report, "bench": bench}

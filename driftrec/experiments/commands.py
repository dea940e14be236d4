"""The experiment commands of the ``driftrec`` command line: ``run``, ``report``, ``bench``, and
the agents part of ``list``."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_experiment_commands", "list_agents"]


def _one_line(error: BaseException) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from driftrec.experiments.cli import prepare_out
    from driftrec.experiments.experiment import run_experiment
    from driftrec.experiments.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as error:
        parser.error(_one_line(error))
    out = Path(args.out) if args.out else Path("results") / spec.name
    created = not os.path.lexists(out)
    problem = prepare_out(out, ())
    if problem is not None:
        parser.error(f"argument --out: {problem}")
    cells = len(spec.cells())
    print(
        f"driftrec run: {spec.name}: {len(spec.scenarios)} scenarios x {len(spec.agents)} agents "
        f"x {len(spec.seeds)} seeds = {cells} cells of {spec.horizon:,} requests, on "
        f"{args.runner}{' at ' + args.address if args.address else ''} -> {out}"
    )
    began = time.perf_counter()
    try:
        report = run_experiment(
            spec, out, runner=args.runner, address=args.address, progress=not args.quiet
        )
    except SpecError as error:  # refused before anything was written
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if still empty
        parser.error(_one_line(error))
    print(f"done in {time.perf_counter() - began:,.0f} s; tables, figures and summary.md in {out}")
    print(f"report: {report}")
    return 0


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from driftrec.experiments.report import write_report
    from driftrec.experiments.spec import SpecError

    try:
        report = write_report(args.directory)
    except (SpecError, FileNotFoundError) as error:
        parser.error(_one_line(error))
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


def list_agents() -> None:
    """Print the agents, models and explorations with their parameters."""
    from driftrec.agents import EXPLORATIONS, MODELS, agent_names, agent_parameters

    print("Agents (make_agent name, parameters):")
    for name in agent_names():
        print(f"  {name:<16} {', '.join(agent_parameters(name)) or '-'}")
    print(f"Models: {', '.join(MODELS)}; explorations: {', '.join(EXPLORATIONS)}.")


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
    run.add_argument("--address", default=None, help="join this Ray cluster (host:port)")
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

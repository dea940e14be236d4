"""The ``driftrec`` command line.

A usage error (a bad option value, a run too short to show its drift, an ``--out`` that cannot
be written) is reported as one line on stderr with exit status 2, before any work starts.
Anything else that goes wrong is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``<prog>: error: <message>``, and
    exit status 2 (argparse's default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(line.strip() for line in message.splitlines())
        self.exit(2, f"{self.prog}: error: {message}\n")


def _integer(minimum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer, at least ``minimum`` if given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (minimum is not None and value < minimum):
            bound = "" if minimum is None else f" >= {minimum}"
            raise argparse.ArgumentTypeError(f"must be an integer{bound}, got {text}")
        return value

    return parse


def plain_summary(summary: str) -> str:
    """A docstring's first sentence for the terminal: reStructuredText's double backticks
    around a name become single ones (the name kept: "At `at` every ...")."""
    return re.sub(r"``(.+?)``", r"`\1`", summary)


def _list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from driftrec.envs import env_id
    from driftrec.experiments.spec import SpecError, import_modules, module_name_problem
    from driftrec.registry import Registry
    from driftrec.simulators.choice import CHOICE_MODELS
    from driftrec.simulators.retrieval import RETRIEVERS
    from driftrec.simulators.scenarios import SCENARIOS
    from driftrec.validation import one_line

    modules = args.imports or []
    problem = module_name_problem(modules)
    if problem:
        parser.error(f"argument --imports: {problem}")
    try:  # as a spec's imports: their registrations run before the listing
        import_modules(modules, where="argument --imports")
    except SpecError as error:
        parser.error(one_line(error))
    print("Scenarios (gymnasium id, parameters with defaults):")
    for entry in SCENARIOS.describe():
        params = ", ".join(f"{k}={v!r}" for k, v in entry.parameters.items())
        print(f"  {entry.name:<14} {env_id(entry.name):<26} {params or '-'}")
        print(f"  {'':<14} {plain_summary(entry.summary)}")
    print("Also: driftrec/RecDrift-v0 (pass scenario=... and any parameter).")
    parts: list[tuple[str, str, Registry[Any]]] = [
        ("Choice models", "choice_model", CHOICE_MODELS),
        ("Retrievers", "retrieval", RETRIEVERS),
    ]
    for title, setting, registry in parts:
        print(f"{title} (the world setting {setting}):")
        for entry in registry.describe():
            print(f"  {entry.name:<14} {plain_summary(entry.summary)}")
    from driftrec.experiments.commands import list_agents

    list_agents()
    return 0


def _demo_params(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, int]:
    """The scenario parameters of the demo, refused (one line, exit 2) unless the run is long
    enough to report windows and its drift lies where the report shows it."""
    from driftrec.experiments.demo import (
        MIN_WINDOWS,
        WINDOW,
        drift_clock_range,
        reported_steps,
    )
    from driftrec.simulators.scenarios import scenario_parameters

    minimum = MIN_WINDOWS * WINDOW
    if args.steps < minimum:
        parser.error(
            f"argument --steps: must be at least {minimum}: the report averages the reward over "
            f"windows of {WINDOW} steps and needs {MIN_WINDOWS} windows to show a change, "
            f"got {args.steps}"
        )
    if args.scenario != "sudden":
        if args.at is not None:
            parser.error(
                f"argument --at: applies only to --scenario sudden (the clock of its shift), "
                f"not to {args.scenario!r}"
            )
        return {}
    first, last = drift_clock_range(args.envs, args.steps, WINDOW)
    if args.at is None:  # the preset's clock if the run reaches it, else the run's middle
        at = scenario_parameters("sudden")["at"]
        return {"at": at if first <= at <= last else (first + last) // 2}
    at = args.at
    if not first <= at <= last:
        given = f"got {at}"
        parser.error(
            f"argument --at: must be between {first} and {last} (the clock at which the last of "
            f"the {reported_steps(args.steps, WINDOW)} reported steps of {args.envs} sessions "
            f"starts) for the shift to show in the report; {given}"
        )
    return {"at": at}


def prepare_out(out: Path, names: tuple[str, ...]) -> str | None:
    """Create directory ``out`` and check that the report files ``names`` can be written in it.
    Return why not (having removed the directories this created), or None."""
    # os.path, not Path, predicates: they answer False rather than raise on any OSError.
    if os.path.exists(out) and not os.path.isdir(out):
        return f"{str(out)!r} exists and is not a directory"
    missing = missing_dirs(out)
    problem: str | None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = f"cannot create directory {str(error.filename or out)!r}: {error.strerror}"
    else:
        problem = _why_unwritable(out, names)
    if problem is not None:
        remove_empty(missing)
    return problem


def missing_dirs(out: Path) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in (out, *out.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    return missing


def remove_empty(paths: list[Path]) -> None:
    """Remove the directories ``paths`` (deepest first), each only if it is still empty."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.rmdir()


def _why_unwritable(out: Path, names: tuple[str, ...]) -> str | None:
    try:
        # Try for real: os.access() tells root that read-only places such as /proc are writable.
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        return f"cannot write in directory {str(out)!r}: {error.strerror}"
    for target in (out / name for name in names):
        if os.path.lexists(target) and not os.path.isfile(target):
            return f"{str(target)!r} exists and is not a file"
        if os.path.isfile(target) and not os.access(target, os.W_OK):
            return f"{str(target)!r} is not writable"
    return None


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from driftrec.experiments.demo import (
        REPORT_FILES,
        WINDOW,
        format_rates,
        format_table,
        make_demo_envs,
        roll_demo,
        write_report,
    )

    params = _demo_params(args, parser)
    try:
        envs = make_demo_envs(args.scenario, args.envs, **params)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    out = Path(args.out)
    problem = prepare_out(out, REPORT_FILES)
    if problem is not None:
        parser.error(f"argument --out: {problem}")

    print(
        f"driftrec demo: scenario={args.scenario}, {args.envs} concurrent sessions, "
        f"{args.steps} steps ({args.envs * args.steps:,} requests per policy)"
    )
    result = roll_demo(envs, args.steps, WINDOW, seed=args.seed)
    print(format_table(result))
    paths = write_report(result, out, f"driftrec demo: {args.scenario} drift")
    print(format_rates(result))
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from driftrec.simulators.scenarios import SCENARIOS, scenario_parameters

    parser = _OneLineParser(
        prog="driftrec", description="Stress-test continual-learning recommenders under drift."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list scenarios (with gymnasium ids) and agents")
    listing.add_argument(
        "--imports",
        nargs="+",
        metavar="MODULE",
        default=[],
        help="modules to import first (as a spec's imports), so that the scenarios, agents, "
        "strategies and models they register are listed",
    )
    listing.set_defaults(func=_list, parser=listing)
    demo = sub.add_parser("demo", help="what drift does to a recommender that stops learning")
    demo.add_argument(
        "--scenario", default="sudden", choices=list(SCENARIOS), help="see `driftrec list`"
    )
    demo.add_argument("--envs", type=_integer(minimum=1), default=1024, help="concurrent sessions")
    demo.add_argument("--steps", type=_integer(), default=200, help="batched steps per policy")
    demo.add_argument(
        "--at",
        type=_integer(),
        default=None,
        help=(
            f"clock of the sudden shift (default {scenario_parameters('sudden')['at']}, or the "
            "middle of a run too short to reach it)"
        ),
    )
    demo.add_argument("--seed", type=_integer(minimum=0), default=0)
    demo.add_argument("--out", default="results/demo")
    demo.set_defaults(func=_demo, parser=demo)
    from driftrec.experiments.commands import add_experiment_commands

    add_experiment_commands(sub, _integer)
    args = parser.parse_args(argv)
    try:
        return args.func(args, args.parser)
    except KeyboardInterrupt:  # Ctrl-C anywhere a command does not say more itself
        print(f"driftrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

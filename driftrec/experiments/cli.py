"""The ``driftrec`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _list(args: argparse.Namespace) -> int:
    from driftrec.envs import env_id
    from driftrec.simulators.scenarios import SCENARIOS, scenario_parameters

    print("Scenarios (gymnasium id, parameters with defaults):")
    for name in SCENARIOS:
        params = ", ".join(f"{k}={v!r}" for k, v in scenario_parameters(name).items())
        print(f"  {name:<14} {env_id(name):<26} {params or '-'}")
    print("Also: driftrec/RecDrift-v0 (pass scenario=... and any parameter).")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from driftrec.experiments.demo import POLICIES, format_table, run_demo, write_report

    params = {"at": args.at} if args.scenario == "sudden" else {}
    print(
        f"driftrec demo: scenario={args.scenario}, {args.envs} concurrent sessions, "
        f"{args.steps} steps ({args.envs * args.steps:,} requests per policy)"
    )
    result = run_demo(args.scenario, args.envs, args.steps, seed=args.seed, **params)
    print(format_table(result))
    paths = write_report(result, Path(args.out), f"driftrec demo: {args.scenario} drift")
    rate = result.requests_per_second
    print(f"{rate:,.0f} requests/s ({len(POLICIES)} policies, ground truth included)")
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="driftrec", description="Stress-test continual-learning recommenders under drift."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list scenarios and their gymnasium ids").set_defaults(func=_list)
    demo = sub.add_parser("demo", help="what drift does to a recommender that stops learning")
    demo.add_argument("--scenario", default="sudden")
    demo.add_argument("--envs", type=int, default=1024, help="concurrent sessions")
    demo.add_argument("--steps", type=int, default=200)
    demo.add_argument("--at", type=int, default=100_000, help="clock of the sudden shift")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="results/demo")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

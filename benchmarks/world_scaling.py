"""How the batched environment's cost grows with the world: build time, peak memory and time per
step from 10,000 users / 5,000 items to 5,000,000 users / 1,000,000 items.

Run: ``python benchmarks/world_scaling.py [--quick] [--sizes 10000x5000 ...]``.

Each size runs in a fresh process (this file again, with ``--one USERSxITEMS``), so that its
peak RSS is its own and no cache or allocator state carries over from a smaller world. In it:

- **build**: constructing ``RecDriftVectorEnv(4096, "stationary", num_users=..., num_items=...)``
  and its first ``reset(seed=0)``, which draws the world and starts the sessions (seconds);
- **peak RSS**: ``resource.getrusage`` ``ru_maxrss`` at the end (the process's high-water mark,
  imports included; the imports alone are shown beside it), and the world's own estimate of what
  drawing it needs (``WorldConfig.memory_estimate``);
- **ms/step**: after a few warm-up steps, the median (and the slowest and fastest) of 5 rounds
  of 10 steps of B=4096 random slates, in milliseconds per step;
- **single us/step**: the single environment's engine on the same world (a ``SessionBatch`` of
  one session: every request served alone, through the one-request path), the median of 5
  rounds of 1,000 random slates, in microseconds per step (``RecDriftEnv.step`` adds its
  gymnasium layer, a cost that does not depend on the world's size).

The "x smallest" columns are each size's figure over the smallest's: flat (1.0) means the
per-step cost does not grow with the world. Stationary scenario, default world settings
otherwise (100 candidates, slate of 10). One core: BLAS and OpenMP threads are pinned to 1
before NumPy loads. The largest world takes a few GB and tens of seconds to draw; progress goes
to stderr.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SIZES = ("10000x5000", "100000x50000", "1000000x200000", "5000000x1000000")
QUICK_SIZES = ("1000x500", "3000x1500")
NUM_ENVS = 4096
SCENARIO = "stationary"
RESULT = "RESULT "
"""Prefix of the one stdout line a ``--one`` process reports on (JSON after it)."""


@dataclass(frozen=True)
class Timing:
    """How long and how many: rounds of steps after warm-up steps."""

    rounds: int = 5
    steps: int = 10
    warmup: int = 3
    single_steps: int = 1_000


QUICK = Timing(rounds=1, steps=2, warmup=1, single_steps=20)


@dataclass(frozen=True)
class Measurement:
    """One world size, measured in its own process."""

    num_users: int
    num_items: int
    build_s: float
    rss_imports_mib: float
    peak_rss_mib: float
    estimate_mib: float
    ms_per_step: list[float]
    single_us_per_step: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms_per_step)

    @property
    def median_single_us(self) -> float:
        return statistics.median(self.single_us_per_step)


def parse_size(text: str) -> tuple[int, int]:
    """``"USERSxITEMS"`` (``"10000x5000"``, underscores allowed) as (users, items)."""
    try:
        users, items = (int(part.replace("_", "")) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a size is USERSxITEMS such as 10000x5000, got {text!r}"
        ) from None
    return users, items


def peak_rss_mib() -> float:
    """This process's peak resident set so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes
    on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure_one(num_users: int, num_items: int, timing: Timing) -> Measurement:
    """Build, then time, one world (in this process: call it in a fresh one)."""
    from driftrec.envs import RecDriftVectorEnv
    from driftrec.simulators import SessionBatch
    from driftrec.slates import empty_repeats

    if "torch" in sys.modules:  # not imported by the environment today; pinned if it ever is
        import torch

        torch.set_num_threads(1)
    rss_imports = peak_rss_mib()
    log = f"  {num_users:,} users / {num_items:,} items:"
    print(f"{log} building ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = RecDriftVectorEnv(NUM_ENVS, SCENARIO, num_users=num_users, num_items=num_items)
    env.reset(seed=0)
    build = time.perf_counter() - start
    print(f"{log} built in {build:.1f} s; stepping ...", file=sys.stderr, flush=True)
    cfg = env.config
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, cfg.num_candidates, (NUM_ENVS, cfg.slate_size)) for _ in range(4)]
    for i in range(timing.warmup):
        env.step(actions[i % 4])
    ms = []
    for _ in range(timing.rounds):
        start = time.perf_counter()
        for i in range(timing.steps):
            env.step(actions[i % 4])
        ms.append((time.perf_counter() - start) / timing.steps * 1e3)
    assert env.world is not None
    single = SessionBatch(env.world, 1)
    # Slates as the environments' action check makes them (repeats emptied), which the engine
    # then takes unchecked, as the environments have it do.
    actions = rng.integers(0, cfg.num_candidates, (timing.single_steps, cfg.slate_size))
    slates = empty_repeats(actions)[:, None, :]
    for slate in slates[: timing.warmup]:
        single.serve(slate, checked=True)
    us = []
    for _ in range(timing.rounds):
        start = time.perf_counter()
        for slate in slates:
            single.serve(slate, checked=True)
        us.append((time.perf_counter() - start) / len(slates) * 1e6)
    return Measurement(
        num_users=num_users,
        num_items=num_items,
        build_s=build,
        rss_imports_mib=rss_imports,
        peak_rss_mib=peak_rss_mib(),
        estimate_mib=cfg.memory_estimate() / 2**20,
        ms_per_step=ms,
        single_us_per_step=us,
    )


def measure_in_fresh_process(size: str, quick: bool) -> Measurement:
    """Run this file with ``--one size`` and read its result line."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", size]
    if quick:
        command.append("--quick")
    # stderr (progress, and any error) goes straight through; stdout carries the result.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {size} world failed (exit {done.returncode}); see above")
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT))
    return Measurement(**json.loads(line[len(RESULT) :]))


def format_table(results: list[Measurement], timing: Timing) -> str:
    base, single_base = results[0].median_ms, results[0].median_single_us
    lines = [
        f"{'users':>11} {'items':>11} {'build s':>8} {'peak RSS MiB':>13} {'(imports)':>10}"
        f" {'estimate MiB':>13} {'ms/step':>9} {'(slowest .. fastest)':>22} {'x smallest':>10}"
        f" {'single us/step':>15} {'x smallest':>10}",
    ]
    for r in results:
        spread = f"({max(r.ms_per_step):.1f} .. {min(r.ms_per_step):.1f})"
        lines.append(
            f"{r.num_users:>11,} {r.num_items:>11,} {r.build_s:>8.2f} {r.peak_rss_mib:>13,.0f}"
            f" {r.rss_imports_mib:>10,.0f} {r.estimate_mib:>13,.0f} {r.median_ms:>9.2f}"
            f" {spread:>22} {r.median_ms / base:>10.2f}"
            f" {r.median_single_us:>15.0f} {r.median_single_us / single_base:>10.2f}"
        )
    lines.append(
        f"B={NUM_ENVS}, scenario {SCENARIO!r}, ms/step the median of {timing.rounds} round(s) of "
        f"{timing.steps} steps after {timing.warmup} warm-up step(s); single us/step the median "
        f"of {timing.rounds} round(s) of {timing.single_steps} requests served alone on the same "
        "world; one process per size"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny worlds, one round (smoke test)")
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, help="USERSxITEMS each (default: the four sizes)"
    )
    parser.add_argument("--one", type=parse_size, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    timing = QUICK if args.quick else Timing()
    if args.one is not None:
        num_users, num_items = args.one
        result = measure_one(num_users, num_items, timing)
        print(RESULT + json.dumps(asdict(result)), flush=True)
        return
    sizes = args.sizes or [parse_size(s) for s in (QUICK_SIZES if args.quick else SIZES)]
    print(
        f"driftrec world scaling: one core (BLAS/OpenMP threads 1), numpy {np.__version__}, "
        f"B={NUM_ENVS}, each size in a fresh process",
        flush=True,
    )
    results = []
    for n, (users, items) in enumerate(sizes, 1):
        print(f"[{n}/{len(sizes)}] {users:,} users / {items:,} items", file=sys.stderr, flush=True)
        results.append(measure_in_fresh_process(f"{users}x{items}", args.quick))
    print(format_table(results, timing))


if __name__ == "__main__":
    main()

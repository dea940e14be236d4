"""Requests per second of the single and the batched environment (ground-truth info included),
against the bound of the gathers a batched step cannot avoid.

Run: ``python benchmarks/env_throughput.py [--quick] [--rounds 5] [--scenario sudden]``.

One core: BLAS and OpenMP threads are pinned to 1 before NumPy loads. Default world sizes
(10,000 users, 5,000 items, 100 candidates, slate of 10). It reports the single environment at
those sizes and at 10 candidates / slate of 2, the batched environment at B=1024 and B=4096, and
the gather-only bound at the same two B.

**The bound.** Whatever else a step does, it must read, for every request, its candidates'
latent vectors, observable features, qualities and topics, the user's boredom on those topics,
and the user's latent vector, observable features and click history (plus the candidates'
engagement values when the reward is engagement). The bound is the time NumPy's ``take`` (the
kernel the world uses) needs for exactly these gathers and nothing else: on the tables of a
drawn world, at their real sizes and dtypes, and on the users and candidates of that world's own
requests (collected from the environment, so the index distribution is the real one). At the
default sizes the tables total a few MB and sit in the L2/L3 caches: the bound is the gather
kernels' cost, not main memory's. Each gather is done the cheapest way the world does it: the
candidates' latent vectors, which the world consumes chunk by chunk
(``driftrec.simulators.scoring.UTILITY_CHUNK_BYTES``), are gathered in chunks of that size
(about 30% cheaper than one 26 MB gather at B=4096; ``--whole-gathers`` measures the bound with
one gather per table instead, the earlier definition, for comparison with older figures).

**The statistic.** Every figure, the bound's included, is the median of ``--rounds`` timed rounds
(default 5) of a fixed number of steps, with the slowest and fastest round beside it. The bound
at a given B runs the same number of rounds of the same number of steps as the environment at
that B, its rounds interleaved with the environment's (so that load coming and going on the
machine falls on both alike): the share of the bound is a ratio of like to like. The share is
also given round by round (each round of the environment over the bound's round right after
it), with its median and range: load that comes and goes moves a pair less than either
median, so that range is the share's honest uncertainty. Other load shows as spread: run it
on an idle machine all the same.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from timing import Round, timed_rounds  # noqa: E402

from driftrec.envs import RecDriftEnv, RecDriftVectorEnv  # noqa: E402
from driftrec.simulators import World  # noqa: E402
from driftrec.simulators.scoring import utility_chunk_rows  # noqa: E402

BATCH_SIZES = (1024, 4096)
INDEX_BATCHES = 4
"""Distinct batches of real requests the bound cycles through."""


@dataclass(frozen=True)
class Plan:
    """How much to time: rounds, and steps per round for each kind of run."""

    rounds: int
    single_steps: int
    batched_steps: dict[int, int]
    warmup: int


FULL = Plan(rounds=5, single_steps=1_000, batched_steps={1024: 100, 4096: 30}, warmup=3)
QUICK = Plan(rounds=1, single_steps=50, batched_steps={1024: 3, 4096: 2}, warmup=1)


@dataclass(frozen=True)
class Figure:
    """Requests per second of each timed round."""

    rates: list[float]
    steps: int

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def row(self, label: str, share: float | None = None) -> str:
        spread = f"({min(self.rates):,.0f} .. {max(self.rates):,.0f})"
        line = f"  {label:<30} {self.median:>12,.0f}  {spread:<26} {self.steps:>6}"
        return line + (f"  {share:>8.1%}" if share is not None else "")


def round_shares(env: Figure, bound: Figure) -> list[float]:
    """The environment's share of the bound round by round: each round of the environment over
    the round of the bound timed right after it (a load that comes and goes falls on both
    sides of a pair, so their ratio moves less than either)."""
    return [e / b for e, b in zip(env.rates, bound.rates, strict=True)]


def timed_figures(rounds: int, steps: int, *works: Round) -> list[Figure]:
    """Time ``rounds`` rounds of each of ``works`` (each round ``steps`` steps), interleaved."""
    return [Figure(r, steps) for r in timed_rounds(rounds, *works)]


def single_env(plan: Plan, scenario: str, **sizes: Any) -> Figure:
    """The single environment (one request per step), random slates, resets on termination."""
    env = RecDriftEnv(scenario, **sizes)
    env.reset(seed=0)
    cfg = env.config
    actions = np.random.default_rng(0).integers(
        0, cfg.num_candidates, (plan.single_steps, cfg.slate_size)
    )

    def one_round() -> int:
        for action in actions:
            _, _, terminated, _, _ = env.step(action)
            if terminated:
                env.reset()
        return len(actions)

    for action in actions[: plan.warmup]:
        if env.step(action)[2]:  # terminated: the next session starts at reset()
            env.reset()
    return timed_figures(plan.rounds, plan.single_steps, one_round)[0]


def batched_env(
    plan: Plan, scenario: str, num_envs: int
) -> tuple[Round, World, list[tuple[np.ndarray, np.ndarray]]]:
    """A round of the batched environment at B = ``num_envs`` (random slates), warmed up; also
    its world and a few batches of its real requests (users (B,), candidates (B, C)) for the
    bound."""
    env = RecDriftVectorEnv(num_envs, scenario)
    env.reset(seed=0)
    cfg = env.config
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, cfg.num_candidates, (num_envs, cfg.slate_size)) for _ in range(4)]
    requests = []
    for i in range(max(plan.warmup, INDEX_BATCHES)):
        pending = env.pending_requests()
        requests.append((pending.users.copy(), pending.candidates.copy()))
        env.step(actions[i % 4])
    steps = plan.batched_steps[num_envs]

    def one_round() -> int:
        for i in range(steps):
            env.step(actions[i % 4])
        return steps * num_envs

    assert env.world is not None
    return one_round, env.world, requests[:INDEX_BATCHES]


@dataclass(frozen=True)
class Gather:
    """One unavoidable gather: ``table`` indexed by candidate, by user, or by (user, topic)."""

    name: str
    table: np.ndarray
    by: str  # "candidate", "user" or "user x topic"

    def bytes_per_request(self, num_candidates: int) -> int:
        row = self.table.itemsize * int(np.prod(self.table.shape[1:], dtype=np.int64))
        if self.by == "user x topic":
            return num_candidates * self.table.itemsize
        return row * (num_candidates if self.by == "candidate" else 1)

    def per_request_shape(self, num_candidates: int) -> str:
        if self.by == "user x topic":
            return f"({num_candidates},)"
        inner = self.table.shape[1:]
        shape = (num_candidates, *inner) if self.by == "candidate" else inner
        return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def unavoidable_gathers(world: World) -> list[Gather]:
    """What every batched step must read from the world's tables, at their real dtypes (the
    candidates' topics come before the boredom, which is looked up by them)."""
    items, users = world.items, world.users
    gathers = [
        Gather("item latent vectors (phi)", items.phi, "candidate"),
        Gather("item features", items.features, "candidate"),
        Gather("item quality", items.quality, "candidate"),
        Gather("item topic", items.topic, "candidate"),
        Gather("user boredom on those topics", users.boredom, "user x topic"),
        Gather("user latent vector (theta)", users.theta, "user"),
        Gather("user features", users.features, "user"),
        Gather("user history", users.history, "user"),
    ]
    if world.config.reward == "engagement":
        gathers.append(Gather("item engagement", items.engagement, "candidate"))
    return gathers


def gather_bound(
    world: World,
    requests: list[tuple[np.ndarray, np.ndarray]],
    steps: int,
    whole: bool = False,
) -> Round:
    """A round of the gathers of :func:`unavoidable_gathers` alone, on real requests, warmed
    up; the latent vectors in the world's chunks unless ``whole``."""
    gathers = unavoidable_gathers(world)
    topic = world.items.topic
    phi = world.items.phi
    num_topics = world.users.boredom.shape[1]
    rows = utility_chunk_rows(world.config.num_candidates, phi)

    def one_step(users: np.ndarray, candidates: np.ndarray) -> None:
        topics = topic  # replaced by the candidates' topics, gathered before the boredom
        for g in gathers:
            if g.table is phi and not whole:
                for start in range(0, len(candidates), rows):
                    phi.take(candidates[start : start + rows], axis=0)
            elif g.by == "candidate":
                out = g.table.take(candidates, axis=0)
                if g.table is topic:
                    topics = out
            elif g.by == "user":
                g.table.take(users, axis=0)
            else:
                g.table.reshape(-1).take(users[:, None] * num_topics + topics)

    def one_round() -> int:
        for i in range(steps):
            one_step(*requests[i % len(requests)])
        return steps * len(requests[0][0])

    for batch in requests:
        one_step(*batch)
    return one_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round each (smoke test)")
    parser.add_argument("--rounds", type=int, help="timed rounds per figure (default 5)")
    parser.add_argument("--scenario", default="sudden", help="scenario preset (default sudden)")
    parser.add_argument(
        "--whole-gathers",
        action="store_true",
        help="the bound with one take per table (latent vectors not chunked): the earlier bound",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        plan = Plan(args.rounds, plan.single_steps, plan.batched_steps, plan.warmup)
    if "torch" in sys.modules:  # not imported by the environment today; pinned if it ever is
        import torch

        torch.set_num_threads(1)

    probe = RecDriftVectorEnv(1, args.scenario).config
    print(
        f"driftrec environment throughput: one core (BLAS/OpenMP threads 1), "
        f"scenario {args.scenario!r}, numpy {np.__version__}"
    )
    print(
        f"world: {probe.num_users:,} users, {probe.num_items:,} items, d={probe.latent_dim}, "
        f"C={probe.num_candidates}, k={probe.slate_size} unless stated; "
        f"median of {plan.rounds} round(s) of a fixed number of steps"
    )
    print()
    header = f"  {'':<30} {'requests/s':>12}  {'(slowest .. fastest)':<26} {'steps':>6}"
    print(header + f"  {'of bound':>8}")

    single = single_env(plan, args.scenario)
    print(single.row(f"single env (C={probe.num_candidates}, k={probe.slate_size})"))
    small = single_env(plan, args.scenario, num_candidates=10, slate_size=2)
    print(small.row("single env (C=10, k=2)"))

    batched: dict[int, Figure] = {}
    bounds: dict[int, Figure] = {}
    world = None
    for b in BATCH_SIZES:
        steps = plan.batched_steps[b]
        env_round, world, requests = batched_env(plan, args.scenario, b)
        bound_round = gather_bound(world, requests, steps, whole=args.whole_gathers)
        batched[b], bounds[b] = timed_figures(plan.rounds, steps, env_round, bound_round)
    for b in BATCH_SIZES:
        print(batched[b].row(f"batched env, B={b}", batched[b].median / bounds[b].median))
    for b in BATCH_SIZES:
        print(bounds[b].row(f"gather-only bound, B={b}"))

    assert world is not None
    c = world.config.num_candidates
    gathers = unavoidable_gathers(world)
    per_request = sum(g.bytes_per_request(c) for g in gathers)
    table_bytes = sum(g.table.nbytes for g in gathers)
    print()
    how = "one take per table" if args.whole_gathers else "latent vectors in the world's chunks"
    print(f"the bound: per request, NumPy take() ({how}) of")
    for g in gathers:
        print(
            f"  {g.name:<30} by {g.by:<13} {g.per_request_shape(c):<9} {g.table.dtype!s:<8}"
            f" {g.bytes_per_request(c):>6,} B   from a {g.table.nbytes / 2**20:,.2f} MiB table"
        )
    gbps = per_request * bounds[BATCH_SIZES[-1]].median / 1e9
    print(
        f"  = {per_request:,} bytes per request gathered from {table_bytes / 2**20:,.1f} MiB of "
        f"tables; {gbps:.1f} GB/s at B={BATCH_SIZES[-1]}"
    )
    print()
    shares = ", ".join(f"B={b}: {batched[b].median / bounds[b].median:.1%}" for b in BATCH_SIZES)
    print(f"the batched environment reaches {shares} of the gather-only bound (medians)")
    for b in BATCH_SIZES:
        paired = round_shares(batched[b], bounds[b])
        print(
            f"  B={b}, round by round: median {statistics.median(paired):.1%} "
            f"({min(paired):.1%} .. {max(paired):.1%} over {len(paired)} rounds)"
        )
    ratio = batched[BATCH_SIZES[-1]].median / single.median
    print(f"batched B={BATCH_SIZES[-1]} serves {ratio:,.0f}x the requests/s of the single env")


if __name__ == "__main__":
    main()

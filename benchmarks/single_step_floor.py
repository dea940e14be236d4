"""What one request of the single environment costs at the least in NumPy: the floor under the
single environment's steps per second.

Run: ``python benchmarks/single_step_floor.py [--quick] [--rounds 5]``.

One core: BLAS and OpenMP threads are pinned to 1 before NumPy loads. It measures, at default
sizes (100 candidates, slate of 10) and at 10 candidates / slate of 2:

- **the floor step**: the operations one request cannot do without, each in the cheapest form
  found, run back to back on a drawn world's own tables with the plainest Python glue:
  check the action, score the request's candidates (one matrix-vector product, quality,
  boredom), the slate's click probabilities and the click oracle's value (float64
  exponentials, Python sums), the click draw, the clicked user's boredom, history and the
  item's popularity, the next user (one uniform into the static activity table) and her
  candidates (the world's own one-request retrieval plan), the observation and the info.
  Nothing else: no drift processes, no sessions, no upkeep of the popular pool, no
  ``Requests``/``Response`` objects, no checks of the world's own values. Its numbers are thrown
  away: it is a measurement, not a simulator.
- each of those parts timed alone, to show where the floor's time goes;
- the real single environment (``RecDriftEnv``), its rounds interleaved with the floor's.

The floor is not a proof that no NumPy program can be faster, only the cheapest found: if
even it exceeds a target's time budget (66.7 us for 15k steps/s, 50 us for 20k), a NumPy
environment doing strictly more cannot meet that target, and what would is a compiled
one-request kernel (which ``driftrec.simulators``, NumPy only by design, does not have).
Figures are medians of ``--rounds`` rounds, with the fastest beside them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from timing import timed_rounds  # noqa: E402

from driftrec.envs import RecDriftEnv  # noqa: E402
from driftrec.simulators import World  # noqa: E402

TARGETS = {(100, 10): 15_000, (10, 2): 20_000}
"""Steps per second the issue asks of the single environment, by (candidates, slate size)."""


class FloorStep:
    """One request's indispensable operations on ``world`` (see the module docstring).

    Each ``part_*`` method is one step's part; ``step`` runs them in order and carries the
    pending request (user, candidates, utilities) from one call to the next.
    """

    def __init__(self, world: World) -> None:
        cfg = world.config
        self.k, self.c = cfg.slate_size, cfg.num_candidates
        self.decay = np.float32(cfg.boredom_decay)
        self.increment = np.float32(cfg.boredom_increment)
        self.scale = cfg.affinity_scale
        users, items = world.users, world.items
        self.theta, self.boredom, self.history = users.theta, users.boredom, users.history
        self.user_features = users.features
        self.phi, self.quality, self.topic = items.phi, items.quality, items.topic
        self.item_features = items.features
        self.popularity = world.retrieval.popularity_ref
        self.activity = world.activity._static_table()
        plan = world.retrieval._rows or world.retrieval._row_plan()
        self.draw_candidates = plan.draw
        self.shift = world.choice._shift
        self.rng = np.random.default_rng(0)
        self.user = 0
        self.candidates = np.array(self.draw_candidates(self.rng), dtype=np.int64)
        self.utilities = self.part_utilities()

    def part_action(self, action: np.ndarray) -> list[int]:
        slate = action.tolist()
        if len(set(slate)) != self.k or min(slate) < 0 or max(slate) >= self.c:
            raise ValueError("not a plain slate")
        return slate

    def part_utilities(self) -> np.ndarray:
        user, candidates = self.user, self.candidates
        util: np.ndarray = self.phi.take(candidates, axis=0).dot(self.theta[user] * self.scale)
        util += self.quality.take(candidates)
        util -= self.boredom[user].take(self.topic.take(candidates))
        return util

    def part_probabilities(self, slate: list[int]) -> list[float]:
        logits = np.add(self.utilities.take(slate), self.shift, dtype=np.float64)
        weights = np.exp(logits).tolist()
        total = sum(weights) + 1.0
        return [w / total for w in weights]

    def part_oracle(self) -> float:
        top = np.sort(self.utilities)[: -self.k - 1 : -1]
        weights = np.exp(np.add(top, self.shift, dtype=np.float64)).tolist()
        total = sum(weights) + 1.0
        return sum([w / total for w in weights])

    def part_click(self, probabilities: list[float]) -> int:
        u, total = self.rng.random(), 0.0
        for slot, p in enumerate(probabilities):
            total += p
            if u < total:
                return slot
        return -1

    def part_consume(self, slate: list[int], slot: int) -> int:
        user = self.user
        self.boredom[user] *= self.decay
        if slot < 0:
            return -1
        item = int(self.candidates[slate[slot]])
        self.boredom[user, self.topic[item]] += self.increment
        history = self.history[user]
        history[1:] = history[:-1]
        history[0] = item
        self.popularity[item] += 1.0
        return item

    def part_next_request(self) -> None:
        self.rng.random(2).tolist()  # the session's leave and churn draws
        table = self.activity
        self.user = int(np.searchsorted(table, self.rng.random() * table[-1], side="right"))
        self.candidates = np.array(self.draw_candidates(self.rng), dtype=np.int64)

    def part_observe(self, expected: float, oracle: float, slot: int, item: int) -> tuple:
        user, candidates = self.user, self.candidates
        obs = {
            "user_id": np.array([user]),
            "user_features": self.user_features[user].copy(),
            "history": self.history[user].copy(),
            "candidate_ids": candidates,
            "candidate_features": self.item_features.take(candidates, axis=0),
            "candidate_topics": self.topic.take(candidates),
        }
        info = {"expected_reward": expected, "oracle_expected_reward": oracle, "click_slot": slot}
        info["clicked_item"] = item
        return obs, float(slot >= 0), False, False, info

    def step(self, action: np.ndarray) -> tuple:
        slate = self.part_action(action)
        probabilities = self.part_probabilities(slate)
        oracle = self.part_oracle()
        slot = self.part_click(probabilities)
        item = self.part_consume(slate, slot)
        self.part_next_request()
        self.utilities = self.part_utilities()
        return self.part_observe(sum(probabilities), oracle, slot, item)


def parts(floor: FloorStep, action: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Each part of a floor step, as a call on the current request."""
    slate = floor.part_action(action)
    probabilities = floor.part_probabilities(slate)
    return {
        "check the action": lambda: floor.part_action(action),
        "score the candidates": floor.part_utilities,
        "slate click probabilities": lambda: floor.part_probabilities(slate),
        "click oracle's value": floor.part_oracle,
        "draw the click": lambda: floor.part_click(probabilities),
        "consume (a click)": lambda: floor.part_consume(slate, 0),
        "next user and candidates": floor.part_next_request,
        "observation and info": lambda: floor.part_observe(0.5, 0.6, 0, 1),
    }


def check_same_numbers(env: RecDriftEnv, floor: FloorStep, action: np.ndarray) -> None:
    """The floor computes what the world computes: for the environment's pending request (the
    floor's world is a snapshot taken with it), the same utilities, slate click probabilities
    and click oracle value, to the bit. Raises AssertionError otherwise."""
    world, pending = env.world, env.batch.pending_requests()
    assert world is not None
    floor.user, floor.candidates = int(pending.users[0]), pending.candidates[0]
    floor.utilities = floor.part_utilities()
    assert np.array_equal(floor.utilities, pending.utilities[0]), "utilities differ"
    slate = floor.part_action(action)
    probabilities = world.slot_probabilities(pending, np.array([slate]))[0].tolist()
    assert floor.part_probabilities(slate) == probabilities, "click probabilities differ"
    oracle = world.choice.oracle_value(pending.utilities, pending.values)[0]
    assert floor.part_oracle() == oracle, "oracle values differ"


def per_step_us(rates: list[float]) -> tuple[float, float]:
    """(median, fastest) microseconds per step of rounds' rates."""
    return 1e6 / statistics.median(rates), 1e6 / max(rates)


def measure(sizes: dict[str, int], rounds: int, steps: int) -> None:
    env = RecDriftEnv("sudden", **sizes)
    env.reset(seed=0)
    cfg = env.config
    floor = FloorStep(env.ground_truth_snapshot())  # its own copy of the world
    rng = np.random.default_rng(0)
    actions = [rng.choice(cfg.num_candidates, cfg.slate_size, replace=False) for _ in range(256)]
    check_same_numbers(env, floor, actions[0])

    def env_round() -> int:
        for i in range(steps):
            _, _, terminated, _, _ = env.step(actions[i % 256])
            if terminated:
                env.reset()
        return steps

    def floor_round() -> int:
        for i in range(steps):
            floor.step(actions[i % 256])
        return steps

    def part_round(call: Callable[[], Any]) -> Callable[[], int]:
        def one_round() -> int:
            for _ in range(steps):
                call()
            return steps

        return one_round

    env_round(), floor_round()  # warm up
    env_rates, floor_rates = timed_rounds(rounds, env_round, floor_round)
    part_calls = parts(floor, actions[0])
    part_rates = timed_rounds(rounds, *(part_round(call) for call in part_calls.values()))
    target = TARGETS.get((cfg.num_candidates, cfg.slate_size))
    print(f"\nC={cfg.num_candidates}, k={cfg.slate_size}: us per step, median (fastest)")
    print("  (checked: the floor's utilities, click probabilities, oracle value are the world's)")
    for name, rates in zip(part_calls, part_rates, strict=True):
        median, fastest = per_step_us(rates)
        print(f"  part: {name:<28} {median:7.1f}  ({fastest:.1f})")
    parts_sum = sum(per_step_us(rates)[0] for rates in part_rates)
    print(f"  {'sum of the parts':<34} {parts_sum:7.1f}")
    floor_us, floor_best = per_step_us(floor_rates)
    env_us, env_best = per_step_us(env_rates)
    print(f"  {'floor step, whole':<34} {floor_us:7.1f}  ({floor_best:.1f})")
    print(f"  {'RecDriftEnv.step':<34} {env_us:7.1f}  ({env_best:.1f})")
    print(f"  the environment takes {env_us / floor_us:.2f}x the floor step")
    if target:
        budget = 1e6 / target
        verdict = "within" if floor_us <= budget else "over"
        print(
            f"  target {target:,} steps/s = {budget:.1f} us per step: the floor alone is "
            f"{verdict} it ({1e6 / floor_us:,.0f} floor steps/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, for a smoke test")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds, steps = (1, 50) if args.quick else (args.rounds, 4_000)
    print(
        "driftrec single-step floor: one core (BLAS/OpenMP threads 1), scenario 'sudden', "
        f"numpy {np.__version__}"
    )
    measure({}, rounds, steps)
    measure({"num_candidates": 10, "slate_size": 2}, rounds, steps)


if __name__ == "__main__":
    main()

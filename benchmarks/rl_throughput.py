"""Environment steps per second of Stable-Baselines3 PPO on driftrec through the adapters: N
sessions of one batched world in one ``SB3VecEnv(N, adapters=True)`` against SB3's
``DummyVecEnv`` of N separate single environments, each wrapped with ``ScoreAction`` and
``CandidateObservation``.

Run: ``python benchmarks/rl_throughput.py [--quick] [--rounds 3] [--num-envs 32 128]
[--n-epochs 10] [--batch-size 128]`` (the last two: PPO's update budget, to measure your own).

One core: BLAS and OpenMP threads are pinned to 1 before NumPy and torch load, and torch runs
one thread. World: 500 users, 300 items, 10 candidates, slate of 3 (the example's sizes); policy
and PPO settings are those of ``examples/sb3_ppo.py`` (``CandidateScoringPolicy``, 16 steps
per session per iteration, minibatches of 128, 10 epochs).

Two figures per vector environment:

- **rollouts**: PPO's data collection alone (the policy acts on every observation, the
  environment steps, the rollout buffer and advantages are filled; the gradient updates are
  skipped): where the environment's cost shows.
- **training**: the whole ``PPO.learn`` (rollouts and the 10 epochs of updates per iteration).
  The updates cost the same for both vector environments, so this ratio is smaller.

Every figure is the median of ``--rounds`` timed rounds (default 3) of a fixed number of PPO
iterations, with the slowest and fastest round beside it; the rounds of the two vector
environments are interleaved, so that load coming and going on the machine falls on both alike.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv  # noqa: E402
from timing import Round, timed_rounds  # noqa: E402

from driftrec.envs import RecDriftEnv  # noqa: E402
from driftrec.rl.adapters import CandidateObservation, ScoreAction  # noqa: E402
from driftrec.rl.sb3 import SB3VecEnv  # noqa: E402
from driftrec.rl.sb3_policy import CandidateScoringPolicy  # noqa: E402

SIZES = dict(num_users=500, num_items=300, num_candidates=10, slate_size=3)
PPO_SETTINGS = dict(n_steps=16, batch_size=128, n_epochs=10, learning_rate=1e-3, gamma=0.0)


class RolloutsOnly(PPO):
    """PPO without its gradient updates: ``learn`` only collects rollouts."""

    def train(self) -> None:
        """No update: the rollout buffer is filled and dropped."""


@dataclass(frozen=True)
class Figure:
    """Environment steps per second of each timed round."""

    rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def row(self, label: str) -> str:
        spread = f"({min(self.rates):,.0f} .. {max(self.rates):,.0f})"
        return f"  {label:<34} {self.median:>10,.0f}  {spread}"


def batched(num_envs: int) -> VecEnv:
    """N sessions of one world, through the adapters."""
    return SB3VecEnv(num_envs, "stationary", adapters=True, **SIZES)


def separate(num_envs: int) -> VecEnv:
    """N single environments (N worlds), each wrapped with the adapters."""

    def make() -> CandidateObservation:
        return CandidateObservation(ScoreAction(RecDriftEnv("stationary", **SIZES)))

    return DummyVecEnv([make] * num_envs)


def ppo_round(algo: type[PPO], venv: VecEnv, iterations: int, ppo: dict[str, Any]) -> Round:
    """A round of ``iterations`` PPO iterations with settings ``ppo`` on ``venv`` (warmed up by
    one iteration); returns the environment steps done."""
    venv.seed(0)
    per_iteration = venv.num_envs * ppo["n_steps"]
    settings = {**ppo, "batch_size": min(ppo["batch_size"], per_iteration)}
    model = algo(
        CandidateScoringPolicy,
        venv,
        seed=0,
        device="cpu",
        **settings,  # type: ignore[arg-type]
    )
    model.learn(per_iteration)

    def one_round() -> int:
        before = model.num_timesteps
        model.learn(iterations * per_iteration, reset_num_timesteps=False)
        return model.num_timesteps - before

    return one_round


def timed(rounds: int, *works: Round) -> list[Figure]:
    """``rounds`` rounds of each of ``works``, interleaved round by round."""
    return [Figure(r) for r in timed_rounds(rounds, *works)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--rounds", type=int, help="timed rounds per figure (default 3)")
    parser.add_argument("--num-envs", type=int, nargs="+", help="N (default 32 128)")
    parser.add_argument(
        "--n-epochs",
        type=int,
        help=f"PPO epochs per iteration (default {PPO_SETTINGS['n_epochs']})",
    )
    parser.add_argument(
        "--batch-size", type=int, help=f"PPO minibatch (default {PPO_SETTINGS['batch_size']})"
    )
    args = parser.parse_args()
    ppo = dict(PPO_SETTINGS)
    for key in ("n_epochs", "batch_size"):
        if getattr(args, key) is not None:
            if getattr(args, key) < 1:
                parser.error(f"--{key.replace('_', '-')} must be >= 1")
            ppo[key] = getattr(args, key)
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = args.num_envs or ([4] if args.quick else [32, 128])
    torch.set_num_threads(1)

    print(
        f"SB3 PPO throughput on driftrec through the adapters: one core (torch threads "
        f"{torch.get_num_threads()}, BLAS/OpenMP 1), torch {torch.__version__}"
    )
    print(
        f"world: {SIZES['num_users']} users, {SIZES['num_items']} items, "
        f"C={SIZES['num_candidates']}, k={SIZES['slate_size']}; PPO {ppo}; "
        f"median of {rounds} round(s)"
    )
    print()
    print(f"  {'':<34} {'env steps/s':>10}  (slowest .. fastest)")
    for n in sizes:
        # a round is a fixed number of steps (about 4,096) whatever N
        iterations = 1 if args.quick else max(1, 4096 // (n * ppo["n_steps"]))
        ratios = []
        for label, algo in (("rollouts", RolloutsOnly), ("training", PPO)):
            one, many = timed(
                rounds,
                ppo_round(algo, batched(n), iterations, ppo),
                ppo_round(algo, separate(n), iterations, ppo),
            )
            print(one.row(f"{label}: SB3VecEnv, N={n}"))
            print(many.row(f"{label}: DummyVecEnv of {n} envs"))
            ratios.append(f"{label} {one.median / many.median:.1f}x")
        print(f"  batched / separate at N={n}: " + ", ".join(ratios))


if __name__ == "__main__":
    main()

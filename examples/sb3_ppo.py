"""PPO (Stable-Baselines3) on driftrec with a shared per-candidate scoring policy.

Run: ``python examples/sb3_ppo.py [--steps 100000] [--seed 0] [--num-envs 32] [--quiet]``.

The sessions of one world run in one ``SB3VecEnv`` with ``adapters=True``: the policy sees one
row per candidate (``driftrec.rl.adapters``) and answers a score per candidate, whose top-k is
the slate; ``CandidateScoringPolicy`` scores every candidate with the same network. After each
PPO iteration (one rollout of ``num_envs * n_steps`` requests, then the update) it prints the
iteration's **normalised reward**: the sum of ``info["expected_reward"]`` over the rollout's
requests divided by the sum of ``info["oracle_expected_reward"]`` (ground truth, read for the
report only; the agent learns from observed clicks). Random slates score about 0.47 at the
default sizes, the exact myopic oracle 1.

One core: BLAS/OpenMP threads and torch's threads are pinned to 1.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, fields  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper  # noqa: E402

from driftrec.rl.normalised_reward import reward_sums  # noqa: E402
from driftrec.rl.sb3 import SB3VecEnv  # noqa: E402
from driftrec.rl.sb3_policy import CandidateScoringPolicy  # noqa: E402


@dataclass(frozen=True)
class Args:
    """The run's settings (each is a command-line option: ``--num-envs``, ...)."""

    steps: int = 100_000
    """environment steps (requests served) in total"""
    seed: int = 0
    """seed of the world and of the agent"""
    num_envs: int = 32
    """concurrent sessions of the one world"""
    scenario: str = "stationary"
    """scenario preset"""
    num_users: int = 500
    """users in the world"""
    num_items: int = 300
    """items in the catalogue"""
    num_candidates: int = 10
    """candidates per request (C)"""
    slate_size: int = 3
    """slate size (k)"""
    n_steps: int = 16
    """rollout length per session and iteration (an iteration is num_envs * n_steps requests)"""
    batch_size: int = 128
    """PPO minibatch size"""
    n_epochs: int = 10
    """PPO epochs per iteration"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    gamma: float = 0.0
    """discount: 0 (the normalised reward is myopic, and no horizon has the lowest variance)"""
    gae_lambda: float = 0.9
    """GAE lambda"""
    ent_coef: float = 0.0
    """entropy bonus"""
    hidden: int = 64
    """width of the policy's embeddings and layers"""
    log_std_init: float = -1.0
    """initial log standard deviation of the scores"""
    quiet: bool = False
    """print only the per-iteration figures and the summary (no header)"""


class RewardRatio(VecEnvWrapper):
    """Sums ``expected_reward`` and ``oracle_expected_reward`` of every served request since the
    last :meth:`take` (the info of ``SB3VecEnv``; nothing of it reaches the agent)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.expected = 0.0
        self.oracle = 0.0
        self.steps = 0

    def reset(self):  # type: ignore[no-untyped-def]
        return self.venv.reset()

    def step_wait(self):  # type: ignore[no-untyped-def]
        obs, reward, dones, infos = self.venv.step_wait()
        expected, oracle = reward_sums(infos)
        self.expected += expected
        self.oracle += oracle
        self.steps += len(infos)
        return obs, reward, dones, infos

    def take(self) -> tuple[float, int]:
        """The normalised reward since the last call and the number of requests; resets."""
        ratio = self.expected / self.oracle if self.oracle > 0 else float("nan")
        steps, self.expected, self.oracle, self.steps = self.steps, 0.0, 0.0, 0
        return ratio, steps


class PrintIteration(BaseCallback):
    """Prints each iteration's normalised reward when its rollout ends."""

    def __init__(self, ratio: RewardRatio) -> None:
        super().__init__()
        self.ratio = ratio
        self.iteration = 0
        self.history: list[tuple[int, float]] = []
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        value, _ = self.ratio.take()
        self.iteration += 1
        self.history.append((self.num_timesteps, value))
        elapsed = time.perf_counter() - self.start
        print(
            f"iteration {self.iteration:>3}  steps {self.num_timesteps:>7,}  "
            f"normalised reward {value:.3f}  ({elapsed:.0f} s)",
            flush=True,
        )


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=f.__doc__)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=f.default, help=f"default {f.default}")
    args = Args(**vars(parser.parse_args(argv)))
    # what PPO would take and train on without a word (the world checks its own settings)
    for name in ("learning_rate", "gamma", "gae_lambda", "ent_coef", "log_std_init"):
        if not math.isfinite(getattr(args, name)):
            parser.error(f"--{name.replace('_', '-')} must be finite, got {getattr(args, name)}")
    for name in ("gamma", "gae_lambda"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    if args.ent_coef < 0:
        parser.error(f"--ent-coef must be at least 0, got {args.ent_coef}")
    for name in ("learning_rate", "n_steps", "batch_size", "n_epochs", "hidden"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    iteration = args.num_envs * args.n_steps
    if args.steps < iteration:
        parser.error(
            f"--steps must be at least one PPO iteration, --num-envs x --n-steps = {iteration} "
            f"requests; got {args.steps}"
        )
    return args


def main(argv: list[str] | None = None) -> list[tuple[int, float]]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    venv = SB3VecEnv(
        args.num_envs,
        args.scenario,
        adapters=True,
        num_users=args.num_users,
        num_items=args.num_items,
        num_candidates=args.num_candidates,
        slate_size=args.slate_size,
    )
    venv.seed(args.seed)
    ratio = RewardRatio(venv)
    if not args.quiet:
        print("PPO + CandidateScoringPolicy on driftrec:", asdict(args))
    model = PPO(
        CandidateScoringPolicy,
        ratio,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        ent_coef=args.ent_coef,
        policy_kwargs={"hidden": args.hidden, "log_std_init": args.log_std_init},
        seed=args.seed,
        device="cpu",
    )
    callback = PrintIteration(ratio)
    model.learn(total_timesteps=args.steps, callback=callback)
    history = callback.history
    print(summary(history, SMOOTHING))
    return history


SMOOTHING = 5
"""Iterations in the moving mean of the summary (one iteration's figure is noisy: about +-0.02
at 512 requests)."""


def summary(history: list[tuple[int, float]], window: int, target: float = 0.65) -> str:
    """A line: the mean of the last ``window`` iterations, and the steps at which ``target`` was
    first reached by one iteration and by the moving mean of ``window`` iterations."""
    values = np.array([value for _, value in history])
    steps = [s for s, _ in history]
    enough = len(values) >= window
    moving = np.convolve(values, np.ones(window) / window, mode="valid") if enough else []
    first = next((s for s, v in zip(steps, values, strict=True) if v >= target), None)
    first_mean = next(
        (s for s, v in zip(steps[window - 1 :], moving, strict=True) if v >= target), None
    )

    def at(s: int | None) -> str:
        return f"{s:,} steps" if s is not None else "not reached"

    last = values[-window:]
    return (
        f"final normalised reward {last.mean():.3f} (mean of the last {len(last)} iterations); "
        f"{target} first reached at {at(first)} (one iteration), {at(first_mean)} (moving mean "
        f"of {window})"
    )


if __name__ == "__main__":
    main()

"""Requests per second of the single and the batched environment, ground-truth info included.

Run: ``python benchmarks/env_throughput.py [--quick]``. One core: BLAS and OpenMP threads are
pinned to 1 before NumPy loads. Default sizes: 10,000 users, 5,000 items, 100 candidates, slate
of 10. Prints the figures, and an estimate of the memory-traffic bound: every request gathers
its candidates' latent vectors (C x d float32) and observable features (C x f float32) from
tables that do not fit in cache, plus the per-candidate scalars; the bound is the time the
gather kernels alone take for that data. Each figure is the best of three timed windows (the
machine may be shared); run it on an idle machine all the same.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from driftrec.envs import RecDriftEnv, RecDriftVectorEnv  # noqa: E402


def best_of(windows: int, measure) -> float:
    return max(measure() for _ in range(windows))


def single_env_rate(seconds: float) -> float:
    env = RecDriftEnv("sudden")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 100, (200, 10))

    def window() -> float:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for a in actions:
                _, _, terminated, _, _ = env.step(a)
                if terminated:
                    env.reset()
            n += len(actions)
        return n / (time.perf_counter() - start)

    return best_of(3, window)


def batched_rate(num_envs: int, seconds: float) -> float:
    env = RecDriftVectorEnv(num_envs, "sudden")
    env.reset(seed=0)
    actions = [np.random.default_rng(i).integers(0, 100, (num_envs, 10)) for i in range(4)]
    env.step(actions[0])

    def window() -> float:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or steps < 5:
            env.step(actions[steps % 4])
            steps += 1
        return steps * num_envs / (time.perf_counter() - start)

    return best_of(3, window)


def gather_bound(num_envs: int = 4096) -> tuple[float, float]:
    """Requests/s if the world did nothing but its unavoidable gathers (and their bytes)."""
    rng = np.random.default_rng(0)
    c, d, f = 100, 16, 8
    phi = rng.standard_normal((5_000, d)).astype(np.float32)
    feats = rng.standard_normal((5_000, f)).astype(np.float32)
    scalars = rng.standard_normal(5_000).astype(np.float32)
    idx = rng.integers(0, 5_000, (num_envs, c))
    bytes_per_request = c * (d * 4 + f * 4 + 3 * 4 + 8)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        phi.take(idx, axis=0)
        feats.take(idx, axis=0)
        for _ in range(3):  # quality, topic, boredom
            scalars.take(idx)
        times.append(time.perf_counter() - start)
    elapsed = sorted(times)[len(times) // 2]  # the median: a steady bound, not a lucky one
    return num_envs / elapsed, bytes_per_request * num_envs / elapsed / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 2.0
    print("driftrec environment throughput (one core; 10,000 users, 5,000 items, C=100, k=10)")
    single = single_env_rate(seconds)
    print(f"  single env (RecDriftEnv)          {single:12,.0f} requests/s")
    rates = {}
    for b in (1024, 4096):
        rates[b] = batched_rate(b, seconds)
        print(
            f"  batched env, B={b:<5}             {rates[b]:12,.0f} requests/s"
            f"   ({rates[b] / single:,.0f}x single)"
        )
    bound, gbps = gather_bound()
    print(
        f"  gather-only bound, B=4096         {bound:12,.0f} requests/s"
        f"   ({gbps:.1f} GB/s of candidate data)"
    )
    print(f"  batched B=4096 reaches {rates[4096] / bound:.0%} of the gather-only bound")


if __name__ == "__main__":
    main()

"""An 8-cell grid run three ways on this machine: sequentially in-process, on Ray tasks (the
runner driftrec uses), and on Ray Tune (a ``Tuner`` over the same grid), each from a cold
start of Ray. Prints wall times and speed-ups; figures, not assertions.

    python benchmarks/ray_scaling.py            # 8 cells of 100,000 requests
    python benchmarks/ray_scaling.py --quick    # 8 small cells (a smoke run)
    python benchmarks/ray_scaling.py --spec driftrec/configs/quickstart.yaml --skip-tune
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from driftrec.experiments.cell import run_cell
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.runners import init_ray, run_cells
from driftrec.experiments.spec import load_spec


def grid(quick: bool) -> dict:
    horizon = 6_000 if quick else 100_000
    return {
        "name": "scaling",
        "horizon": horizon,
        "num_envs": 200 if quick else 250,
        "seeds": [0, 1],
        "world": {"num_users": 2_000, "num_items": 800, "num_candidates": 30, "slate_size": 5},
        "scenarios": [
            {"name": "sudden", "params": {"at": horizon // 2}},
            {"name": "recurring", "params": {"period": horizon // 3}},
        ],
        "agents": [{"name": "online"}, {"name": "replay"}],
        "warm_start": {"requests": 2_000},
        "evaluation": {"window": horizon // 8, "every": horizon // 4, "probe_size": 200},
    }


def timed_runner(spec, runner: str) -> float:
    out = Path(tempfile.mkdtemp(prefix=f"driftrec-{runner}-"))
    try:
        began = time.perf_counter()
        directory = ResultsDir(out)
        directory.prepare(spec)
        run_cells(spec, directory, runner=runner, progress=False)
        return time.perf_counter() - began
    finally:
        shutil.rmtree(out, ignore_errors=True)


def timed_tune(spec) -> float:
    import ray
    from ray import tune

    cells = {c.id: c for c in spec.cells()}

    def trainable(config: dict) -> dict:
        result = run_cell(cells[config["cell"]])
        return {"seconds": result.seconds}

    began = time.perf_counter()
    storage = tempfile.mkdtemp(prefix="driftrec-tune-")
    try:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"cell": tune.grid_search(list(cells))},
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--spec", default=None, help="time this spec's grid instead")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    spec = load_spec(args.spec or grid(args.quick))
    import ray

    print(f"{len(spec.cells())} cells of {spec.horizon:,} requests, {os.cpu_count()} CPUs")
    local = timed_runner(spec, "local")
    print(f"in-process, sequential:        {local:6.1f} s")
    began = time.perf_counter()
    init_ray(num_cpus=os.cpu_count())
    start = time.perf_counter() - began
    on_ray = timed_runner(spec, "ray") + start
    ray.shutdown()
    print(
        f"Ray tasks (incl. {start:4.1f} s start): {on_ray:6.1f} s   speed-up {local / on_ray:.2f}x"
    )
    if not args.skip_tune:
        tune_s = timed_tune(spec)
        print(f"Ray Tune (incl. start):        {tune_s:6.1f} s   speed-up {local / tune_s:.2f}x")


if __name__ == "__main__":
    main()

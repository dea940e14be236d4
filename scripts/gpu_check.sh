#!/usr/bin/env bash
# The GPU check of the experiments (issue 8, criterion 9), as one short script for a machine with
# a CUDA GPU: (1) a cell gives the same metrics on CUDA as on the CPU, within a stated
# tolerance; (2) requests/s of a cell's rollout with the model on CUDA, for mf and sasrec at
# B = 4096. Run from the repository root after `make setup` (or with any Python that has
# driftrec and a CUDA build of torch): bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" - <<'PYEOF'
import time

import numpy as np
import torch

from driftrec.agents import Transition, make_agent
from driftrec.envs import RecDriftVectorEnv
from driftrec.experiments.cell import run_cell
from driftrec.experiments.spec import load_spec
from driftrec.experiments.summary import build_tables

assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)

spec = {
    "name": "gpu-check", "horizon": 20_000, "num_envs": 500, "seeds": [0],
    "world": {"num_users": 2_000, "num_items": 800, "num_candidates": 30, "slate_size": 5},
    "scenarios": [{"name": "sudden", "params": {"at": 10_000}}],
    "agents": [{"name": "online"}], "warm_start": {"requests": 2_000},
    "evaluation": {"window": 2_000, "every": 5_000, "probe_size": 200},
}
TOL = 0.02  # float32 kernels differ between CPU and CUDA; trajectories diverge slowly
rows = {}
for gpus in (0, 1):
    s = load_spec({**spec, "resources": {"num_gpus": gpus}})
    result = run_cell(s.cells()[0])
    rows[gpus] = build_tables([result], s).cells.iloc[0]
for metric in ("reward", "final_reward", "acc", "ndcg_at_k"):
    cpu, gpu = rows[0][metric], rows[1][metric]
    status = "ok" if abs(cpu - gpu) <= TOL else "DIFFERS"
    print(f"{metric:>13}: cpu {cpu:.4f}  cuda {gpu:.4f}  |diff| {abs(cpu - gpu):.4f} <= {TOL}? {status}")

for model in ("mf", "sasrec"):
    env = RecDriftVectorEnv(4096)
    agent = make_agent("online", env, model=model, seed=0, device="cuda")
    obs, _ = env.reset(seed=0)
    for _ in range(3):  # warm up CUDA
        action = agent.act(obs)
        obs, *_ = env.step(action)
    torch.cuda.synchronize()
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < 10:
        action = agent.act(obs)
        next_obs, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, term, trunc, info))
        obs, steps = next_obs, steps + 1
    torch.cuda.synchronize()
    rate = steps * 4096 / (time.perf_counter() - began)
    print(f"{model:>7} on CUDA, B=4096, act + learn + environment: {rate:,.0f} requests/s")
PYEOF

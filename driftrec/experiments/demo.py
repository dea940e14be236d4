"""The environment demo: what a drift does to a recommender that stops learning, and to one
that keeps learning.

Four policies share one drifting world (the batched environment, ``num_envs`` sessions):

- ``oracle``: the exact best slate, through the environment's ground-truth channel;
- ``online MF``: matrix factorisation learning online from the clicks it observes (the
  ``online`` agent preset), starting from nothing;
- ``frozen oracle``: the best slate *for the world as it was at t=0* (a perfect model that never
  updates: everything it loses after the drift is what drift costs a static recommender);
- ``random``: uniformly random slates.

It reports the normalised reward (expected reward / oracle's) per window with the drift events
marked, as a table, a CSV and a PNG plot, and each policy's own requests per second.

Building the environments (:func:`make_demo_envs`) validates every setting and is separate from
rolling them (:func:`roll_demo`), so that a caller such as the command line can refuse bad
settings before any work starts.
"""

from __future__ import annotations

import csv
import numbers
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driftrec.envs.vector import RecDriftVectorEnv

POLICIES = ("oracle", "online MF", "frozen oracle", "random")
REPORT_FILES = ("demo.csv", "demo.png")
WINDOW = 10
"""Steps per reported window (the reward is averaged over each window)."""
MIN_WINDOWS = 2
"""Fewer windows than this cannot show a change: a run needs ``MIN_WINDOWS * window`` steps."""


@dataclass(frozen=True)
class DemoResult:
    """Window centre clocks (w,), normalised reward per policy (w,), the drift events, and
    each policy's own requests per second (its ``act``, environment ``step`` and ``observe``,
    timed apart from the other policies')."""

    t: np.ndarray
    normalised: dict[str, np.ndarray]
    events: list
    requests_per_second: dict[str, float]


def reported_steps(steps: int, window: int = WINDOW) -> int:
    """How many of ``steps`` the report covers: whole windows only (a trailing partial window
    is rolled but not reported)."""
    return window * (steps // window)


def drift_clock_range(num_envs: int, steps: int, window: int = WINDOW) -> tuple[int, int]:
    """The clocks ``(first, last)``, both included, at which a drift shows in the report.

    Step ``s`` serves the requests at clocks ``[s * num_envs, (s + 1) * num_envs)``, and a
    drift scheduled at clock ``t`` fires when the clock moves past it, after the batch that holds
    ``t - 1``: it changes the steps ``s >= t / num_envs``. The last reported step is
    ``reported_steps(steps, window) - 1``, so a drift after ``last`` changes nothing reported.
    Drift clocks start at 1 (one at 0 never fires: the clock starts there).

    Example:
        >>> drift_clock_range(num_envs=32, steps=20)
        (1, 608)
    """
    return 1, (reported_steps(steps, window) - 1) * num_envs


def make_demo_envs(
    scenario: str = "sudden", num_envs: int = 1024, **params
) -> dict[str, RecDriftVectorEnv]:
    """One batched environment per policy, all with the same scenario and settings.

    Raises:
        ValueError, TypeError: a bad scenario, ``num_envs`` or parameter (the environment's
            message names it).
    """
    return {name: RecDriftVectorEnv(num_envs, scenario, **params) for name in POLICIES}


def run_demo(
    scenario: str = "sudden",
    num_envs: int = 1024,
    steps: int = 200,
    window: int = WINDOW,
    seed: int = 0,
    **params,
) -> DemoResult:
    """Roll the policies through ``steps`` batched steps (one environment per policy, same
    seed, so they see the same drift at the same clock)."""
    _check_run_length(steps, window)
    return roll_demo(make_demo_envs(scenario, num_envs, **params), steps, window, seed)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_run_length(steps: int, window: int) -> None:
    if not _is_integer(window) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    minimum = MIN_WINDOWS * window
    if not _is_integer(steps) or steps < minimum:
        raise ValueError(
            f"steps must be an integer >= {minimum} (the reward is averaged over windows of "
            f"{window} steps and {MIN_WINDOWS} windows are the fewest that show a change), "
            f"got {steps!r}"
        )


def roll_demo(
    envs: dict[str, RecDriftVectorEnv], steps: int = 200, window: int = WINDOW, seed: int = 0
) -> DemoResult:
    """Roll the environments of :func:`make_demo_envs` (one per policy) through ``steps``
    batched steps; all are reset with ``seed``, so they see the same drift at the same clock."""
    _check_run_length(steps, window)
    # Imported here, not at the top: torch takes seconds to import, and the command line
    # validates its arguments through this module before it needs an agent.
    from driftrec.agents import Transition, make_agent

    num_envs = envs["random"].num_envs
    obs = {name: env.reset(seed=seed)[0] for name, env in envs.items()}
    agents = {
        "oracle": make_agent("oracle", envs["oracle"]),
        "online MF": make_agent("online", envs["online MF"], model="mf", seed=seed),
        # the world as it is now, at t=0, frozen: a perfect model that never updates
        "frozen oracle": make_agent("frozen_oracle", envs["frozen oracle"]),
        "random": make_agent("random", envs["random"], seed=seed),
    }
    rewards = {name: np.zeros(steps) for name in POLICIES}
    events = []
    elapsed = dict.fromkeys(POLICIES, 0.0)
    for step in range(steps):
        for name, env in envs.items():
            agent = agents[name]
            start = time.perf_counter()
            action = agent.act(obs[name])
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(
                Transition(obs[name], action, reward, next_obs, terminated, truncated, info)
            )
            elapsed[name] += time.perf_counter() - start
            obs[name] = next_obs
            rewards[name][step] = np.mean(info["expected_reward"] / info["oracle_expected_reward"])
            if name == "oracle":
                events.extend(info["drift_events"][0])
    n_windows = steps // window
    t = (np.arange(n_windows) + 0.5) * window * num_envs
    normalised = {
        name: r[: n_windows * window].reshape(n_windows, window).mean(axis=1)
        for name, r in rewards.items()
    }
    rates = {name: steps * num_envs / elapsed[name] for name in POLICIES}
    return DemoResult(t, normalised, events, rates)


def write_report(result: DemoResult, out: Path, title: str) -> list[Path]:
    """Write ``demo.csv`` and ``demo.png`` under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = (out / name for name in REPORT_FILES)
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t", *POLICIES])
        for i, t in enumerate(result.t):
            writer.writerow([int(t), *(f"{result.normalised[p][i]:.4f}" for p in POLICIES)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    colours = {
        "oracle": "#1b9e77",
        "online MF": "#e7298a",
        "frozen oracle": "#d95f02",
        "random": "#7570b3",
    }
    for name in POLICIES:
        ax.plot(result.t, result.normalised[name], label=name, color=colours[name], lw=2)
    for event in result.events:
        ax.axvline(event.t, color="0.3", ls="--", lw=1)
        ax.annotate(
            event.kind,
            (event.t, 0.03),
            rotation=90,
            fontsize=8,
            color="0.3",
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set(
        xlabel="world clock (requests)",
        ylabel="normalised reward (expected / oracle)",
        title=title,
        ylim=(0, 1.05),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", frameon=False)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return [csv_path, png_path]


def format_table(result: DemoResult, every: int = 2) -> str:
    """A plain-text table of the windows (every ``every``-th row) and the events."""
    lines = [f"{'t':>9}  " + "  ".join(f"{p:>13}" for p in POLICIES)]
    for i in range(0, len(result.t), every):
        row = "  ".join(f"{result.normalised[p][i]:13.3f}" for p in POLICIES)
        lines.append(f"{int(result.t[i]):>9}  {row}")
    for event in result.events:
        lines.append(f"event: t={event.t} {event.kind} magnitude={event.magnitude:g}")
    return "\n".join(lines)


def format_rates(result: DemoResult) -> str:
    """Each policy's requests per second, one line each."""
    lines = ["requests/s per policy (its act + env step + observe, ground truth included):"]
    for name in POLICIES:
        lines.append(f"  {name:<13} {result.requests_per_second[name]:>12,.0f}")
    return "\n".join(lines)

"""Interleaved timing for the benchmarks: each timed round of every measured work runs in turn,
so that load coming and going on the machine falls on all of them alike."""

from __future__ import annotations

import time
from collections.abc import Callable

Round = Callable[[], int]
"""One timed round: does a fixed amount of work, returns how many steps or requests it did."""


def timed_rounds(rounds: int, *works: Round) -> list[list[float]]:
    """Per work, the rate (units per second) of each of ``rounds`` rounds, interleaved round by
    round."""
    rates: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for work, out in zip(works, rates, strict=True):
            start = time.perf_counter()
            done = work()
            out.append(done / (time.perf_counter() - start))
    return rates

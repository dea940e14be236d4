"""The contract every drift process passes, as River checks every estimator
(``river.checks``): one function, run by the tests over every process and every scenario
preset, and by anyone who writes a new kind of drift.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import numpy as np

from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift.base import DriftEvent, DriftProcess

if TYPE_CHECKING:
    from driftrec.simulators.world import World

__all__ = ["check_drift_process"]

CHECK_CONFIG = WorldConfig(
    num_users=600,
    num_items=500,
    num_candidates=20,
    slate_size=4,
    initial_item_fraction=0.6,
    arrival_horizon=3_000,
)
"""A small world the contract runs in (the default of :func:`check_drift_process`)."""


def _state(world: World) -> dict[str, np.ndarray]:
    """Every array of the world's users and items, by ``"users.<field>"`` / ``"items.<field>"``."""
    state = {}
    for prefix, part in (("users", world.users), ("items", world.items)):
        for name, value in vars(part).items():
            if isinstance(value, np.ndarray):
                state[f"{prefix}.{name}"] = value.copy()
    return state


def _changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> set[str]:
    return {
        key
        for key in before
        if before[key].shape != after[key].shape or not np.array_equal(before[key], after[key])
    }


def _assert_same_world(a: World, b: World, what: str) -> None:
    left, right = _state(a), _state(b)
    differ = _changed(left, right)
    assert not differ, f"{what}: the worlds differ in {sorted(differ)}"
    assert pickle.dumps(a.memory) == pickle.dumps(b.memory), f"{what}: process memories differ"


def _advance(
    world: World, process: DriftProcess, t: int, events: list[DriftEvent]
) -> list[DriftEvent]:
    """Advance to ``t``; check the events and the state the process touched; collect events."""
    t0 = world.clock
    before = _state(world)
    fired = list(world.advance(t))
    changed = _changed(before, _state(world))
    undeclared = changed - set(process.touches)
    assert not undeclared, (
        f"{process!r} changed {sorted(undeclared)} in advance but declares only "
        f"{sorted(process.touches)}"
    )
    times = [e.t for e in fired]
    assert times == sorted(times), f"events out of order: {times}"
    assert all(t0 < e.t <= t for e in fired), f"events outside ({t0}, {t}]: {times}"
    for event in fired:
        assert isinstance(event, DriftEvent), event
        assert event.kind.startswith(process.kind), (event.kind, process.kind)
        assert np.isfinite(event.magnitude) and event.magnitude >= 0, event
    events.extend(fired)
    return fired


def _serve(world: World, process: DriftProcess, batches: int, rng: np.random.Generator) -> None:
    """Serve random slates, checking the state ``on_consumption`` and feedback touch."""
    k, c = world.config.slate_size, world.config.num_candidates
    for _ in range(batches):
        requests = world.make_requests(world.sample_users(50))
        slates = np.argsort(rng.random((50, c)), axis=1)[:, :k]
        before = _state(world)
        response = world.respond(requests, slates)
        changed = _changed(before, _state(world))
        # Serving changes boredom, histories and (through drift scheduled in the batch) more.
        allowed = {"users.boredom", "users.history"} | set(process.touches)
        assert not changed - allowed, (
            f"{process!r} changed {sorted(changed - allowed)} while serving; it declares "
            f"{sorted(process.touches)}"
        )
        assert ((response.click_slot >= -1) & (response.click_slot < k)).all()


def check_drift_process(
    process: DriftProcess,
    config: WorldConfig = CHECK_CONFIG,
    horizon: int = 3_000,
    seed: int = 0,
) -> None:
    """Check ``process`` against the drift-process contract; raise ``AssertionError`` naming
    the broken rule.

    1. The process and a world holding it pickle, and the unpickled world continues exactly.
    2. Events are ``DriftEvent``s of its kind, sorted, inside the ``(t0, t1]`` of each advance,
       with finite magnitudes >= 0.
    3. Advancing in one call equals advancing in two, at several splits (state, memory and
       events).
    4. Every scheduled regime boundary up to the horizon fires an event at that clock.
    5. Its no-op parameterisation (``process.no_op(config)``, if it has one) reports magnitude
       0 for every event.
    6. It changes only the state it declares in ``touches`` (advancing and serving).

    Args:
        process: the process to check.
        config: the world it runs in (small by default; pass one the process needs).
        horizon: clock the checks run to (drift scheduled beyond it is not exercised).
        seed: the world's seed.
    """
    from driftrec.simulators.world import World

    assert pickle.loads(pickle.dumps(process)) == process, "the process must pickle"

    # 3. one call vs two, at several splits; 2. and 6. checked on every advance.
    whole = World.draw(config, [process], seed=seed)
    events: list[DriftEvent] = []
    _advance(whole, process, horizon, events)
    splits = sorted({1, horizon // 3, horizon // 2, horizon - 1, *process.boundaries(horizon)})
    for split in splits:
        if not 0 < split < horizon:
            continue
        for cut in (split - 1, split, split + 1):
            if not 0 < cut < horizon:
                continue
            parts = World.draw(config, [process], seed=seed)
            split_events: list[DriftEvent] = []
            _advance(parts, process, cut, split_events)
            _advance(parts, process, horizon, split_events)
            _assert_same_world(whole, parts, f"advancing to {horizon} in two calls (at {cut})")
            assert split_events == events, f"events differ when split at {cut}"

    # 4. boundaries agree with the events.
    fired_at = {e.t for e in events}
    missing = [b for b in process.boundaries(horizon) if b not in fired_at]
    assert not missing, f"boundaries {missing} fired no event (events at {sorted(fired_at)})"

    # 6. and 1. while serving: touches only what it declares; a pickled world continues.
    rng = np.random.default_rng(seed)
    served = World.draw(config, [process], seed=seed)
    _serve(served, process, 10, rng)
    copy = pickle.loads(pickle.dumps(served))
    _serve(served, process, 30, np.random.default_rng(1))
    _serve(copy, process, 30, np.random.default_rng(1))
    _assert_same_world(served, copy, "a pickled world")

    # 5. the no-op parameterisation reports no change.
    quiet = process.no_op(config)
    if quiet is not None:
        quiet_events: list[DriftEvent] = []
        _advance(World.draw(config, [quiet], seed=seed), quiet, horizon, quiet_events)
        loud = [e for e in quiet_events if abs(e.magnitude) > 1e-9]
        assert not loud, f"{quiet!r} is a no-op but reports {loud}"

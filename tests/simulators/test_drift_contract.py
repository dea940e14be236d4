"""Every drift process, and every process of every scenario preset, passes the drift-process
contract (``check_drift_process``); and the contract catches a process that breaks it."""

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from driftrec.simulators import (
    SCENARIOS,
    AlternatingPopulation,
    CatalogChurn,
    ClickNoise,
    CohortMixShift,
    Dormant,
    DriftEvent,
    DriftProcess,
    FeedbackLoop,
    GradualShift,
    IncrementalDrift,
    NewCohort,
    QualityShift,
    RecurringShift,
    SessionBatch,
    SuddenShift,
    World,
    WorldConfig,
    check_drift_process,
    make_scenario,
)
from driftrec.simulators.drift.checks import CHECK_CONFIG

PROCESSES = [
    SuddenShift(at=1_000, similarity=0.3, cohorts=(0, 3)),
    GradualShift(start=500, duration=1_499, similarity=-0.2),
    IncrementalDrift(interval=700, similarity=0.9),
    RecurringShift(period=900, similarity=0.1),
    AlternatingPopulation(period=800, leak=0.1),
    CohortMixShift(start=600, duration=999, target=(0.5, 1, 1, 2, 0, 1, 1, 3)),
    NewCohort(at=1_200, fraction=0.3),
    CatalogChurn(every=700, fraction=0.1),
    QualityShift(at=1_100, fraction=0.3),
    FeedbackLoop(strength=0.2, report_every=1_000),
    ClickNoise(start=400, end=1_700, flip_prob=0.2, bot_fraction=0.1),
    Dormant(NewCohort(at=1_200, fraction=0.3)),
]


def test_every_process_kind_is_covered():
    kinds = {type(p) for p in PROCESSES}
    assert kinds == {cls for cls in _subclasses(DriftProcess) if cls.kind != "none"}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("driftrec."):
            yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__)
def test_each_drift_process_passes_the_contract(process):
    check_drift_process(process)


PRESET_PROCESSES = [
    pytest.param(process, make_scenario(name).world_defaults, id=f"{name}-{type(process).__name__}")
    for name in SCENARIOS
    for process in make_scenario(name).processes
]


@pytest.mark.parametrize(("process", "world_defaults"), PRESET_PROCESSES)
def test_every_preset_process_passes_the_contract(process, world_defaults):
    """Preset defaults are sized for 200,000 requests, in the world settings their scenario
    sets (catalog churn's reserve, e.g.): the contract runs that far, without a warning."""
    config = CHECK_CONFIG.replace(arrival_horizon=200_000, **world_defaults)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. churn that runs out of reserve before the end
        check_drift_process(process, config, horizon=200_000)


@dataclass(frozen=True)
class TouchesUndeclaredState(DriftProcess):
    at: int = 100
    kind: ClassVar[str] = "sneaky"

    def advance(self, users, items, memory, t0, t1, rng):
        if t0 < self.at <= t1:
            items.quality[:] += 1.0  # not declared in touches
            return [DriftEvent(self.at, self.kind, 1.0)]
        return []


@dataclass(frozen=True)
class SplitDependent(DriftProcess):
    """Fires once per advance call: advancing in two calls differs from one."""

    kind: ClassVar[str] = "split"
    touches: ClassVar[frozenset[str]] = frozenset({"items.quality"})

    def advance(self, users, items, memory, t0, t1, rng):
        items.quality[0] += 1.0
        return [DriftEvent(t1, self.kind, 1.0)]


@dataclass(frozen=True)
class LoudNoOp(DriftProcess):
    at: int = 100
    kind: ClassVar[str] = "loud"

    def advance(self, users, items, memory, t0, t1, rng):
        return [DriftEvent(self.at, self.kind, 0.5)] if t0 < self.at <= t1 else []

    def boundaries(self, until):
        return [self.at] if self.at <= until else []

    def no_op(self, config):
        return self


@dataclass(frozen=True)
class MissingBoundaryEvent(DriftProcess):
    kind: ClassVar[str] = "silent"

    def boundaries(self, until):
        return [50] if until >= 50 else []


@pytest.mark.parametrize(
    ("process", "message"),
    [
        (TouchesUndeclaredState(), r"changed \['items.quality'\] in advance but declares only"),
        (SplitDependent(), r"in two calls|events differ"),
        (LoudNoOp(), r"is a no-op but reports"),
        (MissingBoundaryEvent(), r"boundaries \[50\] fired no event"),
    ],
)
def test_the_contract_catches_broken_processes(process, message):
    with pytest.raises(AssertionError, match=message):
        check_drift_process(process)


@dataclass(frozen=True)
class DelayByOneBatch(DriftProcess):
    """Observed clicks arrive one batch late (a delayed-feedback sketch)."""

    kind: ClassVar[str] = "delay"

    def corrupt_feedback(self, t, click_slot, shown, memory, rng):
        held = memory.get("held")
        memory["held"] = click_slot.copy()
        if held is None or len(held) != len(click_slot):
            return np.full_like(click_slot, -1)
        return held


def test_feedback_gets_the_process_memory_so_delays_can_be_written():
    check_drift_process(DelayByOneBatch())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_preset_world_advanced_in_one_call_equals_one_advanced_in_steps(name):
    """Several processes together: scheduled changes happen in time order however the clock is
    advanced (the world cuts each advance at regime boundaries)."""
    import pickle

    from driftrec.simulators import build_world

    sizes = {"num_users": 1_500, "num_items": 600, "num_candidates": 20, "slate_size": 4}
    whole = build_world(name, seed=0, **sizes)
    events = list(whole.advance(200_000))
    steps = build_world(name, seed=0, **sizes)
    stepped = [e for t in range(2_500, 200_001, 2_500) for e in steps.advance(t)]
    assert stepped == events
    for part in ("users", "items"):
        for key, value in vars(getattr(whole, part)).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(getattr(steps, part), key), value, key)
    assert pickle.dumps(whole.memory) == pickle.dumps(steps.memory)


@dataclass(frozen=True)
class UncheckedJitter(DriftProcess):
    """Adds ``scale`` to every item's quality at ``at``, without checking ``scale``."""

    at: int = 40
    scale: float = 1.0
    kind: ClassVar[str] = "jitter"
    touches: ClassVar[frozenset[str]] = frozenset({"items.quality"})

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        items.quality += np.float32(self.scale)
        return [DriftEvent(self.at, self.kind, 1.0)]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@pytest.mark.parametrize("sessions", [1, 16])
@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 1e30])
def test_a_process_that_breaks_the_ground_truth_is_named_at_the_next_step(sessions, scale):
    # The process is the user's, unchecked: the world cannot refuse its parameters, but it
    # refuses to serve non-finite ground truth (it served NaN expected and oracle rewards,
    # and a run died later in a metric), naming the process.
    config = WorldConfig(num_users=300, num_items=300, num_candidates=20, slate_size=4)
    world = World.draw(config, seed=0, processes=[UncheckedJitter(scale=scale)])
    batch = SessionBatch(world, sessions)
    rng = np.random.default_rng(0)
    with pytest.raises(FloatingPointError, match=r"not finite at t=(40|48) .*UncheckedJitter"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow in exp
            for _ in range(60):
                batch.serve(np.argsort(rng.random((sessions, 20)), axis=1)[:, :4])
    assert world.clock <= 48  # nothing after the change was served


@pytest.mark.parametrize("choice_model", ["mnl", "cascade"])
@pytest.mark.parametrize("reward", ["click", "engagement"])
def test_one_broken_item_served_is_refused_whatever_the_reward(choice_model, reward):
    # An item-dependent reward's oracle passes a NaN item over (its value stayed finite), so the
    # served slates' expected reward is checked too: it was served as NaN without a word.
    config = WorldConfig(
        num_users=300, num_items=300, num_candidates=20, slate_size=4,
        choice_model=choice_model, reward=reward,
    )  # fmt: skip
    world = World.draw(config, seed=0)
    requests = world.make_requests(world.sample_users(16))
    broken = int(requests.candidates[0, 5])
    world.items.quality[broken] = np.nan  # as a user's drift process might leave it
    requests = world.rescore(requests)
    slates = np.tile(np.arange(4), (16, 1))
    slates[0] = [5, 0, 1, 2]  # the broken item shown first to request 0
    with pytest.raises(FloatingPointError, match=r"not finite at t=0 \(\d+ of 16 requests\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            world.respond(requests, slates)
    assert world.clock == 0

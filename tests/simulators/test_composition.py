"""The world is composed of injected parts: a fake choice model and a fake retriever drive a world
end to end, through sessions and drift; a user's own drift kinds take effect."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from driftrec.simulators import (
    DriftEvent,
    DriftProcess,
    ItemCatalogue,
    SessionBatch,
    Streams,
    SuddenShift,
    UserPopulation,
    World,
    WorldConfig,
    check_drift_process,
)

CONFIG = WorldConfig(num_users=300, num_items=200, num_candidates=6, slate_size=3)


class FirstSlotAlwaysClicked:
    """A fake choice model: the first shown slot is clicked for sure."""

    slate_size = 3

    def slot_probabilities(self, slate_utilities, shown=None):
        if shown is None:  # every slot shown (probes ask for one slot alone this way)
            shown = np.ones(slate_utilities.shape, dtype=bool)
        probs = np.zeros(shown.shape)
        first = np.argmax(shown, axis=1)
        rows = np.flatnonzero(shown.any(axis=1))
        probs[rows, first[rows]] = 1.0
        return probs

    def oracle(self, utilities, values):
        slates = np.tile(np.arange(self.slate_size), (len(utilities), 1))
        return slates, np.ones(len(utilities))

    def oracle_value(self, utilities, values):
        return self.oracle(utilities, values)[1]


class FixedCandidates:
    """A fake retriever: always the same six items, and it records what it is told."""

    def __init__(self, items):
        self.items = np.asarray(items)
        self.clicked = []
        self.changes = 0

    def retrieve(self, n, clock, rng):
        return np.tile(self.items, (n, 1))

    def record_clicks(self, items, clock):
        self.clicked.extend(items.tolist())

    def catalogue_changed(self):
        self.changes += 1


def test_a_fake_choice_model_and_a_fake_retriever_drive_a_world_end_to_end():
    streams = Streams.spawn(0)
    users = UserPopulation.draw(CONFIG, streams.world)
    items = ItemCatalogue.draw(CONFIG, streams.world)
    live = np.flatnonzero(items.available(0) & (items.retirement > 100))
    retriever = FixedCandidates(live[10:16])
    world = World(
        CONFIG,
        users,
        items,
        FirstSlotAlwaysClicked(),
        retriever,
        [SuddenShift(at=40, similarity=0.0)],
        streams,
    )
    sessions = SessionBatch(world, 8)
    slates = np.tile([2, 0, 1], (8, 1))
    events = []
    for _ in range(10):
        step = sessions.serve(slates)
        response = step.response
        np.testing.assert_array_equal(response.true_click_slot, 0)  # the fake always clicks
        np.testing.assert_array_equal(response.clicked_item, live[12])  # position 2
        np.testing.assert_array_equal(response.expected_reward, 1.0)
        np.testing.assert_array_equal(response.oracle_expected_reward, 1.0)
        events.extend(response.events)
    assert world.clock == 80
    assert [e.kind for e in events] == ["sudden"]
    assert set(retriever.clicked) == {live[12]} and len(retriever.clicked) == 80
    assert (sessions.requests.candidates == live[10:16]).all()
    obs = world.observe(sessions.requests)
    assert obs["candidate_ids"].shape == (8, 6)
    probe = world.probe_set(5)
    assert (probe.oracle_expected_reward == 1.0).all()


class TopicRetrieval:
    """A retriever that needs the drawn catalogue: the first live items of one topic."""

    def __init__(self, config: WorldConfig, items: ItemCatalogue) -> None:
        self.items, self.count = items, config.num_candidates

    def retrieve(self, n, clock, rng):
        live = np.flatnonzero(self.items.available(clock) & (self.items.topic == 0))
        return np.tile(live[: self.count], (n, 1))

    def record_clicks(self, items, clock):
        pass

    def catalogue_changed(self):
        pass


def test_world_draw_builds_a_retriever_from_the_drawn_catalogue():
    """``retrieval=`` may be a factory of (config, items), as PooledRetrieval is built: a
    retriever that needs the catalogue cannot exist before World.draw draws it."""
    world = World.draw(CONFIG, seed=0, retrieval=TopicRetrieval)
    assert isinstance(world.retrieval, TopicRetrieval) and world.retrieval.items is world.items
    requests = world.make_requests(world.sample_users(4))
    assert (world.items.topic[requests.candidates] == 0).all()
    world.respond(requests, world.oracle(requests)[0])


@dataclass(frozen=True)
class RetireTopic(DriftProcess):
    """A user's own drift kind: at ``at`` every live item of ``topic`` retires. Its event does
    not count the items (``DriftEvent.items``): it declares what it changes in ``touches``."""

    at: int
    topic: int = 0
    kind: ClassVar[str] = "retire_topic"
    touches: ClassVar[frozenset[str]] = frozenset({"items.retirement"})

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        chosen = (items.topic == self.topic) & items.available(self.at)
        items.retirement[chosen] = self.at
        return [DriftEvent(self.at, self.kind, float(chosen.mean()))]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@dataclass(frozen=True)
class QuietPowerUsers(DriftProcess):
    """A user's own drift kind: at ``at`` the most active tenth of the users stop requesting."""

    at: int
    kind: ClassVar[str] = "quiet_power_users"
    touches: ClassVar[frozenset[str]] = frozenset({"users.activity"})

    def advance(self, users, items, memory, t0, t1, rng):
        if not t0 < self.at <= t1:
            return []
        users.activity[users.activity >= np.quantile(users.activity, 0.9)] = 0.0
        return [DriftEvent(self.at, self.kind, 0.1)]

    def boundaries(self, until):
        return [self.at] if self.at <= until else []


@pytest.mark.parametrize("n", [1, 50])
def test_a_custom_drift_that_retires_items_or_silences_users_takes_effect(n):
    """The world rebuilds what it derives from the catalogue and from activity (retrieval
    pools, the activity tables) when a process that declares such state in ``touches`` fires:
    retired items were served on, and silenced users kept requesting."""
    config = WorldConfig(num_users=600, num_items=500, num_candidates=20, slate_size=4)
    for process in (RetireTopic(at=500, topic=3), QuietPowerUsers(at=500)):
        check_drift_process(process)
        world = World.draw(config, [process], seed=0)
        sessions = SessionBatch(world, n)
        while world.clock < 1_000:
            sessions.serve(np.zeros((n, 4), dtype=np.int64))
        requests = world.make_requests(world.sample_users(2_000))
        assert world.items.available(world.clock)[requests.candidates].all()
        assert (world.users.activity[requests.users] > 0).all()

"""The world is composed of injected parts: a fake choice model and a fake retriever drive a world
end to end, through sessions and drift."""

import numpy as np

from driftrec.simulators import (
    ItemCatalogue,
    SessionBatch,
    Streams,
    SuddenShift,
    UserPopulation,
    World,
    WorldConfig,
)

CONFIG = WorldConfig(num_users=300, num_items=200, num_candidates=6, slate_size=3)


class FirstSlotAlwaysClicked:
    """A fake choice model: the first shown slot is clicked for sure."""

    slate_size = 3

    def slot_probabilities(self, slate_utilities, shown):
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
    """A fake retriever: always items 10..15, and it records what it is told."""

    def __init__(self):
        self.clicked = []
        self.changes = 0

    def retrieve(self, n, clock, rng):
        return np.tile(np.arange(10, 16), (n, 1))

    def record_clicks(self, items, clock):
        self.clicked.extend(items.tolist())

    def catalogue_changed(self):
        self.changes += 1


def test_a_fake_choice_model_and_a_fake_retriever_drive_a_world_end_to_end():
    streams = Streams.spawn(0)
    users = UserPopulation.draw(CONFIG, streams.world)
    items = ItemCatalogue.draw(CONFIG, streams.world)
    retriever = FixedCandidates()
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
        np.testing.assert_array_equal(response.clicked_item, 12)  # position 2 of 10..15
        np.testing.assert_array_equal(response.expected_reward, 1.0)
        np.testing.assert_array_equal(response.oracle_expected_reward, 1.0)
        events.extend(response.events)
    assert world.clock == 80
    assert [e.kind for e in events] == ["sudden"]
    assert set(retriever.clicked) == {12} and len(retriever.clicked) == 80
    assert (sessions.requests.candidates == np.arange(10, 16)).all()
    obs = world.observe(sessions.requests)
    assert obs["candidate_ids"].shape == (8, 6)
    probe = world.probe_set(5)
    assert (probe.oracle_expected_reward == 1.0).all()

"""Retrievers by name (``RETRIEVERS``): a user's own retriever is a world setting like the
built-in one, and every batch of candidates it returns is checked against the contract."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from driftrec.simulators import RETRIEVERS, PooledRetrieval, SessionBatch, World, WorldConfig

SMALL = dict(num_users=300, num_items=200, num_candidates=8, slate_size=3)


class TopicFirst:
    """Candidates of one topic first: the live items of the request's topic 0, then others."""

    def __init__(self, config, items):
        self.items, self.count = items, config.num_candidates
        self.clicks = 0

    def live(self, clock):
        return np.flatnonzero(self.items.available(clock))

    def retrieve(self, n, clock, rng):
        live = self.live(clock)
        ordered = live[np.argsort(self.items.topic[live] != 0, kind="stable")]
        return np.tile(ordered[: self.count], (n, 1))

    def record_clicks(self, items, clock):
        self.clicks += len(items)

    def catalogue_changed(self):
        pass


@pytest.fixture
def registered(register):
    """``registered(name, builder)``: a retriever registered for one test."""
    return functools.partial(register, RETRIEVERS)


def test_a_registered_retriever_is_a_world_setting_by_name(registered):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from driftrec.envs import env_id

    assert WorldConfig().retrieval == "pooled"
    assert type(World.draw(WorldConfig(**SMALL), seed=0).retrieval) is PooledRetrieval
    registered("topic_first", TopicFirst)
    world = World.draw(WorldConfig(**SMALL, retrieval="topic_first"), seed=0)
    assert isinstance(world.retrieval, TopicFirst) and world.retrieval.items is world.items
    sessions = SessionBatch(world, 5)
    for _ in range(10):
        sessions.serve(np.tile([0, 1, 2], (5, 1)))
    assert (world.items.topic[sessions.requests.candidates[:, 0]] == 0).all()
    assert world.retrieval.clicks > 0  # the world told it of the clicks

    env = gym.make(env_id("sudden"), at=50, retrieval="topic_first", **SMALL)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=1)
    assert obs["candidate_topics"][0] == 0  # its first candidate, of topic 0
    RETRIEVERS.unregister("topic_first")
    with pytest.raises(ValueError, match=r"retrieval must be one of \['pooled'\], got"):
        WorldConfig(**SMALL, retrieval="topic_first")


class Broken(TopicFirst):
    """A retriever with one thing wrong, named by ``fault`` (from the third batch on: a run
    that started well is stopped at the batch that breaks the contract)."""

    fault = ""

    def __init__(self, config, items):
        super().__init__(config, items)
        self.batches = 0

    def retrieve(self, n, clock, rng):
        out = super().retrieve(n, clock, rng)
        self.batches += 1
        if self.batches < 3:
            return out
        if self.fault == "float":
            return out.astype(float)
        if self.fault == "shape":
            return out[:, :-1]
        if self.fault == "out of range":
            return out + 10_000
        if self.fault == "repeat":
            out[:, 1] = out[:, 0]
            return out
        if self.fault == "not live":
            unreleased = np.flatnonzero(~self.items.available(clock))
            out[:, -1] = unreleased[0]
            return out
        return out


BROKEN = [
    ("float", TypeError, r"float64 values; expected integer item ids"),
    ("shape", ValueError, r"shape \(4, 7\); expected \(4, 8\)"),
    ("out of range", ValueError, r"item ids from 1\d\d\d\d to .*; expected ids in \[0, 199\]"),
    ("repeat", ValueError, r"an item twice in one request at request 0"),
    ("not live", ValueError, r"items not live \(not yet released, or retired\) at request 0"),
]


@pytest.mark.parametrize(("fault", "error", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_retriever_breaking_the_contract_is_stopped_at_that_batch(
    registered, fault, error, message
):
    registered("broken", type("Broken", (Broken,), {"fault": fault}))
    world = World.draw(WorldConfig(**SMALL, retrieval="broken"), seed=0)
    world.make_requests(world.sample_users(4))
    world.make_requests(world.sample_users(4))
    with pytest.raises(error, match=rf"retriever Broken at t=0: retrieve\(4\) returned {message}"):
        world.make_requests(world.sample_users(4))


def test_a_retriever_missing_a_method_is_refused_when_the_world_is_built(registered):
    class NoClicks:
        def __init__(self, config, items):
            pass

        def retrieve(self, n, clock, rng):
            return np.zeros((n, 8), dtype=np.int64)

    registered("no_clicks", NoClicks)
    with pytest.raises(TypeError, match=r"NoClicks lacks \['record_clicks', 'catalogue_changed'"):
        World.draw(WorldConfig(**SMALL, retrieval="no_clicks"), seed=0)


class ReusedBuffer(TopicFirst):
    """Returns the same buffer every time, rewritten in place."""

    def __init__(self, config, items):
        super().__init__(config, items)
        self.buffer = None

    def retrieve(self, n, clock, rng):
        out = super().retrieve(n, clock, rng)
        if self.buffer is None or self.buffer.shape != out.shape:
            self.buffer = out.copy()
        self.buffer[:] = rng.permuted(out, axis=1)
        return self.buffer


def test_the_world_keeps_its_own_copy_of_a_retrievers_candidates(registered):
    registered("reused", ReusedBuffer)
    world = World.draw(WorldConfig(**SMALL, retrieval="reused"), seed=0)
    sessions = SessionBatch(world, 5)
    kept = world.observe(sessions.requests)["candidate_ids"]
    before = kept.copy()
    sessions.serve(np.tile([0, 1, 2], (5, 1)))  # the next batch rewrites the buffer
    np.testing.assert_array_equal(kept, before)


class Locked(TopicFirst):
    def __init__(self, config, items):
        import threading

        super().__init__(config, items)
        self.lock = threading.Lock()


class GlobalRandom(TopicFirst):
    def retrieve(self, n, clock, rng):
        live = self.live(clock)
        draws = [np.random.choice(live, self.count, replace=False) for _ in range(n)]  # noqa: NPY002
        return np.stack(draws)


class BadFromTheStart(TopicFirst):
    def retrieve(self, n, clock, rng):
        return super().retrieve(n, clock, rng)[:, ::-1][:, [0, 0, *range(2, self.count)]]


@pytest.mark.parametrize(
    ("retriever", "error", "message"),
    [
        (Locked, TypeError, r"retriever Locked cannot be deep-copied \(TypeError: cannot pickle"),
        (GlobalRandom, ValueError, r"GlobalRandom: retrieve\(4, 0, rng\) gave different cand"),
        (BadFromTheStart, ValueError, r"BadFromTheStart at t=0: retrieve\(4\) returned an item"),
    ],
)
def test_a_retriever_that_cannot_be_copied_or_repeated_is_refused_when_built(
    registered, retriever, error, message
):
    registered("refused", retriever)
    with pytest.raises(error, match=message):
        World.draw(WorldConfig(**SMALL, retrieval="refused"), seed=0)


def test_a_retriever_set_after_the_world_is_built_is_the_one_asked_and_checked():
    world = World.draw(WorldConfig(**SMALL), seed=0)
    world.retrieval = TopicFirst(world.config, world.items)
    requests = world.make_requests(world.sample_users(3))
    assert (world.items.topic[requests.candidates[:, 0]] == 0).all()
    world.retrieval = type("Repeating", (Broken,), {"fault": "repeat"})(world.config, world.items)
    world.make_requests(world.sample_users(3))
    world.make_requests(world.sample_users(3))  # it breaks the contract from its third batch
    with pytest.raises(ValueError, match=r"retriever Repeating at t=0: .* an item twice"):
        world.make_requests(world.sample_users(3))

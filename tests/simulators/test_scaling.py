"""A step's work does not grow with the population or the catalogue: no NumPy operation of a
step reads a whole per-user or per-item array. Checked by counting array sizes, not time:
every per-user and per-item array of the world is wrapped in a spy that records the size of
each array a NumPy operation processes (``ufunc.at`` scatters excepted: they touch only the
indexed elements)."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftrec.simulators import SessionBatch, build_world


class Spy(np.ndarray):
    """An array that records the size of every array a NumPy operation reads from it."""

    sizes: list[int] = []

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "at":
            Spy.sizes.extend(x.size for x in inputs if isinstance(x, Spy))
        plain = [x.view(np.ndarray) if isinstance(x, Spy) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                x.view(np.ndarray) if isinstance(x, Spy) else x for x in kwargs["out"]
            )
        return getattr(ufunc, method)(*plain, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        def unwrap(x: Any) -> Any:
            if isinstance(x, Spy):
                Spy.sizes.append(x.size)
                return x.view(np.ndarray)
            if isinstance(x, (list, tuple)):
                return type(x)(unwrap(v) for v in x)
            return x

        return func(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})


def spy_on(world) -> None:
    for part in (world.users, world.items):
        for name, value in vars(part).items():
            if isinstance(value, np.ndarray) and value.ndim == 1:
                setattr(part, name, value.view(Spy))


def test_a_step_reads_no_whole_per_user_or_per_item_array():
    """200,000 users (late ones arriving and some churning meanwhile) and 100,000 items;
    batches of 64 requests of 100 candidates read arrays of at most 6,400 entries. (A drift
    event may touch a whole cohort when it fires; steps between events touch only what they
    serve.)"""
    world = build_world(
        "stationary", seed=0, num_users=200_000, num_items=100_000, arrival_horizon=5_000,
        churn_prob=0.2,
    )  # fmt: skip
    batch = SessionBatch(world, 64)
    rng = np.random.default_rng(0)
    batch.serve(np.argsort(rng.random((64, 100)), axis=1)[:, :10])  # builds the caches
    spy_on(world)
    Spy.sizes = []
    arrived = int((world.users.arrival.view(np.ndarray) <= world.clock).sum())
    for _ in range(60):
        batch.serve(np.argsort(rng.random((64, 100)), axis=1)[:, :10])
    assert int((world.users.arrival.view(np.ndarray) <= world.clock).sum()) > arrived
    assert not world.users.alive.view(np.ndarray).all()  # someone churned meanwhile
    assert Spy.sizes and max(Spy.sizes) <= 64 * 100, max(Spy.sizes)


class CountingGenerator:
    """A random generator that counts the random values it hands out (outputs' sizes)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.drawn = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.rng, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            out = method(*args, **kwargs)
            self.drawn += int(np.size(out))
            return out

        return counted


def test_requests_served_alone_draw_as_much_in_a_world_100x_larger():
    """The single environment's requests (sessions of one) draw the same amount of randomness
    (users, candidates, sessions) from a world with 100x the users and items: retrieval of a
    request alone does not sample the catalogue."""

    def drawn(num_users: int, num_items: int) -> int:
        world = build_world("stationary", seed=0, num_users=num_users, num_items=num_items)
        batch = SessionBatch(world, 1)
        rng = np.random.default_rng(0)
        counter = CountingGenerator(world.rng.requests)
        world.rng.requests = counter  # type: ignore[assignment]
        for _ in range(300):
            batch.serve(np.argsort(rng.random((1, 100)), axis=1)[:, :10])
        return counter.drawn

    small, large = drawn(2_000, 5_000), drawn(200_000, 500_000)
    assert 300 * 100 <= small  # at least one draw per candidate
    assert large <= 1.2 * small, (small, large)

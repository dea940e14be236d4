"""The world's random streams: independent ``numpy.random.Generator``s spawned from one
``SeedSequence``, one per purpose, so that e.g. drawing a probe set never changes the
trajectory. The global NumPy, Python and torch random states are never used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.validation import check_integer

__all__ = ["STREAMS", "SeedLike", "Streams", "check_seed"]

SeedLike = int | np.random.SeedSequence | None

STREAMS = ("world", "requests", "responses", "drift", "probes", "logging")
"""The purposes, in spawn order: drawing the world, serving requests (users, candidates,
sessions), sampling responses, drift, probe sets, logged data."""


def check_seed(seed: SeedLike) -> SeedLike:
    """A seed as a Python int >= 0 (any integral type), a ``SeedSequence``, or None."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    return check_integer("seed", seed, minimum=0)


@dataclass
class Streams:
    """One generator per purpose (see :data:`STREAMS`)."""

    world: np.random.Generator
    requests: np.random.Generator
    responses: np.random.Generator
    drift: np.random.Generator
    probes: np.random.Generator
    logging: np.random.Generator

    @classmethod
    def spawn(cls, seed: SeedLike = None) -> Streams:
        """The streams of ``seed`` (None: fresh entropy)."""
        seed = check_seed(seed)
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        children = root.spawn(len(STREAMS))
        return cls(*(np.random.Generator(np.random.PCG64(s)) for s in children))

    def __getitem__(self, name: str) -> np.random.Generator:
        generator: np.random.Generator = getattr(self, name)
        return generator

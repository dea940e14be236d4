"""Baselines that learn no model: random slates and recent popularity (the oracles, which read
the environment's ground truth, are :mod:`driftrec.agents.oracles`)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from driftrec.agents.checks import check_transition, observation_batch
from driftrec.agents.examples import as_tensor
from driftrec.agents.exploration import random_slates
from driftrec.agents.models.tables import grown_rows
from driftrec.agents.protocol import AgentBase, Observation, TaskSizes, Transition
from driftrec.validation import MAX_SIZE, check_integer

__all__ = ["PopularityAgent", "RandomAgent"]


class RandomAgent(AgentBase):
    """Uniformly random slates of distinct candidates: the floor every learner must beat.

    Args:
        sizes: the task's sizes.
        seed: seeds the agent's own numpy stream.
    """

    def __init__(self, sizes: TaskSizes, seed: int = 0) -> None:
        self.sizes = sizes
        seed = check_integer("seed", seed, minimum=0)
        self.rng = np.random.default_rng(np.random.SeedSequence(seed))

    def __repr__(self) -> str:
        return "RandomAgent()"

    def act(self, obs: Observation) -> np.ndarray:
        n = len(observation_batch(obs, self.sizes, caller="act")["user_id"])
        return random_slates(n, self.sizes.num_candidates, self.sizes.slate_size, self.rng)

    def observe(self, transition: Transition) -> None:
        """Checks the transition (as every agent does) and learns nothing."""
        check_transition(transition, self.sizes)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


class PopularityAgent(AgentBase):
    """The candidates with the most observed clicks over the last ``window`` requests, ties
    broken at random (the popularity baseline; Ji et al. 2020, "A re-visit of the popularity
    baseline in recommender systems", SIGIR, on why it must be windowed in time).

    Args:
        sizes: the task's sizes (click counts are kept per item id: ``num_items`` of them to
            start with, more if larger ids appear).
        window: requests the counts cover, in [1, 10**8] (``MAX_SIZE``); the record of the
            window's clicks grows with the requests seen, up to ``window`` entries.
        seed: seeds the tie-breaking stream.
    """

    def __init__(self, sizes: TaskSizes, window: int = 10_000, seed: int = 0) -> None:
        self.sizes = sizes
        self.window = window = check_integer("window", window, minimum=1, maximum=MAX_SIZE)
        seed = check_integer("seed", seed, minimum=0)
        self.rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.counts = np.zeros(sizes.num_items, dtype=np.int64)
        # Clicked item per request, -1 none: a ring of ``window`` entries once full, grown
        # geometrically until then (head == entries written until it first wraps).
        self.ring = np.full(min(window, 1024), -1, dtype=np.int64)
        self.head = 0

    def __repr__(self) -> str:
        return f"PopularityAgent(window={self.window})"

    def _ensure_items(self, ids: np.ndarray) -> None:
        """Grow the counts (geometrically) to hold item ``ids``: any non-negative id works."""
        needed = int(ids.max()) + 1 if ids.size else 0
        if needed > len(self.counts):
            rows = grown_rows(len(self.counts), needed, self.sizes.num_items)
            extra = np.zeros(rows - len(self.counts), dtype=np.int64)
            self.counts = np.concatenate([self.counts, extra])

    def act(self, obs: Observation) -> np.ndarray:
        ids = observation_batch(obs, self.sizes, caller="act")["candidate_ids"]
        self._ensure_items(ids)
        scores = self.counts[ids] + 0.5 * self.rng.random(ids.shape)
        k = self.sizes.slate_size
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1).astype(np.int64)

    def observe(self, transition: Transition) -> None:
        """Count the clicks of the served requests (checked first: a bad transition raises
        and changes nothing; rows with ``info["served"]`` False are not requests and do not
        enter the window)."""
        feedback = check_transition(transition, self.sizes)
        slates, slot = feedback.slates, feedback.click_slot
        hit = np.flatnonzero(slot >= 0)
        clicked = np.full(len(slot), -1, dtype=np.int64)
        cands = feedback.obs["candidate_ids"]
        clicked[hit] = cands[hit, slates[hit, slot[hit]]]
        self._ensure_items(clicked)
        m = len(self.counts)
        if len(clicked) > self.window:
            clicked = clicked[-self.window :]
        n = len(clicked)
        if len(self.ring) < min(self.window, self.head + n):
            size = min(self.window, max(self.head + n, 2 * len(self.ring)))
            self.ring = np.concatenate([self.ring, np.full(size - len(self.ring), -1, np.int64)])
        idx = (self.head + np.arange(n)) % self.window
        leaving = self.ring[idx]
        self.counts -= np.bincount(leaving[leaving >= 0], minlength=m)
        self.counts += np.bincount(clicked[clicked >= 0], minlength=m)
        self.ring[idx] = clicked
        self.head = int((self.head + n) % self.window)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values (``torch.load`` reads them with ``weights_only=True``)."""
        return {
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "counts": as_tensor(self.counts),
            "ring": as_tensor(self.ring),
            "head": self.head,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.counts = state["counts"].numpy().copy()
        self.ring = state["ring"].numpy().copy()
        self.head = int(state["head"])

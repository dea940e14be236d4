"""The world: a seeded, vectorised population and catalogue advanced by a request clock, composed
of parts (as RecSim assembles an environment from a user model, a document sampler and a choice
model): the users and items (``population``), who requests (``ActivitySampler``), candidate
retrieval (``retrieval``), the true utilities (``scoring``), the choice model (``choice``), what
serving does to the users (``consumption``: boredom, histories), drift processes (``drift``),
the regime schedule (``regimes``) and the random streams (``streams``). Probe sets (``probes``)
and logged data (``logged``) are functions of a world in their own modules.

The world clock ``t`` counts recommendation requests served. A batch of ``n`` requests is served
at clocks ``t .. t+n-1`` against the state at ``t``; afterwards the clock moves to ``t+n`` and
every drift process applies what was scheduled in ``(t, t+n]``. (So a drift scheduled inside a
batch takes effect for the next batch: the resolution of the clock is the batch size.)
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from driftrec.simulators.choice import CHOICE_MODELS, ChoiceModel, expected_reward, sample_slots
from driftrec.simulators.choice_checks import check_for_world
from driftrec.simulators.config import WorldConfig
from driftrec.simulators.consumption import consume, tire
from driftrec.simulators.drift import DriftEvent, DriftProcess, check_processes, rebuild_after
from driftrec.simulators.logged import LoggedInteractions, LoggingPolicy, log_interactions
from driftrec.simulators.population import ActivitySampler, ItemCatalogue, UserPopulation
from driftrec.simulators.probes import ProbeSet, probe_set
from driftrec.simulators.regimes import RegimeSchedule
from driftrec.simulators.requests import (
    Requests,
    Response,
    at_slots,
    item_rows,
    slot_items,
    slot_values,
)
from driftrec.simulators.retrieval import RETRIEVERS, PooledRetrieval, Retrieval, sorted_unique
from driftrec.simulators.retrieval_checks import check_candidates, check_retriever
from driftrec.simulators.scoring import true_utilities
from driftrec.simulators.streams import SeedLike, Streams, check_seed
from driftrec.slates import as_slates
from driftrec.validation import check_flag, check_time

__all__ = ["LoggedInteractions", "ProbeSet", "Requests", "Response", "World", "check_seed"]


class World:
    """A drifting recommendation world, composed of injected parts.

    Most users build one with :meth:`World.draw` (or ``build_world`` for a scenario preset);
    the constructor takes every part, so that a test or a user can swap in another choice model
    or retriever.

    Args:
        config: sizes, choice model and population dynamics.
        users: the population (drifts mutate it in place).
        items: the catalogue.
        choice: how users respond to a slate (``driftrec.simulators.choice.ChoiceModel``).
        retrieval: how candidates are retrieved (``driftrec.simulators.retrieval.Retrieval``).
        processes: drift processes, applied in order as the clock advances; validated against
            ``config`` and prepared (``process.prepare``) here.
        streams: the random streams (``Streams.spawn(seed)``).
        regime_every: for continuous drift, regimes are equal slices of this many requests
            (used for probes and forgetting); scheduled processes define regimes themselves.

    Example:
        >>> from driftrec.simulators import World, WorldConfig
        >>> world = World.draw(WorldConfig(num_users=200, num_items=300, num_candidates=20,
        ...                                slate_size=5), seed=0)
        >>> requests = world.make_requests(world.sample_users(4))
        >>> requests.candidates.shape
        (4, 20)
        >>> slates, value = world.oracle(requests)
        >>> response = world.respond(requests, slates)
        >>> bool((response.expected_reward <= response.oracle_expected_reward + 1e-12).all())
        True
        >>> world.clock
        4
    """

    def __init__(
        self,
        config: WorldConfig,
        users: UserPopulation,
        items: ItemCatalogue,
        choice: ChoiceModel,
        retrieval: Retrieval,
        processes: Sequence[DriftProcess] = (),
        streams: Streams | None = None,
        regime_every: int | None = None,
    ) -> None:
        if not isinstance(config, WorldConfig):
            raise TypeError(f"config must be a WorldConfig, got {type(config).__name__}")
        self.config = config
        self.processes = tuple(processes)
        check_processes(config, self.processes)
        if regime_every is not None:
            regime_every = check_time("regime_every", regime_every)
        self.regime_every = regime_every
        self.rng = Streams.spawn() if streams is None else streams
        self.users = users
        self.items = items
        self.choice = check_for_world(config, choice)  # a user's: refused now, if wrong
        if type(retrieval) is not PooledRetrieval:  # a user's: methods, copies, a first batch
            check_retriever(retrieval, config, items)
        self.retrieval = retrieval
        self.memory: list[dict] = [{} for _ in self.processes]
        for process, memory in zip(self.processes, self.memory, strict=True):
            process.prepare(config, self.users, self.items, memory, self.rng["world"])
        self.activity = ActivitySampler(users)
        self.regimes = RegimeSchedule(self.processes, regime_every)
        self.clock = 0

    @classmethod
    def draw(
        cls,
        config: WorldConfig,
        processes: Sequence[DriftProcess] = (),
        seed: SeedLike = None,
        regime_every: int | None = None,
        *,
        choice: ChoiceModel | None = None,
        retrieval: Retrieval | Callable[[WorldConfig, ItemCatalogue], Retrieval] | None = None,
    ) -> World:
        """Draw a world from ``seed``: users, then items, from the world stream; the choice
        model named by ``config.choice_model`` (built from ``CHOICE_MODELS``) and
        :class:`PooledRetrieval` unless given (``retrieval`` may be a retriever, or a callable
        that builds one from the config and the drawn catalogue, as ``PooledRetrieval`` is
        built).

        The processes are validated against ``config`` before anything is drawn, so a bad
        parameter fails here, naming it.
        """
        if not isinstance(config, WorldConfig):
            raise TypeError(f"config must be a WorldConfig, got {type(config).__name__}")
        config.check_fits_in_memory()
        check_processes(config, tuple(processes))
        streams = Streams.spawn(check_seed(seed))
        users = UserPopulation.draw(config, streams.world)
        items = ItemCatalogue.draw(config, streams.world)
        model: ChoiceModel = choice or CHOICE_MODELS[config.choice_model](config)
        if retrieval is None:
            retrieval = RETRIEVERS[config.retrieval]
        if isinstance(retrieval, type) or not hasattr(retrieval, "retrieve"):
            retrieval = retrieval(config, items)  # a factory (a registered one's builder too)
        retriever: Retrieval = retrieval  # type: ignore[assignment]
        return cls(config, users, items, model, retriever, processes, streams, regime_every)

    # ------------------------------------------------------------------ requests

    def present_users(self, t: int | None = None) -> np.ndarray:
        """(n_users,) bool: arrived by ``t`` (default: now) and not churned."""
        t = self.clock if t is None else t
        return (self.users.arrival <= t) & self.users.alive

    def sample_users(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` requesting users, proportional to activity among present users: (n,)."""
        rng = self.rng["requests"] if rng is None else rng
        return self.activity.sample(n, self.clock, rng)

    def make_requests(
        self,
        users: np.ndarray,
        rng: np.random.Generator | None = None,
        with_boredom: bool = True,
    ) -> Requests:
        """Retrieve candidates for ``users`` (n,) and score them with the true utilities."""
        rng = self.rng["requests"] if rng is None else rng
        users = np.array(users, dtype=np.int64)  # a copy: callers may reuse their array
        index: tuple[np.ndarray, np.ndarray] | None = None
        retrieval = self.retrieval
        if type(retrieval) is PooledRetrieval:  # the built-in one (not a subclass), tested
            candidates, index = retrieval.retrieve_indexed(len(users), self.clock, rng)
        else:  # a user's retriever: every batch of candidates checked
            candidates = check_candidates(
                retrieval.retrieve(len(users), self.clock, rng),
                len(users),
                self.config.num_candidates,
                self.items,
                self.clock,
                type(retrieval).__name__,
            )
        topics = item_rows(self.items.topic, candidates, index)
        return Requests(
            t=self.clock,
            users=users,
            candidates=candidates,
            utilities=self._score(users, candidates, topics if with_boredom else None, index),
            values=self._values(candidates, index),
            topics=topics,
            index=index,
        )

    def rescore(self, requests: Requests) -> Requests:
        """The same requests scored under this world's state (another world's: a snapshot's)."""
        topics = self.items.topic.take(requests.candidates)
        return Requests(
            t=requests.t,
            users=requests.users,
            candidates=requests.candidates,
            utilities=self._score(requests.users, requests.candidates, topics),
            values=self._values(requests.candidates),
            topics=topics,
        )

    def utilities(
        self, users: np.ndarray, candidates: np.ndarray, with_boredom: bool = True
    ) -> np.ndarray:
        """True utilities s_ui = beta <theta_u, phi_i> + q_i - boredom_u(topic_i): (n, C)."""
        with_boredom = check_flag("with_boredom", with_boredom)
        topics = self.items.topic.take(candidates) if with_boredom else None
        return self._score(users, candidates, topics)

    def _score(
        self,
        users: np.ndarray,
        candidates: np.ndarray,
        topics: np.ndarray | None,
        index: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        return true_utilities(
            self.users, self.items, self.config.affinity_scale, users, candidates, topics, index
        )

    def _values(
        self, candidates: np.ndarray, index: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray | None:
        if self.config.reward != "engagement":
            return None
        return item_rows(self.items.engagement, candidates, index)

    def observe(self, requests: Requests) -> dict[str, np.ndarray]:
        """What the agent sees of a batch of requests (ids, features, history; no utilities).

        Keys: ``user_id`` (n, 1), ``user_features`` (n, f_u), ``history`` (n, H),
        ``candidate_ids`` (n, C), ``candidate_features`` (n, C, f_i), ``candidate_topics`` (n, C).
        (``user_id`` has a trailing axis of 1 so that one request's observation has no 0-d
        entry: RL libraries such as Stable-Baselines3 cannot take 0-d observations.)
        """
        users, cands = requests.users, requests.candidates
        return {
            "user_id": users[:, None],
            "user_features": self.users.features.take(users, axis=0),
            "history": self.users.history.take(users, axis=0),
            "candidate_ids": cands,
            "candidate_features": item_rows(self.items.features, cands, requests.index),
            "candidate_topics": requests.topics,
        }

    def observe_one(self, requests: Requests) -> dict[str, np.ndarray]:
        """What the agent sees of a batch of one request, without the batch axis: ``observe``'s
        first row (``user_id`` (1,), ``candidate_features`` (C, f_i), ...), gathered directly."""
        if len(requests) != 1:
            raise ValueError(f"observe_one takes one request, got {len(requests)}")
        user = int(requests.users[0])
        candidates = requests.candidates[0]
        return {
            "user_id": requests.users[:1],
            "user_features": self.users.features[user].copy(),
            "history": self.users.history[user].copy(),
            "candidate_ids": candidates,
            "candidate_features": self.items.features.take(candidates, axis=0),
            "candidate_topics": requests.topics[0],
        }

    # ------------------------------------------------------------------ responses

    def oracle(self, requests: Requests) -> tuple[np.ndarray, np.ndarray]:
        """The exact best slate per request ((n, k) positions, -1 empty) and its value (n,)."""
        return self.choice.oracle(requests.utilities, requests.values)

    def slot_probabilities(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        """(n, k) exact click probability of each slot of ``slates`` (positions, -1 empty; a
        repeated position is shown once, at its first slot, as in the environments)."""
        return self._slot_probabilities(requests, self._slates(requests, slates))

    def expected_reward(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        """(n,) exact expected reward of ``slates`` under the true state at request time."""
        slates = self._slates(requests, slates)
        probs = self._slot_probabilities(requests, slates)
        return expected_reward(probs, slot_values(requests, slates))

    def _slates(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        c = requests.candidates.shape[1]
        return as_slates(slates, len(requests), self.config.slate_size, c)

    def _slot_probabilities(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        shown = slates >= 0
        return self.choice.slot_probabilities(at_slots(requests.utilities, slates), shown)

    def respond(self, requests: Requests, slates: np.ndarray, *, checked: bool = False) -> Response:
        """Serve ``slates`` (n, k) of candidate positions (-1: empty slot; a repeated position
        is shown once, at its first slot) and advance the clock. ``checked``: the slates were
        already checked and their repeats emptied (``driftrec.slates.as_slates``, or the
        environments' action check): skip doing it again.

        Effects: sampled clicks; clicked topics bore the user, and so do topics a slate repeats
        (``monotony_boredom``); every request decays boredom;
        click histories and popularity update; feedback-loop drift sees the clicks; the clock
        advances by n and drift processes fire.
        """
        if not checked:
            slates = self._slates(requests, slates)
        if requests.t != self.clock:
            raise RuntimeError(
                f"these requests were made at t={requests.t} but the world is at t={self.clock}: "
                "serve each batch of requests once, in order"
            )
        cfg = self.config
        n = len(requests)
        shown = slates >= 0
        probs = self._slot_probabilities(requests, slates)
        values = slot_values(requests, slates)
        expected = expected_reward(probs, values)
        oracle_expected = self.choice.oracle_value(requests.utilities, requests.values)
        # One sum of the served and the oracle's expected rewards (one entry each for a single
        # request): NaN or infinity in a served item's utility or value, or in a row's top
        # utilities (clicks; an item-dependent reward's oracle passes a NaN item over), makes
        # the sum not finite.
        one = n == 1
        total = oracle_expected[0] + expected[0] if one else oracle_expected.sum() + expected.sum()
        if not math.isfinite(total):
            raise self._not_finite(requests, oracle_expected + expected)
        true_slot = sample_slots(probs, self.rng["responses"])

        clicked = true_slot >= 0
        true_item = slot_items(requests, slates, true_slot)
        self._consume(requests.users, true_item, clicked)
        if cfg.monotony_boredom:
            tire(self.users.boredom, requests, slates, cfg.monotony_boredom)

        observed = true_slot
        for process, memory in zip(self.processes, self.memory, strict=True):
            observed = process.corrupt_feedback(
                self.clock, observed, shown, memory, self.rng["drift"]
            )
        # Without click noise the observed click is the true one: the same items.
        observed_item = (
            true_item if observed is true_slot else slot_items(requests, slates, observed)
        )
        if cfg.reward == "click":
            reward = (observed >= 0).astype(np.float32)
        else:
            sigma = cfg.engagement_noise
            noise = np.exp(sigma * self.rng["responses"].standard_normal(n) - sigma**2 / 2)
            value = self.items.engagement.take(np.maximum(observed_item, 0)) * noise
            reward = np.where(observed >= 0, value, 0.0).astype(np.float32)
        events = self._advance(self.clock + n)
        return Response(
            click_slot=observed,
            true_click_slot=true_slot,
            clicked_item=observed_item,
            reward=reward,
            expected_reward=expected,
            oracle_expected_reward=oracle_expected,
            events=events,
        )

    def _not_finite(self, requests: Requests, expected: np.ndarray) -> FloatingPointError:
        bad = int((~np.isfinite(expected)).sum())
        processes = ", ".join(repr(p) for p in self.processes) or "none"
        return FloatingPointError(
            f"the world's true utilities are not finite at t={self.clock} ({bad} of "
            f"{len(requests)} requests): a user or item state holds NaN, infinity or values too "
            f"large for the choice model. Drift processes of this world: {processes}. A "
            "process's parameters or its advance() made it so "
            "(driftrec.simulators.drift.check_drift_process tests a process for it)"
        )

    def _consume(self, users: np.ndarray, items: np.ndarray, clicked: np.ndarray) -> None:
        clicks = consume(self.users, self.items.topic, self.config, users, items, clicked)
        if clicks is None:
            return
        u, i = clicks
        self.retrieval.record_clicks(i, self.clock)
        for process, memory in zip(self.processes, self.memory, strict=True):
            process.on_consumption(self.users, self.items, memory, u, i, self.rng["drift"])
            if process.rebuilds:
                rebuild_after(process, self.retrieval, self.activity)

    def churn(self, users: np.ndarray) -> None:
        """Users ``users`` leave for good."""
        users = np.asarray(users, dtype=np.int64)
        users = sorted_unique(users[self.users.alive[users]])
        if len(users):
            self.activity.churned(users, self.clock)
            self.users.alive[users] = False

    def advance(self, t: int) -> tuple[DriftEvent, ...]:
        """Move the clock to ``t`` (no requests served), firing the drift scheduled up to it."""
        t = check_time("t", t, minimum=0)
        if t < self.clock:
            raise ValueError(f"the clock only moves forward: now {self.clock}, asked for {t}")
        return self._advance(t)

    def _advance(self, t: int) -> tuple[DriftEvent, ...]:
        """:meth:`advance` to a clock ``t >= self.clock`` known to be valid (serving)."""
        t0, self.clock = self.clock, t
        events: list[DriftEvent] = []
        # Scheduled changes of different processes happen in time order: the interval is cut at
        # every regime boundary inside it (one process's advance is split-invariant by contract).
        for start, end in itertools.pairwise([t0, *self.regimes.between(t0, t), t]):
            for process, memory in zip(self.processes, self.memory, strict=True):
                fired = process.advance(
                    self.users, self.items, memory, start, end, self.rng["drift"]
                )
                if fired:
                    rebuild_after(process, self.retrieval, self.activity)
                events.extend(fired)
        if any(e.items for e in events):  # items released or retired, whatever the touches
            self.retrieval.catalogue_changed()
        events.sort(key=lambda e: e.t)
        return tuple(events)

    # ------------------------------------------------------------------ ground truth

    def regime_boundaries(self, until: int) -> list[int]:
        """Clocks at which a new regime starts, up to ``until`` (scheduled drift, or equal
        slices of ``regime_every`` requests for continuous drift)."""
        return self.regimes.boundaries(until)

    def regime(self, t: int | None = None) -> int:
        """Index of the regime in force at ``t`` (default: now); 0 before any change."""
        return self.regimes.regime(self.clock if t is None else t)

    def snapshot(self) -> World:
        """An independent copy of the whole world (state, clock and random streams)."""
        return copy.deepcopy(self)

    def probe_set(self, n: int, with_boredom: bool = False) -> ProbeSet:
        """:func:`driftrec.simulators.probes.probe_set` of this world."""
        return probe_set(self, n, with_boredom)

    def log_interactions(
        self, n: int, policy: LoggingPolicy = "uniform", temperature: float = 1.0
    ) -> LoggedInteractions:
        """:func:`driftrec.simulators.logged.log_interactions` of this world."""
        return log_interactions(self, n, policy, temperature)

"""The world: a seeded, vectorised population and catalogue advanced by a request clock.

The world clock ``t`` counts recommendation requests served. A batch of ``n`` requests is served
at clocks ``t .. t+n-1`` against the state at ``t``; afterwards the clock moves to ``t+n`` and
every drift process applies what was scheduled in ``(t, t+n]``. (So a drift scheduled inside a
batch takes effect for the next batch: the resolution of the clock is the batch size.)

All randomness comes from ``numpy.random.Generator`` streams spawned from one ``SeedSequence``:
one stream each for drawing the world, serving requests, sampling responses, drift, probes and
logged data, so that e.g. drawing a probe set never changes the trajectory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from driftrec.simulators.choice import (
    expected_reward,
    make_choice_model,
    oracle_value,
    sample_slots,
)
from driftrec.simulators.config import WorldConfig
from driftrec.simulators.drift import DriftEvent, DriftProcess, check_processes
from driftrec.simulators.population import NEVER, ItemCatalogue, UserPopulation
from driftrec.validation import check_integer

__all__ = ["LoggedInteractions", "ProbeSet", "Requests", "Response", "World"]

SeedLike = int | np.random.SeedSequence | None
_FEW_REQUESTS = 4
_STREAMS = ("world", "requests", "responses", "drift", "probes", "logging")


@dataclass
class Requests:
    """A batch of recommendation requests and the true utilities behind them.

    Attributes:
        t: world clock of the first request (request i is served at t + i).
        users: (n,) int64 user ids.
        candidates: (n, C) int64 candidate item ids, distinct within a row.
        utilities: (n, C) float32 true utility of each candidate for its user, at request time.
        values: (n, C) float32 value of a click on each candidate (engagement reward), or None
            when the reward is the click itself.
        topics: (n, C) int64 topic of each candidate.
    """

    t: int
    users: np.ndarray
    candidates: np.ndarray
    utilities: np.ndarray
    values: np.ndarray | None
    topics: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Requests:
        """The requests at ``rows`` (same clock ``t``: serve them instead of the whole batch)."""
        return Requests(
            t=self.t,
            users=self.users[rows],
            candidates=self.candidates[rows],
            utilities=self.utilities[rows],
            values=None if self.values is None else self.values[rows],
            topics=self.topics[rows],
        )


@dataclass
class Response:
    """What happened when a batch of slates was served.

    Attributes:
        click_slot: (n,) int64 slot the agent observes as clicked, -1 for none (after any
            click noise or bot traffic).
        true_click_slot: (n,) int64 slot the user really clicked, -1 for none.
        clicked_item: (n,) int64 item id of the observed click, -1 for none.
        reward: (n,) float32 observed reward (1 per click, or the sampled engagement).
        expected_reward: (n,) float64 exact expected reward of the served slate.
        oracle_expected_reward: (n,) float64 expected reward of the best slate for the request.
        events: drift events that fired when the clock advanced past this batch.
    """

    click_slot: np.ndarray
    true_click_slot: np.ndarray
    clicked_item: np.ndarray
    reward: np.ndarray
    expected_reward: np.ndarray
    oracle_expected_reward: np.ndarray
    events: tuple[DriftEvent, ...]


def check_seed(seed: SeedLike) -> SeedLike:
    """A seed as a Python int >= 0 (any integral type), a ``SeedSequence``, or None."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    return check_integer("seed", seed, minimum=0)


class World:
    """A drifting recommendation world.

    Args:
        config: sizes, choice model and population dynamics.
        processes: drift processes, applied in order as the clock advances.
        seed: seed of the one ``SeedSequence`` every random stream is spawned from.
        regime_every: for continuous drift, regimes are equal slices of this many requests
            (used for probes and forgetting); scheduled processes define regimes themselves.

    Example:
        >>> from driftrec.simulators import World, WorldConfig
        >>> world = World(WorldConfig(num_users=200, num_items=300, num_candidates=20,
        ...                           slate_size=5), seed=0)
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
        processes: Sequence[DriftProcess] = (),
        seed: SeedLike = None,
        regime_every: int | None = None,
    ) -> None:
        if not isinstance(config, WorldConfig):
            raise TypeError(f"config must be a WorldConfig, got {type(config).__name__}")
        self.config = config
        self.processes = tuple(processes)
        config.check_fits_in_memory()
        check_processes(config, self.processes)
        self.seed = check_seed(seed)
        if regime_every is not None:
            regime_every = check_integer("regime_every", regime_every, minimum=1)
        self.regime_every = regime_every
        root = self.seed
        if not isinstance(root, np.random.SeedSequence):
            root = np.random.SeedSequence(root)
        self.rng = {
            name: np.random.Generator(np.random.PCG64(s))
            for name, s in zip(_STREAMS, root.spawn(len(_STREAMS)), strict=True)
        }
        self.users = UserPopulation.draw(config, self.rng["world"])
        self.items = ItemCatalogue.draw(config, self.rng["world"])
        self.memory: list[dict] = [{} for _ in self.processes]
        for process, memory in zip(self.processes, self.memory, strict=True):
            process.prepare(config, self.users, self.items, memory, self.rng["world"])
        self.clock = 0
        self.choice = make_choice_model(
            config.choice_model, config.slate_size, config.no_click_utility, config.position_bias
        )
        self._decay = 0.5 ** (1.0 / config.popularity_half_life)
        self._recent_clicks = np.zeros(config.num_items)
        self._user_cdf: np.ndarray | None = None
        self._user_cdf_key: tuple = ()
        self._cdf_until = 0
        self._churned = 0
        self._pools: list[tuple[np.ndarray, int]] | None = None
        self._pools_until = 0
        self._popularity_t = 0

    # ------------------------------------------------------------------ requests

    def present_users(self, t: int | None = None) -> np.ndarray:
        """(n_users,) bool: arrived by ``t`` (default: now) and not churned."""
        t = self.clock if t is None else t
        return (self.users.arrival <= t) & self.users.alive

    def _user_weights_cdf(self) -> np.ndarray:
        users = self.users
        key = (users.cohort_activity.tobytes(), self._churned)
        if self._user_cdf is None or self._user_cdf_key != key or self.clock >= self._cdf_until:
            later = users.arrival[users.arrival > self.clock]
            next_arrival = int(later.min()) if len(later) else NEVER
            weights = users.activity * users.cohort_activity[users.cohort] * self.present_users()
            self._user_cdf = np.cumsum(weights)
            if self._user_cdf[-1] <= 0:
                raise RuntimeError(
                    f"no user can make a request at t={self.clock}: every user has churned, "
                    "not arrived yet, or belongs to an inactive cohort. This world cannot go "
                    "on: draw a new one (an environment's reset(seed=...); a plain reset() "
                    "keeps this world), and for long runs lower churn_prob or raise num_users"
                )
            self._user_cdf_key = key
            self._cdf_until = next_arrival
        return self._user_cdf

    def sample_users(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` requesting users, proportional to activity among present users: (n,)."""
        cdf = self._user_weights_cdf()
        rng = self.rng["requests"] if rng is None else rng
        ids = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        return np.minimum(ids, len(cdf) - 1)

    def _retrieval_pools(self) -> list[tuple[np.ndarray, int]]:
        """Disjoint (pool, count) pairs: popular, fresh and random candidates."""
        cfg = self.config
        if self._pools is not None and self.clock < self._pools_until:
            return self._pools
        items = self.items
        self.items.popularity = (
            items.popularity * self._decay ** (self.clock - self._popularity_t)
            + self._recent_clicks
        )
        self._recent_clicks[:] = 0
        self._popularity_t = self.clock
        live = np.flatnonzero(items.available(self.clock))
        if len(live) < cfg.num_candidates:
            raise RuntimeError(
                f"only {len(live)} items are live at t={self.clock}, fewer than "
                f"num_candidates={cfg.num_candidates}"
            )
        n_pop = min(round(cfg.num_candidates * cfg.popular_fraction), cfg.popular_pool)
        n_fresh = min(round(cfg.num_candidates * cfg.fresh_fraction), cfg.fresh_pool)
        taken = np.zeros(len(live), dtype=bool)
        pop_size = min(cfg.popular_pool, len(live))
        pop = _top(items.popularity[live], pop_size)
        taken[pop] = True
        rest = np.flatnonzero(~taken)
        fresh = rest[_top(items.arrival[live[rest]], cfg.fresh_pool)]
        taken[fresh] = True
        other = np.flatnonzero(~taken)
        n_pop, n_fresh = min(n_pop, len(pop)), min(n_fresh, len(fresh))
        n_rand = cfg.num_candidates - n_pop - n_fresh
        if n_rand > len(other):  # tiny catalogues: fall back to one uniform pool
            pools = [(live, cfg.num_candidates)]
        else:
            pools = [(live[pop], n_pop), (live[fresh], n_fresh), (live[other], n_rand)]
        self._pools = [(pool, count) for pool, count in pools if count > 0]
        self._pools_until = self.clock + cfg.retrieval_refresh
        return self._pools

    def make_requests(
        self,
        users: np.ndarray,
        rng: np.random.Generator | None = None,
        with_boredom: bool = True,
    ) -> Requests:
        """Retrieve candidates for ``users`` (n,) and score them with the true utilities.

        Each pool contributes a uniformly random subset of its items: a request takes a
        contiguous window of a fresh random permutation of the pool, which is distinct within
        the row and marginally uniform, at O(n C) cost (for a handful of requests, a direct
        draw without replacement per request is cheaper than the permutation).
        """
        rng = self.rng["requests"] if rng is None else rng
        users = np.array(users, dtype=np.int64)  # a copy: callers may reuse their array
        candidates = np.empty((len(users), self.config.num_candidates), dtype=np.int64)
        offset = 0
        for pool, count in self._retrieval_pools():
            block = candidates[:, offset : offset + count]
            if len(users) <= _FEW_REQUESTS:  # a permutation of the pool would dominate the cost
                for row in block:
                    row[:] = rng.choice(pool, count, replace=False)
            else:
                shuffled = pool[rng.permutation(len(pool))]
                extended = np.concatenate([shuffled, shuffled[:count]])
                start = rng.integers(0, len(pool), len(users))
                block[:] = extended.take(start[:, None] + np.arange(count))
            offset += count
        topics = self.items.topic.take(candidates)
        return Requests(
            t=self.clock,
            users=users,
            candidates=candidates,
            utilities=self._utilities(users, candidates, topics if with_boredom else None),
            values=self.items.engagement.take(candidates)
            if self.config.reward == "engagement"
            else None,
            topics=topics,
        )

    def rescore(self, requests: Requests) -> Requests:
        """The same users and candidates (and clock), scored under this world's state: for
        another world's requests, e.g. on a :meth:`snapshot` of an earlier state."""
        topics = self.items.topic.take(requests.candidates)
        return Requests(
            t=requests.t,
            users=requests.users,
            candidates=requests.candidates,
            utilities=self._utilities(requests.users, requests.candidates, topics),
            values=self.items.engagement.take(requests.candidates)
            if self.config.reward == "engagement"
            else None,
            topics=topics,
        )

    def utilities(
        self, users: np.ndarray, candidates: np.ndarray, with_boredom: bool = True
    ) -> np.ndarray:
        """True utilities s_ui = beta <theta_u, phi_i> + q_i - boredom_u(topic_i): (n, C)."""
        topics = self.items.topic.take(candidates) if with_boredom else None
        return self._utilities(users, candidates, topics)

    def _utilities(
        self, users: np.ndarray, candidates: np.ndarray, topics: np.ndarray | None
    ) -> np.ndarray:
        items = self.items
        phi = items.phi.take(candidates, axis=0)  # (n, C, d): the memory-bound gather
        affinity = np.matmul(phi, self.users.theta.take(users, axis=0)[:, :, None])[:, :, 0]
        util = self.config.affinity_scale * affinity + items.quality.take(candidates)
        if topics is not None:
            flat = users[:, None] * self.config.num_topics + topics
            util -= self.users.boredom.ravel().take(flat)
        return util

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
            "candidate_features": self.items.features.take(cands, axis=0),
            "candidate_topics": requests.topics,
        }

    # ------------------------------------------------------------------ responses

    def oracle(self, requests: Requests) -> tuple[np.ndarray, np.ndarray]:
        """The exact best slate per request ((n, k) positions, -1 empty) and its value (n,)."""
        return self.choice.oracle(requests.utilities, requests.values)

    def slot_probabilities(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        """(n, k) exact click probability of each slot of ``slates`` (positions, -1 empty)."""
        shown = slates >= 0
        slot_util = np.take_along_axis(requests.utilities, np.maximum(slates, 0), axis=1)
        return self.choice.slot_probabilities(slot_util, shown)

    def expected_reward(self, requests: Requests, slates: np.ndarray) -> np.ndarray:
        """(n,) exact expected reward of ``slates`` under the true state at request time."""
        probs = self.slot_probabilities(requests, slates)
        return expected_reward(probs, _slot_values(requests, slates))

    def respond(self, requests: Requests, slates: np.ndarray) -> Response:
        """Serve ``slates`` (n, k) of candidate positions (-1: empty slot) and advance the clock.

        Effects: sampled clicks; clicked topics bore the user (and every request decays boredom);
        click histories and popularity update; feedback-loop drift sees the clicks; the clock
        advances by n and drift processes fire.
        """
        if requests.t != self.clock:
            raise RuntimeError(
                f"these requests were made at t={requests.t} but the world is at t={self.clock}: "
                "serve each batch of requests once, in order"
            )
        cfg = self.config
        n = len(requests)
        slates = np.asarray(slates, dtype=np.int64)
        shown = slates >= 0
        probs = self.slot_probabilities(requests, slates)
        slot_values = _slot_values(requests, slates)
        expected = expected_reward(probs, slot_values)
        oracle_expected = oracle_value(self.choice, requests.utilities, requests.values)
        true_slot = sample_slots(probs, self.rng["responses"])

        rows = np.arange(n)
        clicked = true_slot >= 0
        position = slates[rows, np.maximum(true_slot, 0)]
        true_item = np.where(clicked, requests.candidates[rows, np.maximum(position, 0)], -1)
        self._consume(requests.users, true_item, clicked)

        observed = true_slot
        for process in self.processes:
            observed = process.corrupt_feedback(self.clock, observed, shown, self.rng["drift"])
        observed_pos = slates[rows, np.maximum(observed, 0)]
        observed_item = np.where(
            observed >= 0, requests.candidates[rows, np.maximum(observed_pos, 0)], -1
        )
        if cfg.reward == "click":
            reward = (observed >= 0).astype(np.float32)
        else:
            sigma = cfg.engagement_noise
            noise = np.exp(sigma * self.rng["responses"].standard_normal(n) - sigma**2 / 2)
            value = self.items.engagement.take(np.maximum(observed_item, 0)) * noise
            reward = np.where(observed >= 0, value, 0.0).astype(np.float32)
        events = self.advance(self.clock + n)
        return Response(
            click_slot=observed,
            true_click_slot=true_slot,
            clicked_item=observed_item,
            reward=reward,
            expected_reward=expected,
            oracle_expected_reward=oracle_expected,
            events=events,
        )

    def _consume(self, users: np.ndarray, items: np.ndarray, clicked: np.ndarray) -> None:
        cfg = self.config
        state = self.users
        if cfg.boredom_decay < 1.0:
            state.boredom[users] *= np.float32(cfg.boredom_decay)
        u, i = users[clicked], items[clicked]
        if len(u) == 0:
            return
        if cfg.boredom_increment:
            np.add.at(state.boredom, (u, self.items.topic[i]), np.float32(cfg.boredom_increment))
        state.history[u] = np.concatenate([i[:, None], state.history[u, :-1]], axis=1)
        self._recent_clicks += np.bincount(i, minlength=cfg.num_items)
        for process, memory in zip(self.processes, self.memory, strict=True):
            process.on_consumption(state, self.items, memory, u, i, self.rng["drift"])

    def churn(self, users: np.ndarray) -> None:
        """Users ``users`` leave for good."""
        if len(users):
            self.users.alive[users] = False
            self._churned += 1

    def advance(self, t: int) -> tuple[DriftEvent, ...]:
        """Move the clock to ``t`` (no requests served), firing the drift scheduled up to it."""
        t = check_integer("t", t, minimum=0)
        if t < self.clock:
            raise ValueError(f"the clock only moves forward: now {self.clock}, asked for {t}")
        t0, self.clock = self.clock, t
        events: list[DriftEvent] = []
        for process, memory in zip(self.processes, self.memory, strict=True):
            events.extend(process.advance(self.users, self.items, memory, t0, t, self.rng["drift"]))
        if any(e.items for e in events):
            self._pools = None
        events.sort(key=lambda e: e.t)
        return tuple(events)

    # ------------------------------------------------------------------ ground truth

    def regime_boundaries(self, until: int) -> list[int]:
        """Clocks at which a new regime starts, up to ``until`` (scheduled drift, or equal
        slices of ``regime_every`` requests for continuous drift)."""
        bounds = {b for p in self.processes for b in p.boundaries(until)}
        if self.regime_every:
            bounds.update(range(self.regime_every, until + 1, self.regime_every))
        return sorted(bounds)

    def regime(self, t: int | None = None) -> int:
        """Index of the regime in force at ``t`` (default: now); 0 before any change."""
        t = self.clock if t is None else t
        return len(self.regime_boundaries(t))

    def snapshot(self) -> World:
        """An independent copy of the whole world (state, clock and random streams)."""
        return copy.deepcopy(self)

    def probe_set(self, n: int, with_boredom: bool = False) -> ProbeSet:
        """A fixed set of ``n`` requests frozen at the current true state.

        Utilities exclude boredom by default, so the probe measures how well an agent knows
        the users' lasting preferences in this regime. Drawn from the probe stream: taking a
        probe never changes the world's trajectory.
        """
        rng = self.rng["probes"]
        requests = self.make_requests(self.sample_users(n, rng), rng, with_boredom)
        return ProbeSet(
            observation=self.observe(requests),
            requests=requests,
            choice=self.choice,
            regime=self.regime(),
            rng_seed=int(rng.integers(2**63)),
        )

    def log_interactions(
        self,
        n: int,
        policy: str | Callable[[dict[str, np.ndarray]], np.ndarray] = "uniform",
        temperature: float = 1.0,
    ) -> LoggedInteractions:
        """Logged interactions under a logging policy, with propensities, drawn from the current
        state as if they happened just before now (the world is not changed).

        Args:
            n: number of logged requests.
            policy: ``"uniform"`` (uniformly random slates), ``"softmax"`` (Plackett-Luce over
                the true utilities / temperature, a noisy production ranker) or a callable that
                maps an observation batch to scores (n, C) used the same way.
            temperature: softness of the Plackett-Luce logging policy.

        Returns:
            The observations, slates and their propensities (probability of the whole ordered
            slate under the logging policy), observed clicks and rewards.
        """
        rng = self.rng["logging"]
        requests = self.make_requests(self.sample_users(n, rng), rng, with_boredom=False)
        observation = self.observe(requests)
        if policy == "uniform":
            scores = np.zeros(requests.utilities.shape)
        elif policy == "softmax":
            scores = requests.utilities / temperature
        elif callable(policy):
            scores = np.asarray(policy(observation), dtype=np.float64) / temperature
        else:
            raise ValueError(
                f"unknown logging policy {policy!r}; use 'uniform', 'softmax' or a callable"
            )
        k = self.config.slate_size
        gumbel = scores - np.log(-np.log(rng.random(scores.shape)))
        slates = np.argsort(-gumbel, axis=1)[:, :k]
        chosen = np.take_along_axis(scores, slates, axis=1)
        shifted = scores - scores.max(axis=1, keepdims=True)
        total = np.exp(shifted).sum(axis=1, keepdims=True)
        exp_chosen = np.exp(chosen - scores.max(axis=1, keepdims=True))
        remaining = total - np.concatenate(
            [np.zeros((n, 1)), np.cumsum(exp_chosen, axis=1)[:, :-1]], axis=1
        )
        propensity = np.prod(exp_chosen / remaining, axis=1)
        probs = self.slot_probabilities(requests, slates)
        slot = sample_slots(probs, rng)
        rows = np.arange(n)
        if self.config.reward == "click":
            reward = (slot >= 0).astype(np.float32)
        else:
            value = requests.values[rows, slates[rows, np.maximum(slot, 0)]]
            reward = np.where(slot >= 0, value, 0.0).astype(np.float32)
        return LoggedInteractions(
            observation=observation,
            slates=slates,
            propensity=propensity,
            click_slot=slot,
            reward=reward,
            expected_reward=expected_reward(probs, _slot_values(requests, slates)),
        )


def _top(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest ``values`` (in no particular order)."""
    if n >= len(values):
        return np.arange(len(values))
    return np.argpartition(-values, n - 1)[:n]


def _slot_values(requests: Requests, slates: np.ndarray) -> np.ndarray | None:
    if requests.values is None:
        return None
    return np.take_along_axis(requests.values, np.maximum(slates, 0), axis=1)


@dataclass
class LoggedInteractions:
    """Interactions logged under a known policy (for pretraining and off-policy evaluation).

    Attributes:
        observation: observation batch as from ``World.observe`` (n rows).
        slates: (n, k) candidate positions shown.
        propensity: (n,) probability of the whole ordered slate under the logging policy.
        click_slot: (n,) clicked slot or -1.
        reward: (n,) observed reward.
        expected_reward: (n,) exact expected reward of each logged slate.
    """

    observation: dict[str, np.ndarray]
    slates: np.ndarray
    propensity: np.ndarray
    click_slot: np.ndarray
    reward: np.ndarray
    expected_reward: np.ndarray


class ProbeSet:
    """A fixed set of requests frozen in one regime, to score any policy on it exactly.

    Attributes:
        observation: what an agent sees for these requests (``World.observe`` keys).
        regime: the regime the probe was drawn in.
        oracle_expected_reward: (n,) value of the oracle slate per request.
        random_expected_reward: (n,) mean expected reward of uniformly random slates (a Monte
            Carlo mean over 64 slates per request with a fixed seed: the random baseline b_j).
    """

    def __init__(
        self,
        observation: dict[str, np.ndarray],
        requests: Requests,
        choice,
        regime: int,
        rng_seed: int,
        random_draws: int = 64,
    ) -> None:
        self.observation = observation
        self.requests = requests
        self.choice = choice
        self.regime = regime
        self.oracle_slates, self.oracle_expected_reward = choice.oracle(
            requests.utilities, requests.values
        )
        rng = np.random.default_rng(rng_seed)
        n, c = requests.utilities.shape
        k = choice.slate_size
        keys = rng.random((random_draws, n, c))
        subset = np.argpartition(keys, k - 1, axis=2)[:, :, :k] if k < c else np.argsort(keys)
        order = np.argsort(np.take_along_axis(keys, subset, axis=2), axis=2)
        draws = np.take_along_axis(subset, order, axis=2)
        self.random_expected_reward = np.mean([self.expected_reward(d) for d in draws], axis=0)

    def __len__(self) -> int:
        return len(self.requests)

    def expected_reward(self, slates: np.ndarray) -> np.ndarray:
        """(n,) exact expected reward of ``slates`` (n, k) of positions (-1: empty)."""
        slates = np.asarray(slates, dtype=np.int64)
        slot_util = np.take_along_axis(self.requests.utilities, np.maximum(slates, 0), axis=1)
        probs = self.choice.slot_probabilities(slot_util, slates >= 0)
        return expected_reward(probs, _slot_values(self.requests, slates))

    def normalised_reward(self, slates: np.ndarray) -> float:
        """Mean of expected / oracle reward over the probe (the P[e, j] entry of DESIGN 6)."""
        return float(np.mean(self.expected_reward(slates) / self.oracle_expected_reward))

    def click_probability(self) -> np.ndarray:
        """(n, C) relevance of each candidate: P(click) if it were shown alone in the top slot."""
        u = self.requests.utilities
        single = self.choice.slot_probabilities(u.reshape(-1, 1), np.ones((u.size, 1), bool))
        return single.reshape(u.shape)

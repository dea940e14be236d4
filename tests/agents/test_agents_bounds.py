"""Every real and size an agent accepts has an upper bound (and a lower one where the maths needs
it) checked at construction, so that no accepted value overflows, turns the model NaN or fails
in the allocator mid-run; devices are checked against what this process can use; transitions
with rewards the world cannot pay are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import make_env

from driftrec.agents import EWC, Distillation, Softmax, Transition, make_agent
from driftrec.agents.buffers import CumulativeStore, RecentWindow, ReplayBuffer
from driftrec.agents.examples import SlateExamples
from driftrec.agents.models.base import ItemBatch, UserBatch
from driftrec.agents.trainable import check_device

SIZES = {"num_users": 100, "num_items": 120, "num_candidates": 10, "slate_size": 3}


def _env(num_envs: int = 32):
    return make_env(num_envs, **SIZES)


def _run(agent, env, steps: int = 30) -> np.ndarray:
    """Run ``steps`` steps (pretraining first if the agent asks) and return its scores."""
    obs, _ = env.reset(seed=0)
    if getattr(agent, "pretrain_requests", 0):
        agent.pretrain(env.log_interactions(min(agent.pretrain_requests, 500)))
    for _ in range(steps):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        obs = next_obs
    return agent.scores(obs)


# ---------------------------------------------------------------- reals (finding 1)

TOO_LARGE = [
    ("distill", {"temperature": 1e308}, r"temperature must be in \[0\.001, 1000\], got 1e\+308"),
    ("distill", {"temperature": 1e-300}, r"temperature must be in \[0\.001, 1000\]"),
    ("distill", {"strength": 1e308}, r"strength must be in \[0, 1e\+06\]"),
    ("ewc", {"strength": 1e308}, r"strength must be in \[0, 1e\+06\]"),
    ("slateq", {"lr": 1e308}, r"lr must be in \(0, 10\]"),
    ("topk_reinforce", {"lr": 1e308}, r"lr must be in \(0, 10\]"),
    ("topk_reinforce", {"entropy": 1e308}, r"entropy must be in \[0, 1e\+06\]"),
    ("topk_reinforce", {"weight_cap": 1e300}, r"weight_cap must be in \(0, 1e\+06\]"),
    ("online", {"model": {"name": "mf", "init_std": 1e30}}, r"init_std must be in \[0, 10\]"),
    (
        "online",
        {"exploration": {"name": "softmax", "temperature": 1e-300}},
        r"temperature must be in \[1e-06, 1e\+06\]",
    ),
    (
        "online",
        {"exploration": {"name": "thompson", "scale": 1e300}},
        r"scale must be in \[0, 1000",
    ),
    (
        "online",
        {"exploration": {"name": "thompson", "prior": 5e-324}},
        r"prior must be in \[0\.001",
    ),
]


@pytest.mark.parametrize(("name", "params", "message"), TOO_LARGE, ids=lambda v: str(v)[:40])
def test_reals_that_would_overflow_mid_run_are_refused_naming_the_range(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_agent(name, _env(), **params)


AT_THE_BOUNDS = [
    ("ewc", {"strength": 1e6, "every": 64, "fisher_samples": 64, "micro_batch": 32}),
    ("distill", {"strength": 1e6, "temperature": 1e-3, "every": 64, "micro_batch": 32}),
    ("distill", {"strength": 1e6, "temperature": 1e3, "every": 64, "micro_batch": 32}),
    ("slateq", {"lr": 10.0}),
    ("slateq", {"lr": 10.0, "slate_method": "top_k"}),
    ("topk_reinforce", {"lr": 10.0, "entropy": 1e6, "weight_cap": 1e6}),
    ("online", {"model": {"name": "mf", "init_std": 10.0}, "micro_batch": 32}),
]


@pytest.mark.parametrize(("name", "params"), AT_THE_BOUNDS, ids=lambda v: str(v)[:40])
def test_the_largest_accepted_values_keep_the_scores_finite(name, params):
    """Adam at the bounds (SlateQ at lr 1 went NaN: its slate value divided underflowed
    exponentials of large logits, 0 / 0; it now takes a softmax)."""
    assert np.isfinite(_run(make_agent(name, _env(), **params), _env(), steps=60)).all()


def test_ewc_declares_the_cost_of_its_fisher_estimate():
    ewc = EWC(fisher_samples=100, batch_size=32)
    assert ewc.consolidation_cost(1000) == (4, 100)  # 100 requests in 4 backward passes
    assert ewc.consolidation_cost(10) == (1, 10)
    assert ewc.consolidation_cost(0) == (0, 0)
    assert Distillation().consolidation_cost(1000) == (0, 0)  # a copy of the model, no pass


# ---------------------------------------------------------------- sizes (finding 2)

SIZES_TOO_LARGE = [
    ("online", {"model": {"name": "mf", "dim": 10**12}}, r"dim must be an integer <= 4096"),
    ("online", {"model": {"name": "mf", "initial_rows": 10**12}}, r"initial_rows must be an"),
    ("popularity", {"window": 10**12}, r"window must be an integer <= 100000000"),
]


@pytest.mark.parametrize(("name", "params", "message"), SIZES_TOO_LARGE, ids=lambda v: str(v)[:40])
def test_sizes_beyond_memory_are_refused_naming_the_field(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_agent(name, _env(), **params)


@pytest.mark.parametrize(
    "build",
    [lambda: RecentWindow(10**15), lambda: ReplayBuffer(10**15), lambda: CumulativeStore(10**15)],
)
def test_stores_refuse_capacities_beyond_memory(build):
    with pytest.raises(ValueError, match=r"(capacity|max_size) must be an integer <= 100000000"):
        build()


def _examples(n: int, start: int = 0) -> SlateExamples:
    env = _env(n)
    env.reset(seed=0)
    logged = env.log_interactions(n)
    examples = SlateExamples.from_logged(logged)
    examples.user_id[:] = np.arange(start, start + n)  # a row's identity, to check the order
    return examples


def test_stores_allocate_as_they_fill_and_keep_their_semantics():
    """A capacity of 10**8 costs memory only as examples arrive (it allocated all of it at the
    first add), and the stores read back exactly what a small capacity would."""
    window, big_window = RecentWindow(3000), RecentWindow(10**8)
    replay = ReplayBuffer(10**8)
    for start in range(0, 4000, 500):
        rows = _examples(500, start)
        window.add(rows)
        big_window.add(rows)
        replay.add(rows, np.random.default_rng(0))
    assert len(big_window.data) < 10_000 and len(replay.data) < 10_000
    np.testing.assert_array_equal(window.recent().user_id, np.arange(1000, 4000))
    np.testing.assert_array_equal(big_window.recent(2500).user_id, np.arange(1500, 4000))
    np.testing.assert_array_equal(np.sort(replay.data.user_id[: len(replay)]), np.arange(4000))


def test_popularity_window_grows_its_record_and_counts_the_last_window():
    env = _env(64)
    agent = make_agent("popularity", env, window=2000)
    obs, _ = env.reset(seed=0)
    clicked = []
    for _ in range(50):  # 3,200 requests: the record grows past 1,024 and wraps
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        slot = info["click_slot"]
        items = obs["candidate_ids"][np.arange(len(slot)), action[np.arange(len(slot)), slot]]
        clicked.append(np.where(slot >= 0, items, -1))
        obs = next_obs
    last = np.concatenate(clicked)[-2000:]
    expected = np.bincount(last[last >= 0], minlength=len(agent.counts))
    np.testing.assert_array_equal(agent.counts, expected)
    assert len(agent.ring) == 2000
    assert len(make_agent("popularity", env, window=10**8).ring) <= 1024


# ---------------------------------------------------------------- devices (finding 3)

UNAVAILABLE = ["mps", "meta", "cpu:1", "xpu"]
if not torch.cuda.is_available():
    UNAVAILABLE += ["cuda", "cuda:0"]
if torch.cuda.device_count() < 8:
    UNAVAILABLE += ["cuda:7"]


@pytest.mark.parametrize("device", UNAVAILABLE)
def test_devices_this_process_cannot_use_are_refused_listing_those_it_can(device):
    with pytest.raises(ValueError, match=r"device .* not available here: device must be one of"):
        check_device(device)
    with pytest.raises(ValueError, match=r"\['cpu'"):
        make_agent("online", _env(), device=device)
    with pytest.raises(ValueError, match=r"device"):
        make_agent("slateq", _env(), device=device)


@pytest.mark.parametrize("device", ["cpu", "cpu:0", torch.device("cpu")])
def test_the_cpu_is_always_a_device(device):
    assert check_device(device).type == "cpu"
    make_agent("online", _env(), device=device)


# ---------------------------------------------------------------- exploration (finding 4)


class _FixedScores:
    """A ranker whose scores are given (exploration reads nothing else of it)."""

    def __init__(self, scores: np.ndarray) -> None:
        self._scores = torch.from_numpy(scores)
        self.user_counts = np.zeros(0, dtype=np.int64)

    @property
    def models(self):  # pragma: no cover - softmax does not ask
        raise AssertionError("not needed")

    def score(self, users: UserBatch, items: ItemBatch) -> torch.Tensor:
        return self._scores


@pytest.mark.parametrize("magnitude", [1.0, 1e35])
def test_softmax_at_its_lowest_temperature_serves_the_greedy_first_slot(magnitude):
    """Scores 1e-3 apart at least (the keys' noise spans < 41 times the temperature, 1e-6), of
    ordinary size or as large as float32 holds: float32 keys overflowed to tied infinities at
    9e32 / 1e-6 (and at 1e-300 for any score), which agreed with greedy on 9% of requests."""
    rng = np.random.default_rng(0)
    scores = (rng.permuted(np.tile(np.arange(10.0), (2000, 1)), axis=1) * 1e-3 * magnitude).astype(
        np.float32
    )
    slates = Softmax(1e-6).select(_FixedScores(scores), None, None, 3, rng)
    np.testing.assert_array_equal(slates[:, 0], scores.argmax(axis=1))


def test_thompson_at_its_largest_noise_ranks_by_the_noise_not_by_position():
    """scale 1e300 overflowed the float32 noise and put position 9 first in every request; at
    the largest scale and smallest prior every position comes first about as often."""
    env = _env(256)
    agent = make_agent("online", env, exploration={"name": "thompson", "scale": 1e3, "prior": 1e-3})
    obs, _ = env.reset(seed=0)
    first = np.bincount(agent.act(obs)[:, 0], minlength=10)
    assert first.min() > 0 and first.max() < 256 // 4  # about 26 each of 256


# ---------------------------------------------------------------- rewards (finding 5)


def _step():
    env = _env(8)
    obs, _ = env.reset(seed=0)
    agent = make_agent("random", env)
    action = agent.act(obs)
    next_obs, reward, terminated, truncated, info = env.step(action)
    return agent, (obs, action, reward, next_obs, terminated, truncated, dict(info))


def _with(step, reward=None, click_slot=None):
    obs, action, old_reward, next_obs, terminated, truncated, info = step
    if click_slot is not None:
        info["click_slot"] = click_slot
    reward = old_reward if reward is None else reward
    return Transition(obs, action, reward, next_obs, terminated, truncated, info)


def test_a_reward_beyond_float32_is_out_of_range_not_nan():
    agent, step = _step()
    slot = np.zeros(8, dtype=np.int64)
    reward = np.ones(8)
    reward[3] = 1e300
    with pytest.raises(
        ValueError, match=r"reward is out of range: .* got \[1e\+300\] at rows \[3\]"
    ):
        agent.observe(_with(step, reward, slot))


def test_negative_rewards_and_rewards_without_a_click_are_refused():
    """docs/world.md: a click pays 1 or the clicked item's (positive) engagement; no click 0."""
    agent, step = _step()
    slot = np.zeros(8, dtype=np.int64)
    with pytest.raises(ValueError, match=r"reward must be >= 0 .* got \[-5\.0\] at rows \[2\]"):
        agent.observe(_with(step, np.where(np.arange(8) == 2, -5.0, 1.0), slot))
    slot[4] = -1
    with pytest.raises(ValueError, match=r"reward must be 0 where .* is -1 .* at rows \[4\]"):
        agent.observe(_with(step, np.ones(8, dtype=np.float32), slot))
    agent.observe(_with(step, np.where(slot >= 0, 1.0, 0.0), slot))  # consistent: accepted

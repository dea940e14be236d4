"""Unit tests of the pieces strategies are composed of: stores, triggers, losses, loss terms,
merges, optimisers, exploration, the popularity window and the acting fast path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from agent_helpers import assert_plain, make_env, rollout, through_torch_save
from river import drift

from driftrec.agents import (
    EWC,
    CumulativeStore,
    Distillation,
    DriftAlarm,
    Ensemble,
    EpsilonGreedy,
    EveryN,
    EveryStep,
    Greedy,
    MovingAverage,
    Never,
    RecentWindow,
    Replace,
    ReplayBuffer,
    Schedule,
    SlateExamples,
    Softmax,
    Thompson,
    Transition,
    WeightPenalty,
    make_agent,
    task_sizes,
)
from driftrec.agents.losses import TrainingBatch, click_loss, training_batch
from driftrec.agents.models import candidate_items, make_model, user_batch
from driftrec.agents.optimisers import LazyAdam
from driftrec.agents.scopes import resolve_scope
from driftrec.agents.triggers import adwin_state_dict, load_adwin_state_dict


def examples(ids: np.ndarray, k: int = 3) -> SlateExamples:
    """Examples whose user_id carries ``ids`` (to track which rows a store keeps)."""
    n = len(ids)
    return SlateExamples(
        user_id=np.asarray(ids, dtype=np.int64),
        user_features=np.zeros((n, 2), np.float32),
        history=np.full((n, 4), -1, np.int64),
        item_ids=np.tile(np.arange(k), (n, 1)),
        item_features=np.zeros((n, k, 2), np.float32),
        item_topics=np.zeros((n, k), np.int64),
        click_slot=np.full(n, -1, np.int64),
        reward=np.zeros(n, np.float32),
    )


# ---------------------------------------------------------------------------- stores


def test_recent_window_keeps_the_newest_in_order():
    window = RecentWindow(5)
    assert window.recent() is None
    window.add(examples(np.arange(3)))
    window.add(examples(np.arange(3, 7)))
    np.testing.assert_array_equal(window.recent().user_id, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(window.recent(2).user_id, [5, 6])
    window.add(examples(np.arange(7, 20)))  # more than the capacity at once
    np.testing.assert_array_equal(window.recent().user_id, [15, 16, 17, 18, 19])


def test_cumulative_store_grows_and_can_be_bounded():
    store = CumulativeStore()
    for start in range(0, 3_000, 500):
        store.add(examples(np.arange(start, start + 500)))
    np.testing.assert_array_equal(store.all().user_id, np.arange(3_000))
    bounded = CumulativeStore(max_size=700)
    for start in range(0, 3_000, 500):
        bounded.add(examples(np.arange(start, start + 500)))
    np.testing.assert_array_equal(bounded.all().user_id, np.arange(2_300, 3_000))


def test_replay_buffer_is_a_uniform_sample_of_everything_seen():
    """Reservoir sampling keeps each of n offered examples with probability capacity / n. Over
    20 seeds the mean share of the first half in a 1,000-slot buffer is 0.5 with standard error
    sqrt(0.25 / 1000 / 20) = 0.0035 (hypergeometric, a little less); tolerance 0.015."""
    shares = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        buffer = ReplayBuffer(1_000)
        for start in range(0, 20_000, 256):
            buffer.add(examples(np.arange(start, min(start + 256, 20_000))), rng)
        assert len(buffer) == 1_000 and buffer.seen == 20_000
        kept = buffer.data.user_id
        assert len(np.unique(kept)) == 1_000
        shares.append(np.mean(kept < 10_000))
    assert abs(np.mean(shares) - 0.5) < 0.015
    sample = buffer.sample(50, np.random.default_rng(0))
    assert len(sample) == 50 and np.isin(sample.user_id, kept).all()


# ---------------------------------------------------------------------------- triggers


def test_counting_triggers():
    assert EveryStep().fires(None, 0, 256, None) and not Never().fires(None, 0, 256, None)
    every = EveryN(1_000)
    fired = [
        after for after in range(256, 5_000, 256) if every.fires(None, after - 256, after, None)
    ]
    assert fired == [1_024, 2_048, 3_072, 4_096]
    schedule = Schedule((300, 2_000))
    assert [a for a in range(256, 5_000, 256) if schedule.fires(None, a - 256, a, None)] == [
        512,
        2_048,
    ]


def test_drift_alarm_fires_soon_after_a_change_and_holds():
    """A Bernoulli stream whose mean drops from 0.45 to 0.38 at request 20,000, fed in
    micro-batches of 256: ADWIN (delta 0.002) raises its alarm within 3,000 requests and not
    before the change (seed fixed)."""
    rng = np.random.default_rng(0)
    stream = np.concatenate([rng.random(20_000) < 0.45, rng.random(20_000) < 0.38])
    trigger = DriftAlarm("reward", hold=1_024)
    state = trigger.init_state()
    fired = []
    for start in range(0, len(stream), 256):
        values = stream[start : start + 256].astype(float)
        if trigger.fires(state, start, start + len(values), values):
            fired.append(start + len(values))
    first = state["alarm_at"][0]
    assert 20_000 < first <= 23_000, state["alarm_at"]
    # The alarm's micro-batch, then every micro-batch until 1,024 requests have passed.
    assert fired[:4] == [first + 256 * i for i in range(4)]
    assert len(fired) == 4 or fired[4] in state["alarm_at"]
    assert len(state["alarm_at"]) == state["alarms"]
    with pytest.raises(ValueError, match="signal's values"):
        trigger.fires(state, 0, 1, None)


def _feed(trigger: DriftAlarm, state: dict, stream: np.ndarray, start: int = 0) -> list[int]:
    """Feed ``stream`` in micro-batches of 256 from request ``start``; the request counts at
    which the trigger fired."""
    fired = []
    for begin in range(start, len(stream), 256):
        values = stream[begin : begin + 256]
        if trigger.fires(state, begin, begin + len(values), values):
            fired.append(begin + len(values))
    return fired


@pytest.mark.parametrize("seed", range(4))
def test_drift_alarm_watches_the_fixed_model_afresh_after_learning(seed):
    """The reward jumps 0.3 -> 0.5 at 10k (the alarm), then rises to 0.6 over 6k requests while
    the rule learns (hold 6k), then stays at 0.6 until the world changes at 35k (0.6 -> 0.45).
    The rise during the hold may extend it, but is never an alarm; the fixed model's stream
    after the hold raises none, and the change at 35k is caught within 3k. (Before the
    detector was restarted when a hold runs out, it alarmed again at 15k-17.5k at seeds 0-5:
    its window still held the rise the learning had made.)"""
    rng = np.random.default_rng(seed)
    p = np.concatenate(
        [
            np.full(10_000, 0.3),
            np.linspace(0.5, 0.6, 6_000),
            np.full(19_000, 0.6),
            np.full(15_000, 0.45),
        ]
    )
    stream = (rng.random(len(p)) < p).astype(float)
    trigger = DriftAlarm("reward", hold=6_000)
    state = trigger.init_state()
    fired = _feed(trigger, state, stream)
    first, second = state["alarm_at"]
    assert 10_000 < first <= 11_000 and 35_000 < second <= 38_000, state
    held_until = max([first, *state["extended_at"]]) + 6_000
    assert all(e < 16_500 for e in state["extended_at"]), state
    # Fires on every micro-batch from the alarm until the hold runs out, then not until 35k.
    assert [t for t in fired if t < 35_000] == list(range(first, held_until, 256))


def test_drift_alarm_during_the_hold_extends_it():
    """A second change while the rule learns (0.5 -> 0.3 at 13k, 3k into a 6k hold) extends the
    hold: the rule keeps learning for 6k requests after it was seen."""
    rng = np.random.default_rng(0)
    p = np.concatenate([np.full(10_000, 0.3), np.full(3_000, 0.5), np.full(17_000, 0.3)])
    stream = (rng.random(len(p)) < p).astype(float)
    trigger = DriftAlarm("reward", hold=6_000)
    state = trigger.init_state()
    fired = _feed(trigger, state, stream)
    (first,) = state["alarm_at"]
    assert 10_000 < first <= 11_000 and state["extended_at"], state
    extended = state["extended_at"][-1]
    assert 13_000 < extended <= 16_000, state
    assert fired == list(range(first, extended + 6_000, 256)), state


def test_adwin_state_round_trip_continues_with_identical_alarms():
    """An ADWIN saved mid-stream (plain values and a uint8 tensor, through torch.save and
    torch.load with weights_only=True) continues exactly as the original: the same drift
    flags, width, mean and variance after every value, over a stream with several changes;
    also when saved right after a detection (river resets its window on the next value)."""
    rng = np.random.default_rng(1)
    means = np.repeat([0.2, 0.5, 0.3, 0.7, 0.4], 4_000)
    stream = (rng.random(len(means)) < means).astype(float).tolist()
    original = drift.ADWIN(delta=0.002, grace_period=500)
    flags = []
    for x in stream:
        original.update(x)
        flags.append(original.drift_detected)
    detections = np.flatnonzero(flags)
    assert len(detections) >= 4, detections
    for split in (6_000, int(detections[1]) + 1):  # mid-window; right after a detection
        a = drift.ADWIN(delta=0.002, grace_period=500)
        for x in stream[:split]:
            a.update(x)
        saved = adwin_state_dict(a)
        assert_plain(saved)
        b = load_adwin_state_dict(through_torch_save(saved))
        assert b.drift_detected == a.drift_detected == flags[split - 1]
        after = []
        for x in stream[split:]:
            a.update(x)
            b.update(x)
            after.append(b.drift_detected)
            assert (a.drift_detected, a.width, a.total, a.variance) == (
                b.drift_detected,
                b.width,
                b.total,
                b.variance,
            )
        assert after == flags[split:] and sum(after) >= 2


def test_adwin_state_that_reads_back_differently_is_refused():
    detector = drift.ADWIN()
    for x in [0.0, 1.0] * 300:
        detector.update(x)
    saved = adwin_state_dict(detector)
    saved["width"] += 1  # what a window from an incompatible river layout would look like
    with pytest.raises(ValueError, match=r"reads back differently in river"):
        load_adwin_state_dict(saved)


def test_drift_alarm_state_round_trip_mid_stream():
    """The trigger's whole state (detector, hold, alarms) through torch.save / torch.load with
    weights_only=True: the restored trigger fires at exactly the same micro-batches."""
    rng = np.random.default_rng(2)
    p = np.concatenate([np.full(8_000, 0.3), np.full(8_000, 0.5), np.full(8_000, 0.35)])
    stream = (rng.random(len(p)) < p).astype(float)
    trigger = DriftAlarm("reward", hold=1_024)
    state = trigger.init_state()
    _feed(trigger, state, stream[:8_960])  # the first alarm's hold is still running
    assert state["alarm_at"] and state["learning"]
    saved = through_torch_save(trigger.state_dict(state))
    restored = trigger.load_state_dict(saved)
    assert _feed(trigger, state, stream, 8_960) == _feed(trigger, restored, stream, 8_960)
    assert state["alarm_at"] == restored["alarm_at"] and len(state["alarm_at"]) >= 2
    with pytest.raises(ValueError, match=r"the saved detector has delta=0\.002"):
        DriftAlarm("reward", delta=0.01).load_state_dict(saved)


# ---------------------------------------------------------------------------- losses


def hand_batch(click_slot, shown=None, reward=None) -> TrainingBatch:
    n, k = len(click_slot), 2
    shown = np.ones((n, k), bool) if shown is None else np.asarray(shown)
    ex = examples(np.arange(n), k)
    ex.item_ids = np.where(shown, ex.item_ids, -1)
    ex.click_slot = np.asarray(click_slot, dtype=np.int64)
    if reward is not None:
        ex.reward = np.asarray(reward, dtype=np.float32)
    return training_batch(ex, "cpu")


def test_click_losses_on_hand_computed_cases():
    logits = torch.tensor([[1.0, 0.0], [2.0, -1.0]])
    batch = hand_batch([0, -1])
    # softmax over [slots..., no-click (0)]: -log(e/(e+1+1)), -log(1/(e^2+e^-1+1))
    expected = (-(1 - math.log(math.e + 2)) + math.log(math.e**2 + math.e**-1 + 1)) / 2
    assert click_loss("softmax", logits, batch).item() == pytest.approx(expected, rel=1e-6)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    bce = (sp(-1.0) + sp(0.0) + sp(2.0) + sp(-1.0)) / 4
    assert click_loss("bce", logits, batch).item() == pytest.approx(bce, rel=1e-6)
    per_request = click_loss("bce", logits, batch, per_request=True)
    np.testing.assert_allclose(per_request, [(sp(-1) + sp(0)) / 2, (sp(2) + sp(-1)) / 2], rtol=1e-6)
    engaged = hand_batch([1, -1], reward=[2.5, 0.0])
    mse = ((1 - 0) ** 2 + (0 - 2.5) ** 2 + 2**2 + 1) / 4
    assert click_loss("mse", logits, engaged).item() == pytest.approx(mse)
    # An empty slot (id -1) counts nowhere.
    masked = hand_batch([0, -1], shown=[[True, False], [True, True]])
    bce_masked = (sp(-1.0) + sp(2.0) + sp(-1.0)) / 3
    assert click_loss("bce", logits, masked).item() == pytest.approx(bce_masked, rel=1e-6)
    with pytest.raises(ValueError, match="valid losses"):
        click_loss("hinge", logits, batch)


# ---------------------------------------------------------------------------- terms


@pytest.fixture
def mf_and_batch():
    env = make_env(32)
    obs, _ = env.reset(seed=0)
    sizes = task_sizes(env)
    model = make_model("mf", sizes, torch.Generator().manual_seed(0), dim=4)
    slates = np.tile(np.arange(5), (32, 1))
    ex = SlateExamples.from_observation(obs, slates, np.full(32, -1), np.zeros(32))
    batch = training_batch(ex, "cpu")
    scope = resolve_scope(model, ("all",))
    ids = model.table_ids(batch.users, batch.items)
    batch.rows = {n: torch.unique(ids[n][ids[n] >= 0]) for n in scope.sparse}
    return model, scope, batch, ex


def test_weight_penalty_is_lazy_on_tables(mf_and_batch):
    model, scope, batch, _ = mf_and_batch
    value = WeightPenalty(l1=0.1, l2=0.01).penalty(model, scope, batch, None)
    expected = 0.0
    for name, param in model.named_parameters():
        if name == "slot_bias":
            continue
        w = param.detach()
        if name in scope.sparse:
            w = w[batch.rows[name]]
        expected += 0.1 * w.abs().sum().item() + 0.01 * (w**2).sum().item()
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert model.user_factors.weight.grad.is_sparse  # stays sparse


def test_ewc_penalty_is_zero_at_the_anchor_and_quadratic_away_from_it(mf_and_batch):
    model, scope, batch, ex = mf_and_batch
    term = EWC(strength=2.0, fisher_samples=32, batch_size=16)

    def loss_fn(b):
        return click_loss("softmax", model(b.users, b.items) + model.slot_bias, b)

    memory = term.consolidate(model, scope, ex, loss_fn, None, "cpu")
    assert term.penalty(model, scope, batch, memory).item() == 0.0
    fisher = memory["fisher"]["item_bias.weight"]
    assert (fisher >= 0).all() and fisher.sum() > 0
    with torch.no_grad():
        model.item_bias.weight += 0.5
    expected = 0.5 * 2.0 * (fisher * 0.25).sum().item()
    assert term.penalty(model, scope, batch, memory).item() == pytest.approx(expected, rel=1e-5)
    again = term.consolidate(model, scope, ex, loss_fn, memory, "cpu")
    assert torch.all(again["fisher"]["item_bias.weight"] >= 0.9 * fisher)  # decay 0.9 kept


def test_distillation_is_zero_for_an_identical_teacher(mf_and_batch):
    model, scope, batch, _ = mf_and_batch
    term = Distillation(strength=1.0, temperature=2.0)
    teacher = term.consolidate(model, scope, None, None, None, "cpu")
    assert term.penalty(model, scope, batch, teacher).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model.item_factors.weight.mul_(-1.0)
    assert term.penalty(model, scope, batch, teacher).item() > 1e-4
    assert term.penalty(model, scope, batch, None).item() == 0.0


def test_merges():
    old, new = {"w": torch.tensor([0.0, 2.0])}, {"w": torch.tensor([4.0, 4.0])}
    assert torch.equal(Replace().merge(old, new)["w"], new["w"])
    assert torch.equal(MovingAverage(0.25).merge(old, new)["w"], torch.tensor([1.0, 2.5]))
    assert Ensemble(3).members == 3 and torch.equal(Ensemble(3).merge(old, new)["w"], new["w"])
    with pytest.raises(ValueError, match="weight must be in"):
        MovingAverage(0.0)


def test_ensemble_strategy_keeps_its_members_and_serves_their_mean():
    env = make_env(64)
    agent = make_agent(
        "incremental", env, every=256, merge="ensemble", ensemble_size=3, micro_batch=64, seed=0
    )
    _, obs = rollout(agent, env, 40, seed=0)
    assert len(agent.trainer.members) == 2
    users, items = user_batch(obs, "cpu"), candidate_items(obs, "cpu")
    with torch.no_grad():
        mean = sum(m(users, items) for m in agent.models) / 3
    np.testing.assert_allclose(agent.scores(obs), mean.numpy(), rtol=1e-5, atol=1e-6)


def test_scope_freezes_what_it_leaves_out():
    env = make_env(64)
    agent = make_agent(
        "fine_tune", env, freeze=("embeddings",), pretrain=0, every=256, micro_batch=64, seed=0
    )
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    rollout(agent, env, 20, seed=0)
    after = agent.model.state_dict()
    assert torch.equal(before["user_factors.weight"], after["user_factors.weight"])
    assert torch.equal(before["item_factors.weight"], after["item_factors.weight"])
    assert not torch.equal(before["item_bias.weight"], after["item_bias.weight"])

    adapters = make_agent(
        "incremental",
        env,
        scope=("adapters",),
        merge="replace",
        every=256,
        micro_batch=64,
        model={"name": "mf", "adapter_dim": 4},
        seed=0,
    )
    before = {k: v.clone() for k, v in adapters.model.state_dict().items()}
    rollout(adapters, env, 20, seed=0)
    changed = {k for k, v in adapters.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(
        k.startswith(("user_adapter", "item_adapter", "slot_bias")) for k in changed
    )


# ---------------------------------------------------------------------------- optimiser


def test_lazy_adam_matches_torch_sparse_adam():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.Embedding(50, 4, sparse=True)
    b = torch.nn.Embedding(50, 4, sparse=True)
    with torch.no_grad():
        a.weight.copy_(torch.randn(50, 4, generator=g))
        b.weight.copy_(a.weight)
    ours, theirs = LazyAdam([a.weight], lr=0.05), torch.optim.SparseAdam([b.weight], lr=0.05)
    for _ in range(5):
        ids = torch.randint(0, 50, (30,), generator=g)
        target = torch.randn(30, 4, generator=g)
        for emb, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            ((emb(ids) - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- exploration


class FixedRanker:
    def __init__(self, scores):
        self.scores = torch.as_tensor(scores)
        self.models = []
        self.user_counts = np.zeros(1, np.int64)

    def score(self, users, items):
        return self.scores


def test_exploration_policies():
    scores = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]] * 200)
    items = type("Items", (), {"ids": torch.zeros(200, 5, dtype=torch.int64)})()
    rng = np.random.default_rng(0)
    ranker = FixedRanker(scores)
    greedy = Greedy().select(ranker, None, items, 3, rng)
    np.testing.assert_array_equal(greedy, np.tile([1, 3, 2], (200, 1)))
    random = EpsilonGreedy(1.0).select(ranker, None, items, 3, rng)
    assert (np.sort(random, 1)[:, 1:] != np.sort(random, 1)[:, :-1]).all()
    assert not (random == greedy).all(axis=1).all()
    np.testing.assert_array_equal(EpsilonGreedy(0.0).select(ranker, None, items, 3, rng), greedy)
    cold = Softmax(1e-3).select(ranker, None, items, 3, rng)
    np.testing.assert_array_equal(cold, greedy)
    hot = Softmax(100.0).select(ranker, None, items, 3, rng)
    assert 0.05 < (hot[:, 0] == 1).mean() < 0.5  # near uniform over 5 candidates: about 0.2


def test_thompson_last_layer_is_greedy_without_noise_and_explores_with_it():
    env = make_env(64)
    obs, _ = env.reset(seed=0)
    calm = make_agent("online", env, exploration={"name": "thompson", "scale": 0.0}, seed=0)
    np.testing.assert_array_equal(calm.act(obs), calm.greedy(obs))
    wild = make_agent("online", env, exploration={"name": "thompson", "scale": 5.0}, seed=0)
    assert (wild.act(obs) != wild.greedy(obs)).any()
    with pytest.raises(ValueError, match="posterior must be"):
        Thompson(posterior="dropout")


def test_acting_fast_path_scores_like_the_model():
    env = make_env(64)
    obs, _ = env.reset(seed=0)
    agent = make_agent("online", env, seed=0)
    rollout(agent, env, 10, seed=0)
    users, items = user_batch(obs, "cpu"), candidate_items(obs, "cpu")
    fast = agent.model.numpy_scorer()
    with torch.no_grad():
        reference = agent.model(users, items)
    torch.testing.assert_close(fast(users, items), reference, rtol=1e-5, atol=1e-5)
    # ids beyond the tables (an environment whose space under-states its capacity) grow them
    far = {**obs, "user_id": obs["user_id"] + 10_000, "candidate_ids": obs["candidate_ids"] + 600}
    assert agent.act(far).shape == (64, 5)
    assert agent.model.item_factors.num_embeddings > far["candidate_ids"].max()


# ---------------------------------------------------------------------------- popularity


def test_popularity_counts_clicks_over_its_window_only():
    """With a window of 300 requests and 100 sessions, after 6 steps the counts are exactly the
    clicks of the last 3 steps (the environment's clicked_item as the reference)."""
    env = make_env(100)
    agent = make_agent("popularity", env, window=300, seed=0)
    obs = env.reset(seed=0)[0]
    clicked = []
    for _ in range(6):
        action = agent.act(obs)
        next_obs, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, term, trunc, info))
        clicked.append(info["clicked_item"])
        obs = next_obs
    last = np.concatenate(clicked[-3:])
    expected = np.bincount(last[last >= 0], minlength=600)
    np.testing.assert_array_equal(agent.counts, expected)
    assert expected.sum() > 0
    # It ranks by those counts (ties at random).
    slates = agent.act(obs)
    top = agent.counts[obs["candidate_ids"][np.arange(100), slates[:, 0]]]
    assert (top == agent.counts[obs["candidate_ids"]].max(axis=1)).all()

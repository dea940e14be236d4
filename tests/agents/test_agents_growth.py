"""Id tables grow when new user or item ids appear: they start small, grow geometrically, never
hash, keep the rows they had, give new rows the initial values they would have had in a large
table, and everything that holds per-row state (lazy Adam, EWC anchors, distillation teachers,
ensemble members, Thompson sampling's counts, the acting fast path) follows them, also through
a ``state_dict`` round trip."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from agent_helpers import ArrivalOrderIds, make_env, rollout, through_torch_save

from driftrec.agents import EWC, SlateExamples, Transition, make_agent, task_sizes
from driftrec.agents.losses import click_loss, slot_logits, training_batch
from driftrec.agents.models import candidate_items, make_model, user_batch
from driftrec.agents.models.tables import IdTable, grown_rows, id_tables_of, lookup
from driftrec.agents.optimisers import LazyAdam, SplitOptimiser
from driftrec.agents.scopes import resolve_scope

LEARNER = {"micro_batch": 64, "batch_size": 128}
SMALL_ROWS = 16

PRESETS = [
    ("online", {"exploration": "thompson"}),
    ("ewc", {"every": 256, "fisher_samples": 256}),
    ("distill", {"every": 256}),
    ("incremental", {"every": 256, "merge": "moving_average"}),
    (
        "incremental",
        {
            "every": 256,
            "merge": "ensemble",
            "exploration": {"name": "thompson", "posterior": "ensemble"},
        },
    ),
    ("replay", {"capacity": 512}),
    ("full_retrain", {"every": 512, "epochs": 1}),
    ("hybrid", {"pretrain": 64, "every": 512}),
]


def growing_stream(num_envs: int = 64) -> ArrivalOrderIds:
    """Users and items numbered as they arrive, and a catalogue that keeps adding items: the
    largest user and item ids keep growing along the stream."""
    return ArrivalOrderIds(make_env(num_envs, "catalog_churn", every=300))


def rows_of(agent) -> dict[str, int]:
    return {name: t.num_embeddings for name, t in id_tables_of(agent.model).items()}


def assert_state_follows_the_tables(agent) -> None:
    """Every piece of per-row state has the rows of the model's tables."""
    model, trainer = agent.model, agent.trainer
    params = dict(model.named_parameters())
    tables = {f"{name}.weight" for name in id_tables_of(model)}
    for rule in trainer.rule_states:
        for part in rule.optimiser.parts:
            if isinstance(part, LazyAdam):
                for p, m, v in zip(part.params, part.exp_avg, part.exp_avg_sq, strict=True):
                    assert m.shape == v.shape == p.shape
            else:
                for p, state in part.state.items():
                    for value in state.values():
                        if torch.is_tensor(value) and value.dim():
                            assert value.shape == p.shape
    for rule in trainer.rule_states:
        for memory in rule.memories:
            if isinstance(memory, dict):  # EWC
                for name in tables & set(memory["fisher"]):
                    assert memory["fisher"][name].shape == params[name].shape
                    assert memory["anchor"][name].shape == params[name].shape
            elif isinstance(memory, torch.nn.Module):  # a distillation teacher
                assert rows_of_module(memory) == rows_of(agent)
    for member in trainer.members:
        assert rows_of_module(member) == rows_of(agent)
    largest_user = max(rows for name, rows in rows_of(agent).items() if "user" in name)
    assert len(agent.user_counts) >= largest_user


def rows_of_module(module) -> dict[str, int]:
    return {name: t.num_embeddings for name, t in id_tables_of(module).items()}


# ---------------------------------------------------------------------------- the growth rule


def test_growth_at_least_doubles_reaches_the_id_and_stops_at_the_capacity_hint():
    assert grown_rows(16, 10, 600) == 16  # enough already
    assert grown_rows(16, 17, 600) == 32  # at least double
    assert grown_rows(16, 100, 600) == 100  # at least the largest id + 1
    assert grown_rows(512, 513, 600) == 600  # not past the capacity hint when it suffices
    assert grown_rows(600, 601, 600) == 1_200  # beyond it, doubling again
    assert grown_rows(512, 5_000, 600) == 5_000
    # Amortised O(1): ids arriving one by one up to 100,000 grow a table a logarithmic
    # number of times, and copy fewer than 2 rows per id in all.
    rows, growths, copied = 1, 0, 0
    for needed in range(1, 100_001):
        new = grown_rows(rows, needed, 600)
        if new != rows:
            growths, copied, rows = growths + 1, copied + rows, new
    assert growths <= 20 and copied < 2 * 100_000


# ---------------------------------------------------------------------------- (1) tables grow


@pytest.mark.parametrize("model", ["mf", "two_tower", "sasrec"])
def test_a_table_starts_small_and_grows_keeping_its_rows(model):
    sizes = task_sizes(make_env(4))  # 500 users, 600 items
    small = make_model(model, sizes, torch.Generator().manual_seed(3), initial_rows=SMALL_ROWS)
    large = make_model(model, sizes, torch.Generator().manual_seed(3), initial_rows=10**6)
    tables = id_tables_of(small)
    assert tables and all(t.num_embeddings == SMALL_ROWS for t in tables.values())
    assert all(t.num_embeddings == t.capacity for t in id_tables_of(large).values())
    # Same seed, same values: a small table holds the first rows of the large one.
    for name, table in tables.items():
        big = id_tables_of(large)[name].weight
        assert torch.equal(table.weight, big[:SMALL_ROWS])
    before = {name: t.weight.detach().clone() for name, t in tables.items()}

    users = torch.tensor([3, 40])  # 40 >= 16 rows: the user tables grow
    items = torch.tensor([[1, 2, 100]])  # 100: the item tables grow past doubling
    for table in tables.values():
        lookup(table, users if table.space == "user" else items)
    for name, table in tables.items():
        rows = table.num_embeddings
        assert rows == (41 if table.space == "user" else 101), name
        assert table.weight.shape == (rows, table.embedding_dim)
        assert torch.equal(table.weight[:SMALL_ROWS], before[name])  # rows that were there
        # New rows: their initial values, those of a table that was large from the start
        # (zeros for the biases and zero-initialised residuals).
        assert torch.equal(table.weight, id_tables_of(large)[name].weight[:rows])
    if model == "mf":
        assert small.user_factors.weight[SMALL_ROWS:].std() > 0.05
        assert not small.item_bias.weight.any()
        assert small.user_factors.weight.requires_grad and small.user_factors.sparse
    # -1 (padding, empty slot) still reads the last row and grows nothing.
    table = next(iter(tables.values()))
    rows = table.num_embeddings
    torch.testing.assert_close(lookup(table, torch.tensor([-1]))[0], table.weight[-1])
    assert table.num_embeddings == rows


def test_new_rows_are_deterministic_and_depend_on_the_seed():
    sizes = task_sizes(make_env(4))
    values = []
    for seed in (0, 0, 1):
        model = make_model("mf", sizes, torch.Generator().manual_seed(seed), initial_rows=8)
        model.user_factors.ensure_rows(300)
        values.append(model.user_factors.weight.detach().clone())
    assert torch.equal(values[0], values[1])
    assert not torch.equal(values[0][8:], values[2][8:])
    # Growing in several steps or at once gives the same rows.
    model = make_model("mf", sizes, torch.Generator().manual_seed(0), initial_rows=8)
    for needed in (9, 17, 100, 300):
        model.user_factors.ensure_rows(needed)
    assert torch.equal(model.user_factors.weight[:300], values[0][:300])


def test_an_agent_starts_small_and_grows_as_ids_arrive():
    env = growing_stream()
    agent = make_agent("online", env, model={"name": "mf", "initial_rows": SMALL_ROWS}, seed=0)
    assert set(rows_of(agent).values()) == {SMALL_ROWS}
    _, obs = rollout(agent, env, 3, seed=0)
    early = rows_of(agent)
    assert early["user_factors"] > SMALL_ROWS and early["item_factors"] > SMALL_ROWS
    assert early["user_factors"] < 500  # not the capacity: only the users seen so far
    assert early["user_factors"] > obs["user_id"].max()
    rollout(agent, env, 30, obs=obs)
    assert rows_of(agent)["user_factors"] > early["user_factors"]


# ---------------------------------------------------------------------------- (2) no hashing


def test_ids_far_beyond_the_capacity_work_without_collisions():
    env = make_env(64)  # capacities: 500 users, 600 items
    obs, _ = env.reset(seed=0)
    far = {
        **obs,
        "user_id": obs["user_id"] + 10_000,
        "candidate_ids": obs["candidate_ids"] + 20_000,
        "history": np.where(obs["history"] >= 0, obs["history"] + 20_000, -1),
    }
    agent = make_agent(
        "online", env, model={"name": "mf", "initial_rows": SMALL_ROWS}, seed=0, **LEARNER
    )
    slates = agent.act(far)
    assert slates.shape == (64, 5)
    assert agent.model.item_factors.num_embeddings > far["candidate_ids"].max()
    assert agent.model.user_factors.num_embeddings > far["user_id"].max()
    # Two ids that hashing (id % capacity) would have sent to one row have rows of their own.
    a = int(far["candidate_ids"][0, 0])
    b = a + 600
    agent.model.item_factors.ensure_rows(b + 1)
    q = agent.model.item_factors.weight
    assert not torch.equal(q[a], q[b]) and not torch.equal(q[a], q[a % 600])
    both = {key: value[:1].copy() for key, value in far.items()}
    both["candidate_ids"][0, :2] = [a, b]
    scores = agent.scores(both)[0]
    assert scores[0] != scores[1]
    # Learning on far ids touches their rows only, never the rows below the capacity.
    before = agent.model.item_factors.weight.detach().clone()
    next_obs, reward, term, trunc, info = env.step(slates)
    agent.observe(Transition(far, slates, reward, next_obs, term, trunc, info))
    after = agent.model.item_factors.weight.detach()
    assert torch.equal(after[:600], before[:600])
    changed = torch.nonzero((after != before).any(1)).reshape(-1)
    assert len(changed) and (changed >= 20_000).all()
    assert all(torch.isfinite(p).all() for p in agent.model.parameters())


def test_thompson_counts_and_popularity_counts_grow_instead_of_hashing():
    env = make_env(64)
    obs, _ = env.reset(seed=0)
    far = {**obs, "user_id": obs["user_id"] + 5_000, "candidate_ids": obs["candidate_ids"] + 900}
    agent = make_agent("online", env, exploration="thompson", seed=0, **LEARNER)
    slates = agent.act(far)
    next_obs, reward, term, trunc, info = env.step(slates)
    agent.observe(Transition(far, slates, reward, next_obs, term, trunc, info))
    counts = agent.user_counts
    assert len(counts) > far["user_id"].max()
    np.testing.assert_array_equal(counts[far["user_id"]] >= 1, True)
    assert counts[:500].sum() == 0 and counts.sum() == 64

    popularity = make_agent("popularity", env, seed=0)
    slates = popularity.act(far)
    next_obs, reward, term, trunc, info = env.step(slates)
    popularity.observe(Transition(far, slates, reward, next_obs, term, trunc, info))
    clicked = far["candidate_ids"][np.arange(64), slates[np.arange(64), info["click_slot"]]]
    clicked = clicked[info["click_slot"] >= 0]
    assert len(clicked) and popularity.counts[:900].sum() == 0
    np.testing.assert_array_equal(popularity.counts[clicked] >= 1, True)


# ---------------------------------------------------------------------------- (3) round trip


@pytest.mark.parametrize(("name", "params"), PRESETS, ids=lambda p: str(p)[:40])
def test_state_dict_round_trip_after_growth_continues_identically(name, params):
    env = growing_stream()
    model = {"name": "mf", "initial_rows": SMALL_ROWS}
    agent = make_agent(name, env, model=model, seed=0, **LEARNER, **params)
    _, obs = rollout(agent, env, 3, seed=0)
    grown = rows_of(agent)
    assert min(grown.values()) > SMALL_ROWS and agent.trainer.pending_rows == 0
    state = through_torch_save(agent.state_dict())
    env_copy, obs_copy = copy.deepcopy(env), copy.deepcopy(obs)

    original, _ = rollout(agent, env, 20, obs=obs, record=True, pretrain=False)
    restored_agent = make_agent(name, env, model=model, seed=12345, **LEARNER, **params)
    assert set(rows_of(restored_agent).values()) == {SMALL_ROWS}  # still small: resized on load
    restored_agent.load_state_dict(state)
    assert rows_of(restored_agent) == grown
    restored, _ = rollout(restored_agent, env_copy, 20, obs=obs_copy, record=True, pretrain=False)

    for x, y in zip(original.actions, restored.actions, strict=True):
        np.testing.assert_array_equal(x, y)
    a, b = agent.model.state_dict(), restored_agent.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert agent.cost() == restored_agent.cost()
    assert rows_of(restored_agent) != grown  # and they grew again after the trip
    assert_state_follows_the_tables(restored_agent)


# ---------------------------------------------------------------------------- (4) across growth


@pytest.mark.parametrize(("name", "params"), PRESETS, ids=lambda p: str(p)[:40])
def test_growth_mid_stream_changes_nothing_but_memory(name, params):
    """The same stream with tables that start at 16 rows (and grow several times mid-stream)
    and with tables at their capacity from the start: the same slates and, up to float
    rounding (dense elementwise kernels round the tail of a tensor differently), the same
    parameters. Lazy Adam, EWC anchors and Fisher, teachers, ensemble members and moving
    averages all follow the growth."""
    runs = []
    for initial_rows in (SMALL_ROWS, 10**6):
        env = growing_stream()
        model = {"name": "mf", "initial_rows": initial_rows}
        agent = make_agent(name, env, model=model, seed=0, **LEARNER, **params)
        first, obs = rollout(agent, env, 3, seed=0, record=True)
        early = rows_of(agent)
        second, _ = rollout(agent, env, 27, obs=obs, record=True)
        runs.append((first.actions + second.actions, agent, early))
    (actions, agent, early), (large_actions, large, _) = runs
    assert min(early.values()) > SMALL_ROWS and rows_of(agent) != early  # grew mid-stream
    assert rows_of(agent)["user_factors"] < 500 == rows_of(large)["user_factors"]
    for x, y in zip(actions, large_actions, strict=True):
        np.testing.assert_array_equal(x, y)
    small_state, large_state = agent.model.state_dict(), large.model.state_dict()
    for key, value in small_state.items():
        reference = large_state[key][: value.shape[0]] if value.dim() else large_state[key]
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6, msg=key)
        assert torch.isfinite(value.float()).all()
        if value.dim() and key.endswith("weight") and value.shape != reference.shape:
            # Rows the small table never grew to were never read by the large one either.
            rows = value.shape[0]
            initial = id_tables_of(large.model)[key.rsplit(".", 1)[0]].initial_values
            torch.testing.assert_close(
                large_state[key][rows:], initial(rows, large_state[key].shape[0])
            )
    assert agent.cost()["gradient_steps"] == large.cost()["gradient_steps"] > 0
    assert_state_follows_the_tables(agent)


@pytest.mark.parametrize("model", ["two_tower", "sasrec"])
@pytest.mark.parametrize(("name", "params"), [PRESETS[1], PRESETS[2], PRESETS[4]], ids=str)
def test_the_other_models_grow_mid_stream(model, name, params):
    """Two-tower and SASRec with small tables that grow mid-stream train and stay finite. (Not
    compared with large tables: -1 padding reads the last row, which differs with the table's
    size, and its zero gradient counts as a touch for lazy Adam.)"""
    env = growing_stream()
    agent = make_agent(
        name, env, model={"name": model, "initial_rows": SMALL_ROWS}, seed=0, **LEARNER, **params
    )
    _, obs = rollout(agent, env, 4, seed=0)
    early = rows_of(agent)
    run, _ = rollout(agent, env, 12, obs=obs)
    assert min(early.values()) > SMALL_ROWS and rows_of(agent) != early  # grew mid-stream
    assert np.isfinite(run.rho).all() and agent.cost()["gradient_steps"] > 0
    assert all(torch.isfinite(p).all() for p in agent.model.parameters())
    assert_state_follows_the_tables(agent)


# ---------------------------------------------------------------------------- per-row state


def test_optimiser_state_of_new_rows_is_zero_and_steps_continue():
    table = IdTable(4, space="item", capacity=100, initial_rows=8, init_std=0.1, sparse=True)
    bias = IdTable(1, space="item", capacity=100, initial_rows=8)
    table.reset_rows(torch.Generator().manual_seed(0))
    named = [("t.weight", table.weight), ("b.weight", bias.weight)]
    optimiser = SplitOptimiser(named, frozenset({"t.weight"}), "adam", 0.1)

    def step(ids):
        loss = (lookup(table, ids).sum(-1) + lookup(bias, ids)[..., 0]).pow(2).sum()
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()

    step(torch.tensor([1, 2, 7]))
    lazy, dense = optimiser.parts
    moments = lazy.exp_avg[0].clone()
    for t in (table, bias):
        t.ensure_rows(20)
    optimiser.grow()
    assert lazy.exp_avg[0].shape == (20, 4) and torch.equal(lazy.exp_avg[0][:8], moments)
    assert not lazy.exp_avg[0][8:].any() and not lazy.exp_avg_sq[0][8:].any()
    dense_state = dense.state[bias.weight]
    assert dense_state["exp_avg"].shape == (20, 1) and not dense_state["exp_avg_sq"][8:].any()
    untouched = table.weight[12].detach().clone()
    step(torch.tensor([2, 15]))
    assert torch.equal(table.weight[12], untouched) and bias.weight[12].item() == 0.0
    assert table.weight[15].ne(table.initial_values(15, 16)[0]).all()


def test_ewc_memory_of_new_rows_puts_no_pull_on_them():
    env = make_env(32)
    obs, _ = env.reset(seed=0)
    sizes = task_sizes(env)
    model = make_model("mf", sizes, torch.Generator().manual_seed(0), dim=4)
    slates = np.tile(np.arange(5), (32, 1))
    ex = SlateExamples.from_observation(obs, slates, np.full(32, 0), np.ones(32))
    scope = resolve_scope(model, ("all",))
    term = EWC(strength=2.0, fisher_samples=32, batch_size=16)

    def loss_fn(b):
        return click_loss("softmax", slot_logits(model, b), b)

    memory = term.consolidate(model, scope, ex, loss_fn, None, "cpu")
    batch = training_batch(ex, "cpu")
    batch.rows = {
        n: torch.unique(ids[ids >= 0])
        for n, ids in model.table_ids(batch.users, batch.items).items()
    }
    with torch.no_grad():
        model.item_bias.weight += 0.5
    value = term.penalty(model, scope, batch, memory).item()
    assert value > 0
    for table in id_tables_of(model).values():
        table.ensure_rows(2 * table.num_embeddings)
    grown = term.grow(model, memory)
    for name in ("item_factors.weight", "item_bias.weight", "user_bias.weight"):
        old = memory["fisher"][name].shape[0]
        assert grown["fisher"][name].shape[0] == dict(model.named_parameters())[name].shape[0]
        assert not grown["fisher"][name][old:].any()
        assert torch.equal(grown["anchor"][name][:old], memory["anchor"][name])
        assert torch.equal(
            grown["anchor"][name][old:], dict(model.named_parameters())[name].detach()[old:]
        )
    assert term.penalty(model, scope, batch, grown).item() == pytest.approx(value, rel=1e-6)
    assert term.grow(model, None) is None


def test_the_acting_fast_path_follows_growth():
    env = growing_stream()
    agent = make_agent("online", env, model={"name": "mf", "initial_rows": SMALL_ROWS}, seed=0)
    _, obs = rollout(agent, env, 5, seed=0)
    new_users = {**obs, "user_id": obs["user_id"] + 2_000}  # unseen: the tables grow
    rows = rows_of(agent)["user_factors"]
    scores = agent.scores(new_users)
    assert rows_of(agent)["user_factors"] > new_users["user_id"].max() >= rows
    users, items = user_batch(new_users, "cpu"), candidate_items(new_users, "cpu")
    with torch.no_grad():
        reference = agent.model(users, items)
    np.testing.assert_allclose(scores, reference.numpy(), rtol=1e-5, atol=1e-5)

"""A new loss term, strategy preset and model join from user code alone: this file defines them,
registers them (``STRATEGIES``, ``MODELS``), builds agents with them through ``make_agent`` and
checks what they do; nothing in ``driftrec.agents`` knows them (the trainer and the agent read
the components' declared needs, never their types). Every test unregisters what it registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from agent_helpers import assert_plain, make_env, rollout, through_torch_save
from torch import Tensor, nn

from driftrec.agents import (
    AGENTS,
    MODELS,
    STRATEGIES,
    FreshData,
    Memoryless,
    Strategy,
    UpdateRule,
    agent_names,
    agent_parameters,
    make_agent,
    make_strategy,
)
from driftrec.agents.models import candidate_items, user_batch
from driftrec.agents.models.base import FactorisedModel, group_by_prefix, init_module
from driftrec.agents.models.tables import DEFAULT_INITIAL_ROWS, IdTable, lookup
from driftrec.agents.terms import penalised_values
from driftrec.agents.triggers import EveryStep

LEARNER = {"micro_batch": 64, "batch_size": 64}


# ---------------------------------------------------------------------------- a toy loss term


@dataclass(frozen=True)
class PullTowards(Memoryless):
    """``strength * sum (w - value)^2`` over the update's penalised parameters: pulls every
    trained parameter towards ``value``. It also declares that it needs the full candidate
    lists, and checks that the trainer honoured the declaration."""

    value: float = 2.0
    strength: float = 1.0
    needs_candidates: ClassVar[bool] = True

    def penalty(self, model: Any, scope: Any, batch: Any, memory: None) -> Tensor:
        assert batch.candidates is not None, "the trainer must attach the candidate lists"
        total = torch.zeros(())
        for _, values, _ in penalised_values(scope, batch):
            total = total + ((values - self.value) ** 2).sum()
        return self.strength * total


@dataclass(frozen=True)
class CountRecent:
    """A term with memory and no penalty: every ``every`` requests it consolidates on the
    most recent examples it declared it needs, and remembers how many it was given."""

    every: int = 128
    wanted: int = 100
    needs_candidates: ClassVar[bool] = False

    @property
    def consolidate_every(self) -> int:
        return self.every

    @property
    def consolidation_examples(self) -> int:
        return self.wanted

    def penalty(self, model: Any, scope: Any, batch: Any, memory: Any) -> Tensor:
        return torch.zeros(())

    def consolidate(
        self, model: Any, scope: Any, recent: Any, loss_fn: Any, memory: Any, device: Any
    ) -> dict[str, int]:
        count = 0 if memory is None else memory["consolidations"]
        return {"consolidations": count + 1, "examples": 0 if recent is None else len(recent)}

    def grow(self, model: Any, memory: Any) -> Any:
        return memory

    def memory_state_dict(self, memory: Any) -> Any:
        return memory

    def load_memory_state_dict(self, model: Any, state: Any) -> Any:
        return state


def pull_towards(value: float = 2.0, strength: float = 1.0) -> Strategy:
    """Online learning pulled towards a constant (a toy preset, 2024)."""
    rule = UpdateRule(EveryStep(), FreshData(), terms=(PullTowards(value, strength),))
    return Strategy("pull_towards", (rule,))


@pytest.fixture
def registered_preset() -> Iterator[str]:
    STRATEGIES.register("pull_towards")(pull_towards)
    try:
        yield "pull_towards"
    finally:
        STRATEGIES.unregister("pull_towards")
    assert "pull_towards" not in STRATEGIES


def test_a_registered_preset_is_an_agent_by_name_until_unregistered(registered_preset):
    """A spec names agents: a user's strategy preset must be one, whenever it was registered."""
    env = make_env(8)
    agent = make_agent(registered_preset, env, seed=0, value=1.0, **LEARNER)
    assert agent.strategy.name == registered_preset
    assert registered_preset in agent_names() and "value" in agent_parameters(registered_preset)
    assert registered_preset in AGENTS  # the registry itself, read directly, has it too


def test_a_new_loss_term_moves_the_parameters_it_penalises(registered_preset):
    """Two same-seed online agents (learning rate 0.1, 30 steps), one whose strategy, a
    registered toy preset, adds the toy term: with it, the penalised parameters the updates
    touch move to about 2.0 (MF's global bias and item biases), without it they go negative
    (clicks are rarer than no-clicks)."""
    env = make_env(64)
    strategy = make_strategy(registered_preset, value=2.0, strength=5.0)
    pulled = make_agent(strategy, env, seed=0, lr=0.1, **LEARNER)
    plain = make_agent("online", env, seed=0, lr=0.1, **LEARNER)
    for agent in (pulled, plain):
        rollout(agent, env, 30, seed=0)
        assert agent.cost()["gradient_steps"] == 30
    with torch.no_grad():
        biases = {
            name: (agent.model.global_bias.item(), agent.model.item_bias.weight.mean().item())
            for name, agent in (("pulled", pulled), ("plain", plain))
        }
        slot_bias = {"pulled": pulled.model.slot_bias.mean(), "plain": plain.model.slot_bias.mean()}
    # Measured: global bias 2.16 with the term, -1.43 without; mean item bias 2.21 vs -0.59.
    assert abs(biases["pulled"][0] - 2.0) < 0.5 and biases["plain"][0] < 0.0, biases
    assert biases["pulled"][1] > 1.5 and biases["plain"][1] < 0.0, biases
    # The slot bias, which no penalty touches, absorbs the shift (-2.58 vs -1.22).
    assert slot_bias["pulled"] < slot_bias["plain"] - 0.5, slot_bias


def test_a_term_gets_the_recent_examples_it_declares():
    """The trainer keeps a window of the largest consolidation need and passes it, and the
    term's memory travels in the state_dict."""
    env = make_env(64)
    term = CountRecent(every=128, wanted=100)
    strategy = Strategy("counting", (UpdateRule(EveryStep(), FreshData(), terms=(term,)),))
    agent = make_agent(strategy, env, seed=0, **LEARNER)
    rollout(agent, env, 10, seed=0)  # 640 requests: 5 consolidations
    memory = agent.trainer.rule_states[0].memories[0]
    assert memory == {"consolidations": 5, "examples": 100}
    assert agent.trainer.recent.capacity == 100
    state = through_torch_save(agent.state_dict())
    assert_plain(state)
    other = make_agent(strategy, env, seed=1, **LEARNER)
    other.load_state_dict(state)
    assert other.trainer.rule_states[0].memories[0] == memory


# ---------------------------------------------------------------------------- a toy model


class ItemsOnly(FactorisedModel):
    """A minimal factorised model: item factors and item biases by id, one shared user vector
    (every user is scored alike). ``score = <w, q_i> + b_i``."""

    def __init__(self, sizes: Any, dim: int = 8, initial_rows: int = DEFAULT_INITIAL_ROWS):
        super().__init__()
        self.sizes, self.dim, self.initial_rows = sizes, dim, initial_rows
        self.user = nn.Parameter(torch.zeros(dim))
        self.item_factors = IdTable.over("item", dim, sizes, initial_rows, init_std=0.1)
        self.item_bias = IdTable.over("item", 1, sizes, initial_rows)
        self.slot_bias = nn.Parameter(torch.zeros(sizes.slate_size))

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_module(self, generator, 0.1)
        with torch.no_grad():
            self.user.fill_(0.1)
            self.slot_bias.zero_()

    def encode_users(self, users: Any) -> tuple[Tensor, Tensor]:
        n = len(users)
        return self.user.expand(n, self.dim), torch.zeros(n)

    def encode_items(self, items: Any) -> tuple[Tensor, Tensor]:
        return lookup(self.item_factors, items.ids), lookup(self.item_bias, items.ids)[..., 0]

    def parameter_groups(self) -> dict[str, list[str]]:
        return group_by_prefix(self, embeddings=("item_factors",))

    def table_ids(self, users: Any, items: Any) -> dict[str, Tensor]:
        return {}  # no sparse tables


@pytest.fixture
def registered_model() -> Iterator[str]:
    MODELS.register("items_only")(ItemsOnly)
    try:
        yield "items_only"
    finally:
        MODELS.unregister("items_only")
    assert "items_only" not in MODELS


def test_a_new_model_is_built_by_name_learns_and_its_scores_rank(registered_model):
    env = make_env(64)
    assert MODELS.parameters(registered_model) == {"dim": 8, "initial_rows": DEFAULT_INITIAL_ROWS}
    with pytest.raises(TypeError, match=r"for model 'items_only'; its parameters are \['dim'"):
        make_agent("online", env, model={"name": registered_model, "hidden": 3})
    agent = make_agent("online", env, model={"name": registered_model, "dim": 4}, seed=0)
    assert isinstance(agent.model, ItemsOnly) and agent.model.dim == 4
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    _, obs = rollout(agent, env, 12, seed=0)
    assert agent.cost()["gradient_steps"] > 0
    after = agent.model.state_dict()
    assert not torch.equal(before["item_bias.weight"], after["item_bias.weight"])
    assert not torch.equal(before["user"], after["user"])
    # The agent ranks by this model's scores: every user gets the same slate for the same
    # candidates, the greedy top k of the model's own forward.
    users, items = user_batch(obs, "cpu"), candidate_items(obs, "cpu")
    with torch.no_grad():
        expected = agent.model(users, items).numpy()
    np.testing.assert_allclose(agent.scores(obs), expected, rtol=1e-6)
    np.testing.assert_array_equal(agent.act(obs), np.argsort(-expected, axis=1)[:, :5])
    assert repr(agent).startswith("LearningAgent(strategy='online', model='items_only'")


@pytest.mark.parametrize("name", ["ewc", "distill", "incremental"])
def test_a_new_model_works_with_presets_that_copy_grow_and_restore_it(registered_model, name):
    """Teachers, anchors and ensemble members are built from the model's own protocol, and a
    checkpoint of an agent with the new model continues identically."""
    params = {"every": 128, "merge": "ensemble"} if name == "incremental" else {"every": 128}
    model = {"name": registered_model, "initial_rows": 16}  # tables grow mid-stream
    env = make_env(32)
    agent = make_agent(name, env, model=model, seed=0, **LEARNER, **params)
    _, obs = rollout(agent, env, 9, seed=0)
    state = through_torch_save(agent.state_dict())
    restored = make_agent(name, env, model=model, seed=5, **LEARNER, **params)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(agent.act(obs), restored.act(obs))
    assert agent.cost() == restored.cost() and agent.cost()["gradient_steps"] > 0


def test_registered_names_are_gone_after_the_tests():
    assert "items_only" not in MODELS and "pull_towards" not in STRATEGIES
    assert "pull_towards" not in agent_names() and "pull_towards" not in AGENTS
    baselines = {"random", "popularity", "oracle", "frozen_oracle", "diverse_oracle"}
    assert set(AGENTS) == set(STRATEGIES) | baselines | {"slateq", "topk_reinforce"}

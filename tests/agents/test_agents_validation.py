"""Every agent input is checked where it enters: configuration in ``make_agent`` and the
dataclasses it builds (with errors that name the field), and each transition at ``observe``,
before anything in the agent changes (parameters, pending examples, counters, random streams).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from agent_helpers import assert_same_state, make_env, rollout, through_torch_save

from driftrec.agents import (
    AGENTS,
    EWC,
    RL_AGENTS,
    STRATEGIES,
    Cumulative,
    Distillation,
    DriftAlarm,
    Ensemble,
    EpsilonGreedy,
    EveryN,
    LearnerConfig,
    MovingAverage,
    Replay,
    Schedule,
    Softmax,
    Strategy,
    TaskSizes,
    Thompson,
    Transition,
    UpdateRule,
    Window,
    make_agent,
    task_sizes,
)
from driftrec.agents.buffers import CumulativeStore, RecentWindow, ReplayBuffer
from driftrec.agents.models import make_model

# ---------------------------------------------------------------------------- configuration

BAD_CONFIGURATIONS = [
    # (make_agent name, keyword arguments, error, message)
    ("online", {"loss": 3}, ValueError, r"unknown loss 3; valid losses are"),
    ("online", {"optimiser": None}, ValueError, r"unknown optimiser None; valid optimisers"),
    (
        "online",
        {"micro_batch": 2.5},
        TypeError,
        r"micro_batch must be an integer, got 2\.5 \(float\)",
    ),
    ("online", {"micro_batch": 0}, ValueError, r"micro_batch must be an integer >= 1, got 0"),
    (
        "online",
        {"batch_size": True},
        TypeError,
        r"batch_size must be an integer, got True \(bool\)",
    ),
    ("online", {"lr": float("nan")}, ValueError, r"lr must be finite, got nan"),
    ("online", {"lr": 0.0}, ValueError, r"lr must be in \(0, 10\], got 0\.0"),
    ("online", {"lr": "0.1"}, TypeError, r"lr must be a real number, got '0\.1' \(str\)"),
    ("online", {"l2": -1e-4}, ValueError, r"l2 must be in \[0, 10\], got -0\.0001"),
    ("online", {"l1": float("inf")}, ValueError, r"l1 must be finite"),
    ("online", {"epochs": 0}, ValueError, r"epochs must be an integer >= 1, got 0"),
    ("online", {"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
    ("online", {"seed": 1.5}, TypeError, r"seed must be an integer, got 1\.5"),
    ("online", {"device": "gpu"}, ValueError, r"device must be one of \['cpu'"),
    ("online", {"model": {"name": "mf", "dim": 0}}, ValueError, r"dim must be an integer >= 1"),
    (
        "online",
        {"model": {"name": "mf", "dim": 8.0}},
        TypeError,
        r"dim must be an integer, got 8\.0",
    ),
    (
        "online",
        {"model": {"name": "mf", "init_std": float("nan")}},
        ValueError,
        r"init_std must be finite",
    ),
    (
        "online",
        {"model": {"name": "mf", "initial_rows": 0}},
        ValueError,
        r"initial_rows must be an integer >= 1",
    ),
    (
        "online",
        {"model": {"name": "mf", "adapter_dim": -1}},
        ValueError,
        r"adapter_dim must be an integer >= 0",
    ),
    (
        "online",
        {"model": {"name": "two_tower", "use_ids": 1}},
        TypeError,
        r"use_ids must be True or False, got 1 \(int\)",
    ),
    (
        "online",
        {"model": {"name": "two_tower", "hidden": 0}},
        ValueError,
        r"hidden must be an integer >= 1",
    ),
    (
        "online",
        {"model": {"name": "sasrec", "layers": 0}},
        ValueError,
        r"layers must be an integer >= 1",
    ),
    (
        "online",
        {"model": {"name": "sasrec", "heads": 3}},
        ValueError,
        r"heads \(3\) must divide dim \(32\)",
    ),
    (
        "online",
        {"exploration": {"name": "epsilon_greedy", "epsilon": 1.5}},
        ValueError,
        r"epsilon must be in \[0, 1\], got 1\.5",
    ),
    (
        "online",
        {"exploration": {"name": "softmax", "temperature": 0}},
        ValueError,
        r"temperature must be in \[1e-06, 1e\+06\]",
    ),
    (
        "online",
        {"exploration": {"name": "thompson", "prior": float("nan")}},
        ValueError,
        r"prior must be finite",
    ),
    (
        "online",
        {"exploration": {"name": "thompson", "posterior": "bootstrap"}},
        ValueError,
        r"posterior must be one of \['last_layer', 'ensemble'\], got 'bootstrap'",
    ),
    ("static", {"train_on": -1}, ValueError, r"train_on must be an integer >= 0"),
    ("full_retrain", {"every": 2.5}, TypeError, r"every must be an integer, got 2\.5"),
    ("full_retrain", {"max_size": 0}, ValueError, r"max_size must be an integer >= 1"),
    ("fine_tune", {"window": 0}, ValueError, r"window must be an integer >= 1, got 0"),
    ("fine_tune", {"pretrain": -5}, ValueError, r"pretrain must be an integer >= 0"),
    ("fine_tune", {"pretrain_epochs": 0}, ValueError, r"pretrain_epochs must be an integer >= 1"),
    ("fine_tune", {"freeze": ("heads",)}, ValueError, r"unknown freeze \['heads'\]"),
    ("incremental", {"scope": ()}, ValueError, r"scope must name at least one of"),
    ("incremental", {"scope": ("embeddings", 3)}, TypeError, r"scope must hold names"),
    ("incremental", {"scope": 3}, TypeError, r"scope must be a name or a sequence"),
    ("incremental", {"weight": 1.5}, ValueError, r"weight must be in \(0, 1\], got 1\.5"),
    ("incremental", {"ensemble_size": 0}, ValueError, r"ensemble_size must be an integer >= 1"),
    ("replay", {"capacity": 0}, ValueError, r"capacity must be an integer >= 1, got 0"),
    ("replay", {"ratio": float("nan")}, ValueError, r"ratio must be finite"),
    ("replay", {"ratio": -0.5}, ValueError, r"ratio must be in \[0, 100\]"),
    ("ewc", {"strength": -1.0}, ValueError, r"strength must be in \[0, 1e\+06\]"),
    ("ewc", {"decay": 1.5}, ValueError, r"decay must be in \[0, 1\], got 1\.5"),
    ("ewc", {"fisher_samples": 0}, ValueError, r"fisher_samples must be an integer >= 1"),
    ("distill", {"temperature": 0.0}, ValueError, r"temperature must be in \[0\.001, 1000\]"),
    ("distill", {"every": np.float64(10)}, TypeError, r"every must be an integer, got"),
    ("drift_triggered", {"delta": 0.0}, ValueError, r"delta must be in \(0, 1\), got 0\.0"),
    ("drift_triggered", {"delta": float("nan")}, ValueError, r"delta must be finite"),
    ("drift_triggered", {"hold": -1}, ValueError, r"hold must be an integer >= 0, got -1"),
    ("drift_triggered", {"min_gap": 1.5}, TypeError, r"min_gap must be an integer"),
    ("drift_triggered", {"warmup_epochs": 0}, ValueError, r"warmup_epochs must be an integer >= 1"),
    ("hybrid", {"scope": "heads"}, ValueError, r"unknown scope \['heads'\]"),
    ("popularity", {"window": 0}, ValueError, r"window must be an integer >= 1, got 0"),
    ("popularity", {"window": 2.5}, TypeError, r"window must be an integer, got 2\.5"),
    ("random", {"seed": -3}, ValueError, r"seed must be an integer >= 0, got -3"),
    ("slateq", {"gamma": 1.0}, ValueError, r"gamma must be in \[0, 1\), got 1\.0"),
    ("slateq", {"gamma": float("nan")}, ValueError, r"gamma must be finite, got nan"),
    ("slateq", {"epsilon": 1.5}, ValueError, r"epsilon must be in \[0, 1\], got 1\.5"),
    ("slateq", {"epsilon": True}, TypeError, r"epsilon must be a real number, got True"),
    (
        "slateq",
        {"slate_method": "beam"},
        ValueError,
        r"slate_method must be one of \['greedy', 'top_k'\], got 'beam'",
    ),
    ("slateq", {"target_every": 0}, ValueError, r"target_every must be an integer >= 1, got 0"),
    ("slateq", {"lr": float("inf")}, ValueError, r"lr must be finite, got inf"),
    ("slateq", {"batch_size": True}, TypeError, r"batch_size must be an integer, got True"),
    ("slateq", {"optimiser": "rmsprop"}, ValueError, r"unknown optimiser 'rmsprop'; valid"),
    ("slateq", {"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
    ("slateq", {"device": "gpu"}, ValueError, r"device must be one of \['cpu'"),
    (
        "slateq",
        {"exploration": "softmax"},
        ValueError,
        r"slateq explores by its own rule .* exploration must be 'greedy'",
    ),
    ("slateq", {"model": {"name": "mf", "dim": 0}}, ValueError, r"dim must be an integer >= 1"),
    ("topk_reinforce", {"gamma": 1.5}, ValueError, r"gamma must be in \[0, 1\], got 1\.5"),
    ("topk_reinforce", {"weight_cap": 0.0}, ValueError, r"weight_cap must be in \(0, 1e\+06\]"),
    ("topk_reinforce", {"weight_cap": float("inf")}, ValueError, r"weight_cap must be finite"),
    ("topk_reinforce", {"entropy": -0.1}, ValueError, r"entropy must be in \[0, 1e\+06\]"),
    (
        "topk_reinforce",
        {"topk_correction": 1},
        TypeError,
        r"topk_correction must be True or False, got 1 \(int\)",
    ),
    ("topk_reinforce", {"max_session": 0}, ValueError, r"max_session must be an integer >= 1"),
    ("topk_reinforce", {"lr": float("nan")}, ValueError, r"lr must be finite, got nan"),
    ("topk_reinforce", {"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1"),
    (
        "topk_reinforce",
        {"micro_batch": 64},
        TypeError,
        r"unknown parameter\(s\) \['micro_batch'\] for agent 'topk_reinforce'; its parameters "
        r"are \['batch_size', 'entropy', 'gamma', 'lr', 'max_session'",
    ),
    (
        "topk_reinforce",
        {"exploration": {"name": "epsilon_greedy", "epsilon": 0.1}},
        ValueError,
        r"topk_reinforce explores by its own rule",
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "error", "message"),
    BAD_CONFIGURATIONS,
    ids=[f"{c[0]}-{next(iter(c[1]))}" for c in BAD_CONFIGURATIONS],
)
def test_make_agent_rejects_bad_values_naming_the_field(name, params, error, message):
    with pytest.raises(error, match=message):
        make_agent(name, make_env(4), **params)


def test_the_bad_configuration_table_covers_every_preset_and_the_learner():
    covered = {name for name, *_ in BAD_CONFIGURATIONS}
    assert set(STRATEGIES) - {"online"} <= covered and {"popularity", "random"} <= covered
    assert set(RL_AGENTS) <= covered
    learner = {key for _, params, *_ in BAD_CONFIGURATIONS for key in params}
    assert {f.name for f in dataclasses.fields(LearnerConfig)} <= learner


def test_numpy_values_are_accepted_and_stored_as_python_values():
    env = make_env(32)
    agent = make_agent(
        "replay",
        env,
        model={"name": "mf", "dim": np.int64(16), "init_std": np.float32(0.1)},
        exploration={"name": "epsilon_greedy", "epsilon": np.float64(0.1)},
        capacity=np.int32(700),
        ratio=np.float32(0.5),
        micro_batch=np.int64(64),
        lr=np.float64(0.02),
        seed=np.uint8(3),
    )
    assert type(agent.learner.micro_batch) is int and agent.learner.micro_batch == 64
    assert type(agent.learner.lr) is float and agent.learner.lr == 0.02
    data = agent.strategy.rules[0].data
    assert type(data.capacity) is int and type(data.ratio) is float
    assert agent.model.dim == 16 and type(agent.model.dim) is int
    assert type(agent.exploration.epsilon) is float and agent.seed == 3
    rollout(agent, env, 3, seed=0)
    through_torch_save(agent.state_dict())  # the configuration in the state is plain too


def test_a_single_group_name_is_one_group_not_its_letters():
    env = make_env(4)
    incremental = make_agent("incremental", env, scope="embeddings")
    assert incremental.strategy.rules[0].scope == ("embeddings",)
    fine_tune = make_agent("fine_tune", env, freeze="embeddings")
    assert fine_tune.strategy.rules[0].freeze == ("embeddings",)
    assert "user_factors.weight" not in fine_tune.trainer.rule_states[0].scope.names
    rule = UpdateRule(EveryN(10), scope="head", freeze="embeddings")
    assert rule.scope == ("head",) and rule.freeze == ("embeddings",)
    strategy = Strategy("s", rule, pretrain_scope="embeddings")
    assert strategy.rules == (rule,) and strategy.pretrain_scope == ("embeddings",)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: LearnerConfig(micro_batch=2.5), TypeError, r"micro_batch must be an integer"),
        (lambda: UpdateRule(EveryN(5), epochs=1.0), TypeError, r"epochs must be an integer"),
        (lambda: UpdateRule(EveryN(5), lr=-0.1), ValueError, r"lr must be in \(0, 10\]"),
        (lambda: UpdateRule(EveryN(5), from_scratch=1), TypeError, r"from_scratch must be True"),
        (lambda: UpdateRule("every step"), TypeError, r"trigger must be a trigger object"),
        (lambda: UpdateRule(EveryN(5), data=500), TypeError, r"data must be a data object"),
        (lambda: UpdateRule(EveryN(5), terms=(3,)), TypeError, r"terms must hold loss terms"),
        (lambda: Strategy("s", (), pretrain_requests=-1), ValueError, r"pretrain_requests"),
        (lambda: Strategy("s", ("rule",)), TypeError, r"rules must be a tuple of UpdateRule"),
        (lambda: EveryN(0), ValueError, r"n must be an integer >= 1, got 0"),
        (lambda: EveryN(5, signal="reward"), ValueError, r"EveryN watches no signal"),
        (lambda: Schedule(300), TypeError, r"at must be a sequence of integers"),
        (lambda: Schedule((300, 0)), ValueError, r"at\[1\] must be an integer >= 1"),
        (lambda: DriftAlarm(grace_period=0), ValueError, r"grace_period must be an integer >= 1"),
        (lambda: DriftAlarm(delta=1.0), ValueError, r"delta must be in \(0, 1\)"),
        (lambda: Window(2.5), TypeError, r"size must be an integer"),
        (lambda: Cumulative(0), ValueError, r"max_size must be an integer >= 1"),
        (lambda: Replay(capacity=np.float64(5)), TypeError, r"capacity must be an integer"),
        (lambda: RecentWindow(0), ValueError, r"capacity must be an integer >= 1"),
        (lambda: CumulativeStore(-1), ValueError, r"max_size must be an integer >= 1"),
        (lambda: ReplayBuffer(1.5), TypeError, r"capacity must be an integer"),
        (lambda: EWC(batch_size=0), ValueError, r"batch_size must be an integer >= 1"),
        (lambda: EWC(every=True), TypeError, r"every must be an integer, got True"),
        (lambda: Distillation(strength=float("inf")), ValueError, r"strength must be finite"),
        (lambda: MovingAverage(0.0), ValueError, r"weight must be in \(0, 1\], got 0\.0"),
        (lambda: MovingAverage(0.5, members=2), ValueError, r"members must be 1"),
        (lambda: Ensemble(1.5), TypeError, r"size must be an integer"),
        (lambda: EpsilonGreedy(float("nan")), ValueError, r"epsilon must be finite"),
        (lambda: Softmax(-1.0), ValueError, r"temperature must be in \[1e-06, 1e\+06\]"),
        (lambda: Thompson(scale=-0.5), ValueError, r"scale must be in \[0, 1000\]"),
        (lambda: TaskSizes(500, 600, 30, 5.0, 8, 8, 20, 10), TypeError, r"slate_size must be"),
        (lambda: TaskSizes(500, 600, 3, 5, 8, 8, 20, 10), ValueError, r"slate_size \(5\) must"),
    ],
)
def test_configuration_dataclasses_check_their_fields(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_a_model_built_directly_checks_its_parameters():
    sizes = task_sizes(make_env(4))
    with pytest.raises(ValueError, match=r"dim must be an integer >= 1, got 0"):
        make_model("mf", sizes, torch.Generator(), dim=0)
    with pytest.raises(TypeError, match=r"sizes must be TaskSizes"):
        make_model("two_tower", {"num_users": 5}, torch.Generator())


# ---------------------------------------------------------------------------- observe


def _bad(transition: Transition, **changes) -> Transition:
    """A copy of ``transition`` with ``changes`` (``obs``, ``action``, ``reward``, or info keys
    prefixed ``info_``) applied."""
    info = dict(transition.info)
    fields = {}
    for key, value in changes.items():
        if key.startswith("info_"):
            info[key[5:]] = value
        else:
            fields[key] = value
    return dataclasses.replace(transition, info=info, **fields)


def _with_row(array: np.ndarray, row: int, value) -> np.ndarray:
    out = np.array(array, copy=True)
    out[row] = value
    return out


def bad_transitions(t: Transition) -> list[tuple[str, Transition, type, str]]:
    """Transitions that must be rejected, built from the valid ``t`` (B rows, slates of 5 out
    of 30): (what, transition, error, message)."""
    b = t.batch_size
    obs, action, slot = t.obs, t.action, np.asarray(t.info["click_slot"])
    short_features = {**obs, "user_features": obs["user_features"][1:]}
    wide_user_id = {**obs, "user_id": np.ones((b, 2), np.int64)}
    negative_ids = {**obs, "candidate_ids": obs["candidate_ids"] - 10**6}
    nan_features = {**obs, "candidate_features": np.full_like(obs["candidate_features"], np.nan)}
    big_topics = {**obs, "candidate_topics": obs["candidate_topics"] + 20}
    repeated = action.copy()
    repeated[0] = [4, 4, 1, 2, 3]  # slot 1 repeats position 4: the environment shows it empty
    return [
        ("NaN reward", _bad(t, reward=_with_row(t.reward, 3, np.nan)), ValueError,
         r"reward must be finite, got NaN or inf at rows \[3\]"),
        ("inf reward", _bad(t, reward=_with_row(t.reward, 0, np.inf)), ValueError,
         r"reward must be finite"),
        ("reward (B, 1)", _bad(t, reward=t.reward[:, None]), ValueError,
         rf"reward must have shape \({b},\) for {b} requests, got \({b}, 1\)"),
        ("string reward", _bad(t, reward=t.reward.astype(str)), TypeError,
         r"reward must hold real numbers"),
        ("click slot 7 of 5", _bad(t, info_click_slot=_with_row(slot, 2, 7)), ValueError,
         r"click_slot'\] must be in \[-1, 5\) .*got \[7\] at rows \[2\]"),
        ("click slot -2", _bad(t, info_click_slot=_with_row(slot, 1, -2)), ValueError,
         r"click_slot'\] must be in \[-1, 5\)"),
        ("click on an empty slot", _bad(t, action=repeated, info_click_slot=_with_row(slot, 0, 1)),
         ValueError, r"click_slot'\] points at an empty slot .* at rows \[0\]"),
        ("float click slot", _bad(t, info_click_slot=slot.astype(float)), TypeError,
         r"click_slot'\] must hold integer slots"),
        ("click slot (B - 1,)", _bad(t, info_click_slot=slot[1:]), ValueError,
         rf"click_slot'\] must have shape \({b},\)"),
        ("action position 30 of 30", _bad(t, action=_with_row(action, 0, [0, 1, 2, 3, 30])),
         ValueError, r"action positions must be in \[0, 29\]"),
        ("negative action", _bad(t, action=_with_row(action, 0, [-1, 1, 2, 3, 4])), ValueError,
         r"action positions must be in \[0, 29\]"),
        ("action (B, 6)", _bad(t, action=np.concatenate([action, action[:, :1]], 1)), ValueError,
         rf"action must be an integer array of shape \({b}, 5\)"),
        ("float action", _bad(t, action=action.astype(float)), TypeError,
         r"action must be an integer array"),
        ("user_features of B - 1 rows", _bad(t, obs=short_features), ValueError,
         rf"user_features must have shape \({b}, 8\) for a batch of {b}"),
        ("user_id (B, 2)", _bad(t, obs=wide_user_id), ValueError,
         rf"user_id must have shape \({b},\) or \({b}, 1\)"),
        ("negative candidate id", _bad(t, obs=negative_ids), ValueError,
         r"candidate_ids must be >= 0"),
        ("NaN feature", _bad(t, obs=nan_features), ValueError,
         r"candidate_features must be finite"),
        ("topic out of range", _bad(t, obs=big_topics), ValueError,
         r"candidate_topics must be in \[0, 20\)"),
        ("served as ints", _bad(t, info_served=np.ones(b, np.int64)), ValueError,
         rf"served'\] must be a bool array of shape \({b},\)"),
    ]  # fmt: skip


OBSERVERS = [
    ("online", {"loss": "mse"}),
    ("online", {"exploration": "thompson", "model": "two_tower"}),
    ("static", {"train_on": 256}),
    ("full_retrain", {"every": 256}),
    ("fine_tune", {"every": 256, "pretrain": 64}),
    ("incremental", {"every": 256, "merge": "ensemble"}),
    ("replay", {"capacity": 300}),
    ("ewc", {"every": 128, "fisher_samples": 128}),
    ("distill", {"every": 128, "model": "sasrec"}),
    ("drift_triggered", {"warmup": 128, "hold": 256}),
    ("hybrid", {"pretrain": 64, "every": 256}),
    ("random", {}),
    ("popularity", {"window": 500}),
    ("oracle", {}),
    ("frozen_oracle", {}),
    ("diverse_oracle", {}),
    ("slateq", {"batch_size": 48}),
    ("topk_reinforce", {"batch_size": 16, "max_session": 4}),
]


def test_the_observer_table_covers_every_agent():
    assert {name for name, _ in OBSERVERS} == set(AGENTS)


@pytest.mark.parametrize(("name", "params"), OBSERVERS, ids=lambda p: str(p)[:30])
def test_observe_rejects_a_bad_transition_and_changes_nothing(name, params):
    """Each defect raises an error naming the field, and the agent's whole state (parameters,
    pending examples, stores, detectors, counts, random streams) is bit-identical after the
    rejected call; then the agent takes the valid transition as usual."""
    env = make_env(32)
    env.reset(seed=0)  # the frozen oracle takes its snapshot of the world when it is built
    learner = {"micro_batch": 48, "batch_size": 64} if name in STRATEGIES else {}
    agent = make_agent(name, env, seed=0, **learner, **params)
    _, obs = rollout(agent, env, 9, seed=0)  # 288 requests: some are pending in a micro-batch
    action = agent.act(obs)
    next_obs, reward, term, trunc, info = env.step(action)
    valid = Transition(obs, action, reward, next_obs, term, trunc, info)
    before = agent.state_dict()
    for what, transition, error, message in bad_transitions(valid):
        with pytest.raises(error, match=message):
            agent.observe(transition)
        assert_same_state(before, agent.state_dict(), f"{what}: state")
    agent.observe(valid)
    if name not in ("random", "oracle", "frozen_oracle", "diverse_oracle"):
        with pytest.raises(AssertionError):
            assert_same_state(before, agent.state_dict())


def test_a_nan_reward_no_longer_poisons_an_mse_learner():
    """The user review's case: online learning with the MSE loss, a NaN reward on one row."""
    env = make_env(64, reward="engagement")
    agent = make_agent("online", env, loss="mse", micro_batch=64, seed=0)
    obs, _ = env.reset(seed=0)
    action = agent.act(obs)
    next_obs, reward, term, trunc, info = env.step(action)
    reward = reward.copy()
    reward[5] = np.nan
    with pytest.raises(ValueError, match=r"reward must be finite, got NaN or inf at rows \[5\]"):
        agent.observe(Transition(obs, action, reward, next_obs, term, trunc, info))
    assert all(torch.isfinite(p).all() for p in agent.model.parameters())
    assert agent.cost()["gradient_steps"] == 0


def test_pretraining_checks_the_logged_interactions():
    env = make_env(8)
    agent = make_agent("fine_tune", env, pretrain=64, seed=0)
    env.reset(seed=0)
    logged = env.log_interactions(64)
    before = agent.state_dict()
    bad_reward = dataclasses.replace(logged, reward=_with_row(logged.reward, 4, np.nan))
    with pytest.raises(ValueError, match=r"pretrain: reward must be finite, got NaN or inf at"):
        agent.pretrain(bad_reward)
    bad_slot = dataclasses.replace(logged, click_slot=_with_row(logged.click_slot, 0, 5))
    with pytest.raises(ValueError, match=r"pretrain: click_slot must be in \[-1, 5\)"):
        agent.pretrain(bad_slot)
    with pytest.raises(TypeError, match=r"epochs must be None or an integer >= 1, got 1\.5"):
        agent.pretrain(logged, epochs=1.5)
    assert_same_state(before, agent.state_dict())
    agent.pretrain(logged)
    assert agent.cost()["gradient_steps"] > 0


def test_act_checks_the_observation_before_touching_the_agent():
    env = make_env(16)
    agent = make_agent("online", env, seed=0)
    obs, _ = env.reset(seed=0)
    before = agent.state_dict()
    with pytest.raises(ValueError, match=r"act: user_id must be >= 0, got -7"):
        agent.act({**obs, "user_id": _with_row(obs["user_id"], 0, -7)})
    with pytest.raises(TypeError, match=r"act: candidate_ids must hold integer ids"):
        agent.act({**obs, "candidate_ids": obs["candidate_ids"].astype(np.float64)})
    with pytest.raises(KeyError, match=r"act: the observation lacks \['history'\]"):
        agent.act({k: v for k, v in obs.items() if k != "history"})
    assert_same_state(before, agent.state_dict())

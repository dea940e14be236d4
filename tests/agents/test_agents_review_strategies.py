"""Findings of the user review of the continual-learning strategies: bounds refused at
construction, triggers and windows that the micro-batch would silently override, ``static``
keeping the warm start, atomic ``load_state_dict``, the cost's parameter count, and the reward
signal of ``drift_triggered`` on an engagement reward."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from agent_helpers import make_env, rollout

from driftrec.agents import EWC, make_agent
from driftrec.agents.triggers import DriftAlarm

# ---------------------------------------------------------------------------- bounds

HUGE = [
    # (agent, params, message): each overflowed, went NaN, hung or ran out of memory mid-run.
    ("replay", {"ratio": 1e308}, r"ratio must be in \[0, 100\], got 1e\+308"),
    ("online", {"lr": 1e308}, r"lr must be in \(0, 10\], got 1e\+308"),
    ("online", {"l1": 1e308}, r"l1 must be in \[0, 10\], got 1e\+308"),
    ("online", {"l2": 1e308}, r"l2 must be in \[0, 10\], got 1e\+308"),
    ("online", {"l2": float("inf")}, r"l2 must be finite, got inf"),
    ("online", {"micro_batch": 10**18}, r"micro_batch must be an integer in \[1, 10\*\*6\]"),
    ("online", {"batch_size": 10**18}, r"batch_size must be an integer in \[1, 10\*\*7\]"),
    ("online", {"epochs": 10**18}, r"epochs must be an integer in \[1, 10\*\*4\]"),
    ("static", {"epochs": 10**18}, r"epochs must be an integer in \[1, 10\*\*4\]"),
    ("fine_tune", {"pretrain_epochs": 10**18}, r"pretrain_epochs must be an integer in \[1, 10"),
    ("drift_triggered", {"warmup_epochs": 10**18}, r"warmup_epochs must be an integer in \[1"),
    ("static", {"train_on": 10**15}, r"train_on must be an integer in \[0, 10\*\*8\]"),
    ("static", {"pretrain": 10**15}, r"pretrain must be an integer in \[0, 10\*\*8\]"),
    ("full_retrain", {"every": 10**15}, r"every must be an integer in \[1, 10\*\*8\]"),
    ("full_retrain", {"max_size": 10**15}, r"max_size must be an integer in \[1, 10\*\*8\]"),
    ("fine_tune", {"window": 10**15}, r"window must be an integer in \[1, 10\*\*8\]"),
    ("replay", {"capacity": 10**15}, r"capacity must be an integer in \[1, 10\*\*8\]"),
    ("drift_triggered", {"warmup": 10**15}, r"warmup must be an integer in \[0, 10\*\*8\]"),
    ("drift_triggered", {"hold": 10**18}, r"hold is a time in requests and must be at most"),
    ("drift_triggered", {"reward_scale": float("nan")}, r"reward_scale must be finite"),
    ("incremental", {"ensemble_size": 10**6}, r"ensemble_size must be an integer <= 100"),
]


@pytest.mark.parametrize(("name", "params", "message"), HUGE)
def test_values_that_fail_mid_run_are_refused_at_construction(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_agent(name, make_env(4), **params)


def test_large_values_a_user_might_choose_still_pass():
    env = make_env(4)
    make_agent("online", env, lr=1.0, l2=0.1, micro_batch=4096, batch_size=65_536, epochs=50)
    make_agent("replay", env, capacity=10**7, ratio=10.0)
    make_agent("full_retrain", env, every=10**6, max_size=10**7, epochs=100)
    make_agent("fine_tune", env, every=100_000, window=10**6, pretrain=10**6)


# ---------------------------------------------------------------------------- micro-batch


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        # Retrained once per 256 requests (5 times in 1,280), not every 10.
        ("full_retrain", {"every": 10, "micro_batch": 256}, r"use every >= micro_batch=256"),
        # Trained on 64 examples per update, not on a window of 10.
        (
            "fine_tune",
            {"every": 128, "window": 10, "micro_batch": 64},
            r"window of 10 requests is smaller than the micro-batch \(64\).*window",
        ),
        ("static", {"train_on": 100, "micro_batch": 256}, r"use a window \(window, train_on"),
        ("hybrid", {"every": 100, "micro_batch": 256}, r"use every >= micro_batch=256"),
    ],
)
def test_periods_and_windows_below_the_micro_batch_are_refused(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_agent(name, make_env(4), **params)


def test_batch_size_splits_an_online_micro_batch_as_documented():
    """``LearnerConfig.batch_size``'s documented behaviour: an online step on a micro-batch of
    256 with ``batch_size=64`` takes 4 gradient steps; with the default (512) it takes one."""
    steps = {}
    for batch_size in (64, 512):
        env = make_env(64)
        agent = make_agent("online", env, micro_batch=256, batch_size=batch_size)
        rollout(agent, env, 8, seed=0)  # 512 requests: two micro-batches
        steps[batch_size] = agent.cost()["gradient_steps"]
    assert steps == {64: 8, 512: 2}


# ---------------------------------------------------------------------------- static


def test_static_keeps_the_warm_start():
    """Users seen only in the logged data keep what pretraining taught them: ``static``
    trains the warm-started model on its ``train_on`` requests, it does not re-initialise it
    (before, every one of them lost its pretrained bias)."""
    env = make_env(64, num_users=2000)
    obs, _ = env.reset(seed=0)
    agent = make_agent("static", env, train_on=256, micro_batch=64)
    logged = env.log_interactions(3000)
    agent.pretrain(logged)
    warm = agent.model.state_dict()["user_bias.weight"].clone()
    rollout(agent, env, 6, obs=obs)
    assert agent.cost()["updates"] == [1]
    bias = agent.model.state_dict()["user_bias.weight"]
    assert not torch.equal(bias, warm)  # the update did train
    logged_users = torch.from_numpy(np.unique(logged.observation["user_id"]))
    pretrained = logged_users[warm[logged_users, 0] != 0]
    assert len(pretrained) > 1000
    # The update (256 requests) touched few of them: the others keep their warm start exactly.
    kept = (bias[pretrained] == warm[pretrained]).float().mean().item()
    assert kept > 0.5, kept  # from scratch, none was kept


def test_static_checks_epochs_even_without_train_on():
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1"):
        make_agent("static", make_env(4), train_on=0, pretrain=100, epochs=0)


# ---------------------------------------------------------------------------- state


def _served(agent, steps=3):
    env = make_env(16)
    rollout(agent, env, steps, seed=0)
    return agent


def _snapshot(agent):
    return {k: v.clone() for k, v in agent.model.state_dict().items()}, dict(agent.cost())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model": {"name": "mf", "dim": 32}}, r"model_params: saved \{'dim': '16'\}"),
        ({"optimiser": "sgd"}, r"learner: saved .*optimiser='adam'.*optimiser='sgd'"),
    ],
)
def test_a_failed_load_names_the_difference_and_changes_nothing(params, message):
    saved = _served(
        make_agent("online", make_env(16), model={"name": "mf", "dim": 16})
    ).state_dict()
    params = {"model": {"name": "mf", "dim": 16}, **params}
    agent = _served(make_agent("online", make_env(16), seed=5, **params))
    before, cost = _snapshot(agent)
    with pytest.raises(ValueError, match=message):
        agent.load_state_dict(saved)
    after, cost_after = _snapshot(agent)
    assert before.keys() == after.keys() and cost == cost_after
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_load_failing_half_way_is_rolled_back():
    saved = _served(make_agent("online", make_env(16))).state_dict()
    saved["rng"] = {"bit_generator": "no such generator"}  # fails after the model is loaded
    agent = _served(make_agent("online", make_env(16), seed=5))
    before, cost = _snapshot(agent)
    with pytest.raises(ValueError, match=r"cannot load this state .*the agent is unchanged"):
        agent.load_state_dict(saved)
    after, cost_after = _snapshot(agent)
    assert all(torch.equal(before[k], after[k]) for k in before) and cost == cost_after


# ---------------------------------------------------------------------------- cost


@pytest.mark.parametrize(
    ("name", "params"), [("hybrid", {"pretrain": 0}), ("drift_triggered", {"warmup": 256})]
)
def test_parameters_in_scope_counts_each_parameter_once(name, params):
    """Two rules over the whole model count it once (before: one count per rule, summed by
    the cell to twice the model)."""
    agent = _served(make_agent(name, make_env(16), micro_batch=16, **params))
    total = sum(p.numel() for p in agent.model.parameters())
    assert agent.cost()["parameters_in_scope"] == total


def test_parameters_in_scope_of_a_partial_scope():
    agent = make_agent("incremental", make_env(16), micro_batch=16, every=16)
    scope = sum(p.numel() for p in agent.trainer.rule_states[0].scope.params)
    assert agent.cost()["parameters_in_scope"] == scope
    assert scope < sum(p.numel() for p in agent.model.parameters())


def test_stored_examples_count_the_samples_kept_for_ewc():
    """EWC keeps the last ``fisher_samples`` requests for its Fisher estimate: they are held
    in memory and count as stored (before: 0)."""
    agent = _served(make_agent("ewc", make_env(16), micro_batch=16, fisher_samples=32), 4)
    assert agent.cost()["stored_examples"] == 32


def test_ewc_fisher_passes_count_as_gradient_steps():
    """Each consolidation's Fisher estimate (``EWC.consolidation_cost``: 32 requests in 2
    backward passes of 16) is counted with the gradient steps and examples trained on."""
    plain = _served(make_agent("online", make_env(16), micro_batch=16), 4).cost()
    ewc = make_agent("ewc", make_env(16), micro_batch=16, fisher_samples=32, every=32)
    cost = _served(ewc, 4).cost()  # 64 requests: consolidations at 32 and 64
    passes, examples = EWC(fisher_samples=32, batch_size=256).consolidation_cost(32)
    assert cost["gradient_steps"] == plain["gradient_steps"] + 2 * passes
    assert cost["examples_trained"] == plain["examples_trained"] + 2 * examples
    # ... but they update nothing: the model's steps are the stream's micro-batches
    assert cost["optimiser_steps"] == plain["optimiser_steps"] == plain["gradient_steps"] == 4


# ---------------------------------------------------------------------------- reward signal


def _alarms(trigger, values):
    state, seen = trigger.init_state(), 0
    for start in range(0, len(values), 256):
        part = values[start : start + 256]
        trigger.fires(state, seen, seen + len(part), part)
        seen += len(part)
    return state["alarm_at"]


def test_an_engagement_reward_is_scaled_into_adwins_range():
    """A stationary stream of 40,000 rewards (clicks at 0.4; engagement log-normal, mean 1,
    sigma 1, up to 30): fed raw, ADWIN raised 4 false alarms (at 1,792, 17,152, 20,736 and
    27,136 requests) on this stream; fed ``min(reward / reward_scale, 1)`` it raises none, as
    on the clicks alone. Rewards above ``reward_scale`` are clipped with one warning."""
    rng = np.random.default_rng(2)
    click = (rng.random(40_000) < 0.4).astype(np.float64)
    engagement = click * rng.lognormal(-0.5, 1.0, click.size)
    assert engagement.max() > 25
    assert _alarms(DriftAlarm("reward", hold=2_000), click) == []
    with pytest.warns(RuntimeWarning, match=r"clipped rewards up to .* reward_scale=1 into"):
        assert _alarms(DriftAlarm("reward", hold=2_000), engagement) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled = DriftAlarm("reward", hold=2_000, reward_scale=50.0)
        assert _alarms(scaled, engagement) == []


def test_drift_triggered_passes_reward_scale_to_its_trigger():
    agent = make_agent("drift_triggered", make_env(4), reward_scale=20.0)
    assert agent.strategy.rules[-1].trigger.reward_scale == 20.0


def test_a_jump_before_the_detector_starts_is_not_an_alarm():
    """The reward jumps at 10,240 (a warm-up model replacing an untrained one: 0.2 -> 0.5),
    then stays put; a real shift (0.5 -> 0.2) comes at 30,720. Watched from the start, ADWIN
    alarms at the jump; started at the jump, it alarms at the shift only."""
    rng = np.random.default_rng(0)
    p = np.r_[np.full(10_240, 0.2), np.full(20_480, 0.5), np.full(10_240, 0.2)]
    reward = (rng.random(p.size) < p).astype(np.float64)
    from_start = _alarms(DriftAlarm("reward", hold=2_000), reward)
    assert from_start and from_start[0] < 12_000
    started = _alarms(DriftAlarm("reward", hold=2_000, start=10_240), reward)
    assert started and all(30_720 < t < 33_000 for t in started[:1]) and len(started) == 1


def test_drift_triggered_starts_watching_when_its_warm_up_model_serves():
    agent = make_agent("drift_triggered", make_env(4), warmup=4_096)
    assert agent.strategy.rules[-1].trigger.start == 4_096


def test_the_cost_counts_the_drift_alarms_a_lab_cell_reports():
    agent = make_agent("drift_triggered", make_env(4), warmup=0, hold=512)
    assert agent.cost()["drift_alarms"] == 0
    state = agent.trainer.rule_states[-1]
    rng = np.random.default_rng(0)
    p = np.r_[np.full(8_192, 0.5), np.full(8_192, 0.1)]  # one shift
    reward = (rng.random(p.size) < p).astype(np.float64)
    for start in range(0, p.size, 256):
        state.rule.trigger.fires(
            state.trigger_state, start, start + 256, reward[start : start + 256]
        )
    assert agent.cost()["drift_alarms"] == len(state.trigger_state["alarm_at"]) >= 1
    assert make_agent("online", make_env(4)).cost()["drift_alarms"] == 0

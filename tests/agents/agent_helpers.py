"""Shared helpers of the agent tests: small worlds, a rollout loop, the two ``user_id`` layouts,
and state comparisons."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
import torch

from driftrec.agents import Transition
from driftrec.envs import RecDriftVectorEnv

SMALL = {"num_users": 500, "num_items": 600, "num_candidates": 30, "slate_size": 5}
"""World sizes for tests: random slates score about 0.40 of the oracle here."""


@dataclass
class Rollout:
    """Per-step records of a rollout: ``rho`` (steps,) mean normalised expected reward of the
    step's B requests, ``clock`` (steps,) world clock at the step's first request, and the
    actions taken."""

    rho: np.ndarray
    clock: np.ndarray
    actions: list[np.ndarray] = field(default_factory=list)

    def window_mean(self, start: int, end: int) -> float:
        """Mean normalised reward over steps whose clock lies in [start, end)."""
        mask = (self.clock >= start) & (self.clock < end)
        assert mask.any(), f"no step in [{start}, {end})"
        return float(self.rho[mask].mean())


def make_env(num_envs: int = 256, scenario: str = "stationary", **params) -> RecDriftVectorEnv:
    return RecDriftVectorEnv(num_envs, scenario=scenario, **{**SMALL, **params})


class ArrivalOrderIds:
    """A vector environment whose user and item ids are numbered in order of first appearance
    (as a live system assigns them), plus ``offset``: the largest id grows along the stream, so
    an agent's id tables grow mid-stream; with an ``offset`` beyond the capacities, every id is
    beyond the observation space. Logged interactions (pretraining) are renumbered the same
    way. Everything else is the wrapped environment's."""

    def __init__(self, env: RecDriftVectorEnv, offset: int = 0) -> None:
        self.env, self.offset = env, offset
        cfg = env.config
        self.labels = {"user": np.full(cfg.num_users, -1), "item": np.full(cfg.num_items, -1)}
        self.seen = {"user": 0, "item": 0}

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "env":  # copying looks these up before __init__
            raise AttributeError(name)
        return getattr(self.env, name)

    def _renumber(self, space: str, ids: np.ndarray) -> np.ndarray:
        labels, flat = self.labels[space], np.asarray(ids).reshape(-1)
        valid = flat[flat >= 0]
        new = np.unique(valid[labels[valid] < 0])
        labels[new] = self.seen[space] + np.arange(len(new))
        self.seen[space] += len(new)
        out = np.where(flat >= 0, labels[np.maximum(flat, 0)] + self.offset, -1)
        return out.reshape(np.shape(ids))

    def renumber(self, obs: dict) -> dict:
        obs = dict(obs)
        obs["user_id"] = self._renumber("user", obs["user_id"])
        items = np.concatenate([np.ravel(obs["candidate_ids"]), np.ravel(obs["history"])])
        self._renumber("item", items)  # one numbering for candidates and histories
        obs["candidate_ids"] = self._renumber("item", obs["candidate_ids"])
        obs["history"] = self._renumber("item", obs["history"])
        return obs

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        return self.renumber(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.renumber(obs), reward, terminated, truncated, info

    def log_interactions(self, n: int, **kwargs):
        logged = self.env.log_interactions(n, **kwargs)
        return dataclasses.replace(logged, observation=self.renumber(logged.observation))


def rollout(
    agent, env, steps: int, seed: int | None = None, obs=None, record=False, pretrain: bool = True
) -> tuple[Rollout, dict]:
    """Run ``agent`` on ``env`` for ``steps`` steps (reset with ``seed`` unless ``obs`` is
    given); pretrain first on logged data (the environment's ``log_interactions``) if the
    agent's strategy asks for it."""
    if obs is None:
        obs, _ = env.reset(seed=seed)
        if pretrain and agent.pretrain_requests:
            agent.pretrain(env.log_interactions(agent.pretrain_requests))
    rho, clock, actions = [], [], []
    for _ in range(steps):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        rho.append(float(np.mean(info["expected_reward"] / info["oracle_expected_reward"])))
        clock.append(int(info["t"][0]))
        if record:
            actions.append(action)
        obs = next_obs
    return Rollout(np.array(rho), np.array(clock), actions), obs


def recovered(run: Rollout, at: int, window: int, eps: float = 0.05) -> bool:
    """DESIGN 6, by the metrics library: after a drift at ``at``, does a window [t - W, t)
    after it reach (1 - eps) times the mean over [at - W, at) before the run ends (not
    censored)?"""
    from driftrec.experiments.metrics import Curve, recovery

    batch = int(run.clock[1] - run.clock[0])
    rho = Curve(np.append(run.clock, run.clock[-1] + batch), run.rho)
    return not recovery(rho, at, window, eps).censored


class FlatUserIds:
    """The wrapped environment with ``user_id`` flattened to (B,) per batch (and (n,) in logged
    interactions): the layout before ``user_id`` became (B, 1). Agents must accept both;
    everything else is the wrapped environment's."""

    def __init__(self, env) -> None:
        self.env = env

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        return flat_user_ids(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return flat_user_ids(obs), reward, terminated, truncated, info

    def log_interactions(self, n: int, **kwargs):
        logged = self.env.log_interactions(n, **kwargs)
        return dataclasses.replace(logged, observation=flat_user_ids(logged.observation))


def flat_user_ids(obs: dict) -> dict:
    """``obs`` with ``user_id`` of shape (B,) (from (B,) or (B, 1))."""
    return {**obs, "user_id": np.asarray(obs["user_id"]).reshape(-1)}


PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None), torch.Tensor)


def assert_plain(state, path: str = "state") -> None:
    """``state`` holds tensors and plain containers only (what ``torch.load`` reads with
    ``weights_only=True`` by design, not by luck)."""
    assert isinstance(state, PLAIN_TYPES), f"{path} is a {type(state).__name__}"
    if isinstance(state, dict):
        for key, value in state.items():
            assert isinstance(key, (str, int)), f"{path} has a {type(key).__name__} key"
            assert_plain(value, f"{path}[{key!r}]")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            assert_plain(value, f"{path}[{i}]")


def assert_same_state(a, b, path: str = "state") -> None:
    """Two states are equal, tensors bit for bit (dtypes and shapes included)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same_state(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype} {a.shape}"
        assert torch.equal(a, b), f"{path} differs"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def through_torch_save(state: dict) -> dict:
    """``state`` after a ``torch.save`` / ``torch.load`` round trip (as a checkpoint would be),
    with ``torch.load``'s default ``weights_only=True``: a state holds tensors and plain
    containers only."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer)

"""Top-K off-policy-corrected REINFORCE: a softmax policy over the candidates, trained on the
returns of the user's session.

Chen et al. 2019, "Top-K Off-Policy Correction for a REINFORCE Recommender System", WSDM: the
policy ``pi(a | s)`` is a softmax over the candidates, a slate holds K items drawn from it, and
the REINFORCE gradient of the clicked item is reweighted by the importance ratio against the
behaviour policy (capped) and by the top-K multiplier ``lambda = K (1 - pi(a | s))^(K - 1)``,
the derivative of the probability ``1 - (1 - pi)^K`` that the item is in a slate of K draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from driftrec.agents.checks import LoggedData, check_logged, observation_batch
from driftrec.agents.examples import as_tensor
from driftrec.agents.models.base import candidate_items, user_batch
from driftrec.agents.protocol import OBSERVATION_KEYS, Observation, TaskSizes, Transition
from driftrec.agents.sessions import RunningSessions, SessionStep, check_session_step
from driftrec.agents.trainable import RLAgentBase, RLConfig, id_rows
from driftrec.validation import MAX_SIZE, MAX_WEIGHT, check_flag, check_integer, check_real

__all__ = ["TopKReinforceAgent", "discounted_returns", "topk_multiplier"]


def topk_multiplier(pi: Tensor, k: int) -> Tensor:
    """``lambda_K = K (1 - pi)^(K - 1)`` (Chen et al. 2019, eq. 5), elementwise."""
    return k * (1.0 - pi) ** (k - 1)


def discounted_returns(reward: np.ndarray, lengths: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma G_{t+1}`` within each session: ``reward`` (n,) holds the sessions
    one after another, each in time order, ``lengths`` (m,) their lengths (summing to n).

    Example:
        >>> discounted_returns(np.array([1.0, 1.0, 0.0, 1.0]), np.array([2, 2]), 0.5)
        array([1.5, 1. , 0.5, 1. ])
    """
    m, longest = len(lengths), int(lengths.max(initial=0))
    held = np.arange(longest)[None, :] < lengths[:, None]
    grid = np.zeros((m, longest + 1), dtype=np.float64)
    grid[:, :longest][held] = reward
    for t in range(longest - 1, -1, -1):
        grid[:, t] += gamma * grid[:, t + 1]
    return grid[:, :longest][held]


def _clicked(
    slates: np.ndarray, click_slot: np.ndarray, log_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(the clicked candidate (n,) int64, -1 where no click; its log probability (n,) float32
    under ``log_probs`` (n, C), 0 where no click) of served ``slates`` (n, k)."""
    hit = click_slot >= 0
    rows = np.arange(len(slates))
    action = np.full(len(slates), -1, dtype=np.int64)
    action[hit] = slates[rows[hit], click_slot[hit]]
    log_beta = np.where(hit, log_probs[rows, np.maximum(action, 0)], 0.0).astype(np.float32)
    return action, log_beta


class TopKReinforceAgent(RLAgentBase):
    """Top-K off-policy-corrected REINFORCE (Chen et al. 2019, "Top-K Off-Policy Correction for
    a REINFORCE Recommender System", WSDM).

    The policy is a softmax over the request's candidates of a model of ``MODELS`` (shared
    weights across candidates): ``pi(i | s) = softmax_i(score(s, i))``. A slate is k distinct
    candidates sampled from it (Plackett-Luce, by the Gumbel-top-k trick), and the policy's
    probabilities ``beta(i | s)`` at acting time are kept until the step is observed: they are
    the behaviour policy. Each slot of a batched environment runs one user's session at a
    time; its steps are kept until ``terminated`` (or ``truncated``) ends the session, or the
    session reaches ``max_session`` requests, and then every clicked item ``a_t`` contributes
    ``lambda_K(pi(a_t | s_t)) * min(pi(a_t | s_t) / beta(a_t | s_t), weight_cap) * G_t *
    grad log pi(a_t | s_t)``, with ``G_t`` the discounted return (``gamma``) of the rest of the
    session and ``lambda_K = K (1 - pi)^(K - 1)`` the top-K correction (``topk_correction``;
    without it, 1: plain off-policy REINFORCE). An entropy bonus (``entropy``) over every
    served request keeps the policy from collapsing early. The policy's parameters move between
    acting and learning, so the ratio corrects for the lag; a transition the agent did not act
    on is learned from as if its current policy had served it (ratio 1).

    Args:
        sizes: the task's sizes.
        model: the policy's model (``driftrec.agents.MODELS``).
        model_params: its parameters.
        gamma: discount of the session return, in [0, 1].
        topk_correction: apply the top-K multiplier.
        weight_cap: cap c on the importance ratio, in (0, 1e6].
        entropy: weight of the entropy bonus, in [0, 1e6] (``MAX_WEIGHT``).
        max_session: requests after which a session's steps are learned from even if it has not
            ended (its returns then stop there), in [1, 10**8].
        config: learning rate, optimiser and session steps per gradient step (default: Adam,
            lr 0.05, 32 steps).
        seed: seeds the policy's initial values and the sampling stream.
        device: ``"cpu"`` or ``"cuda"``.
    """

    agent_name = "topk_reinforce"
    default_config = RLConfig(lr=0.05, batch_size=32)

    def __init__(
        self,
        sizes: TaskSizes,
        *,
        model: str = "mf",
        model_params: Mapping[str, Any] | None = None,
        gamma: float = 0.9,
        topk_correction: bool = True,
        weight_cap: float = 10.0,
        entropy: float = 0.01,
        max_session: int = 100,
        config: RLConfig | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            sizes,
            model=model,
            model_params=model_params,
            config=config,
            seed=seed,
            device=device,
        )
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0)
        self.topk_correction = check_flag("topk_correction", topk_correction)
        self.weight_cap = check_real(
            "weight_cap", weight_cap, low=0.0, low_open=True, high=MAX_WEIGHT
        )
        self.entropy = check_real("entropy", entropy, low=0.0, high=MAX_WEIGHT)
        self.max_session = check_integer("max_session", max_session, minimum=1, maximum=MAX_SIZE)
        (self.policy,), self.rng = self._seeded(1)
        self.acted: dict[str, np.ndarray] | None = None
        """The last ``act``: its ``candidate_ids``, ``action`` and ``log_probs`` (B, C)."""
        self.sessions = RunningSessions(self.max_session)
        """Steps of the sessions still running, per slot."""
        self.ready: list[dict[str, np.ndarray]] = []
        """Steps of ended sessions with their returns, waiting for a gradient step."""

    def __repr__(self) -> str:
        return (
            f"TopKReinforceAgent(model={self.model_name!r}, gamma={self.gamma}, "
            f"topk_correction={self.topk_correction}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ policy

    def _logits(self, obs: Mapping[str, np.ndarray]) -> Tensor:
        users, items = user_batch(obs, self.device), candidate_items(obs, self.device)
        return self.policy(users, items)

    def _ensure_rows(self, obs: Mapping[str, np.ndarray]) -> None:
        self.policy.ensure_rows(*id_rows(obs))

    def scores(self, obs: Observation) -> np.ndarray:
        """(B, C) float32 policy logits (e.g. for ranking metrics on probes); no learning."""
        obs = observation_batch(obs, self.sizes, caller="scores")
        self._ensure_rows(obs)
        with torch.inference_mode():
            return self._logits(obs).cpu().numpy().astype(np.float32)

    def greedy(self, obs: Observation) -> np.ndarray:
        """The k most probable candidates (B, k), most probable first (no sampling)."""
        scores = torch.from_numpy(self.scores(obs))
        return torch.topk(scores, self.sizes.slate_size, dim=1).indices.numpy()

    # ------------------------------------------------------------------ protocol

    def act(self, obs: Observation) -> np.ndarray:
        """Slates (B, k) int64 of k distinct candidates sampled from the policy; the policy's
        probabilities are kept as the behaviour policy of this step."""
        obs = observation_batch(obs, self.sizes, caller="act")
        self._ensure_rows(obs)
        with torch.inference_mode():
            log_probs = torch.log_softmax(self._logits(obs), dim=1).cpu().numpy()
        gumbel = -np.log(-np.log(self.rng.random(log_probs.shape)))
        keys = log_probs + gumbel
        slates = np.argsort(-keys, axis=1, kind="stable")[:, : self.sizes.slate_size]
        self.acted = {
            "candidate_ids": obs["candidate_ids"].copy(),
            "action": slates.astype(np.int64),
            "log_probs": log_probs.astype(np.float32),
        }
        return slates.astype(np.int64)

    def _behaviour(self, transition: Transition, step: SessionStep) -> np.ndarray:
        """(n, C) behaviour log probabilities of the served rows: those kept by the ``act``
        that chose this action, else the current policy's."""
        acted = self.acted
        if (
            acted is not None
            and np.array_equal(np.asarray(transition.action), acted["action"])
            and np.array_equal(np.asarray(transition.obs["candidate_ids"]), acted["candidate_ids"])
        ):
            return acted["log_probs"][step.slots]
        obs = step.feedback.obs
        self._ensure_rows(obs)
        with torch.inference_mode():
            return torch.log_softmax(self._logits(obs), dim=1).cpu().numpy()

    def observe(self, transition: Transition) -> None:
        """Add the served rows to their sessions (checked first: a bad transition raises and
        changes nothing); learn from the sessions that ended."""
        step = check_session_step(transition, self.sizes)
        fb = step.feedback
        if not len(fb):
            self.acted = None
            return
        log_probs = self._behaviour(transition, step)
        self.acted = None
        action, log_beta = _clicked(fb.slates, fb.click_slot, log_probs)
        chunk = {key: fb.obs[key] for key in OBSERVATION_KEYS}
        chunk.update(action=action, reward=fb.reward, log_beta=log_beta)
        full = self.sessions.add(step.slots, chunk)
        ending = np.union1d(step.slots[step.ended], full)
        if len(ending):
            steps, lengths = self.sessions.end(ending)
            steps["return"] = discounted_returns(steps["reward"], lengths, self.gamma)
            self.ready.append(steps)
        self._learn()

    def _learn(self) -> None:
        size = self.config.batch_size
        total = sum(len(r["action"]) for r in self.ready)
        if total < size:
            return
        pool = {k: np.concatenate([r[k] for r in self.ready]) for k in self.ready[0]}
        for start in range(0, total - size + 1, size):
            end = start + size
            batch = {k: v[start:end] for k, v in pool.items()}
            rest = {k: v[end:] for k, v in pool.items()}
            self.ready = [rest] if end < total else []
            self._fit(batch)

    def _fit(self, steps: Mapping[str, np.ndarray]) -> None:
        """One gradient step on session steps (``action`` the clicked candidate or -1,
        ``return``, ``log_beta``). The ratio is taken in log space: a saturated policy's
        probabilities underflow to 0, their logarithms do not."""
        obs = {key: steps[key] for key in OBSERVATION_KEYS}
        self._ensure_rows(obs)
        log_probs = torch.log_softmax(self._logits(obs), dim=1)
        action = torch.from_numpy(steps["action"]).to(self.device)
        hit = action >= 0
        log_pi = log_probs[hit].gather(1, action[hit][:, None])[:, 0]
        pi = log_pi.detach().exp()
        log_beta = torch.from_numpy(steps["log_beta"]).to(self.device)[hit]
        weight = (log_pi.detach() - log_beta).clamp_max(math.log(self.weight_cap)).exp()
        if self.topk_correction:
            weight = weight * topk_multiplier(pi, self.sizes.slate_size)
        returns = torch.from_numpy(steps["return"]).to(self.device, torch.float32)[hit]
        n = len(action)
        objective = (weight * returns * log_pi).sum() / n
        entropy = -(log_probs.exp() * log_probs).sum(1).mean()
        self.parameters_updated += self.policy.step(-(objective + self.entropy * entropy))
        self.gradient_steps += 1
        self.examples_trained += n

    def pretrain(self, logged: LoggedData) -> None:
        """Train on logged interactions (``env.log_interactions(n)``, checked like a step) as
        one-request sessions served by the current policy (the log's slate propensities give
        no per-item behaviour probabilities, so the ratio is 1): each clicked item's log
        probability, weighted by its reward, ``batch_size`` requests per gradient step."""
        feedback = check_logged(logged, self.sizes)
        self._ensure_rows(feedback.obs)
        with torch.no_grad():
            log_probs = torch.log_softmax(self._logits(feedback.obs), dim=1).cpu().numpy()
        action, log_beta = _clicked(feedback.slates, feedback.click_slot, log_probs)
        size = self.config.batch_size
        for start in range(0, len(feedback), size):
            part = slice(start, start + size)
            steps = {key: feedback.obs[key][part] for key in OBSERVATION_KEYS}
            steps.update(action=action[part], log_beta=log_beta[part], reward=feedback.reward[part])
            steps["return"] = feedback.reward[part].astype(np.float64)
            self._fit(steps)

    def _stored_examples(self) -> int:
        """Session steps held: of running sessions, and of ended ones awaiting a step."""
        return len(self.sessions) + sum(len(r["action"]) for r in self.ready)

    # ------------------------------------------------------------------ state

    def _settings(self) -> tuple[Any, ...]:
        return (self.gamma, self.topk_correction, self.weight_cap, self.entropy, self.max_session)

    def _own_state(self) -> dict[str, Any]:
        """The policy, the pending act, the running sessions and the ready steps."""

        def tensors(chunk: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
            return {k: as_tensor(v) for k, v in chunk.items()}

        return {
            "policy": self.policy.state_dict(),
            "acted": None if self.acted is None else tensors(self.acted),
            "sessions": self.sessions.state_dict(),
            "ready": [tensors(r) for r in self.ready],
        }

    def _load_own_state(self, state: dict[str, Any]) -> None:
        def arrays(chunk: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
            return {k: v.numpy().copy() for k, v in chunk.items()}

        self.policy.load_state_dict(state["policy"])
        self.acted = None if state["acted"] is None else arrays(state["acted"])
        self.sessions.load_state_dict(state["sessions"])
        self.ready = [arrays(r) for r in state["ready"]]

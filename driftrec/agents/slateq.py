"""SlateQ: long-term item values combined with a learned choice model to build slates.

Ie et al. 2019, "SlateQ: A Tractable Decomposition for Reinforcement Learning with
Recommendation Sets", IJCAI: the value of a slate decomposes into the values of its items,
``Q(s, A) = sum_{i in A} P(i | s, A) Qbar(s, i) + P(none | s, A) Qbar(s, none)``, where
``P(i | s, A)`` is the user's conditional choice model. Item values are learned by TD on the
consumed (clicked) item only, and the slate maximising ``Q(s, A)`` under a multinomial logit
choice model is found by the paper's top-k or greedy optimisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from driftrec.agents.checks import Feedback, LoggedData, check_logged, observation_batch
from driftrec.agents.examples import SlateExamples, as_tensor
from driftrec.agents.exploration import random_slates
from driftrec.agents.losses import click_loss, slot_logits, training_batch
from driftrec.agents.models.base import (
    Recommender,
    candidate_items,
    frozen_copy,
    shown_items,
    user_batch,
)
from driftrec.agents.optimisers import written_parameters
from driftrec.agents.protocol import Observation, TaskSizes, Transition
from driftrec.agents.sessions import check_session_step
from driftrec.agents.trainable import RLAgentBase, RLConfig, id_rows
from driftrec.validation import (
    MAX_SIZE,
    check_choice,
    check_fraction,
    check_integer,
    check_real,
)

__all__ = ["SLATE_METHODS", "SlateQAgent", "optimise_slates", "slate_value"]

SLATE_METHODS = ("greedy", "top_k")
"""``top_k``: the k candidates with the largest ``v(s, i) Q(s, i)`` (the paper's top-k
optimisation); ``greedy``: slots filled one at a time, each with the candidate that most raises
the slate's value (the paper's greedy optimisation)."""


def _attractions(logits: Tensor, slot_bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """MNL weights, shifted for stability: item ``exp(l - m)`` (n, C), slot ``exp(b)`` (k,), and
    the no-click option's ``exp(-m)`` (n,), where the no-click logit is 0 and ``m`` bounds
    every logit of the row."""
    shift = logits.amax(dim=1).clamp_min(0.0) + slot_bias.amax().clamp_min(0.0)
    return (logits - shift[:, None]).exp(), slot_bias.exp(), (-shift).exp()


def slate_value(
    logits: Tensor, q: Tensor, q_none: Tensor, slot_bias: Tensor, slates: Tensor
) -> Tensor:
    """``Q(s, A)`` (n,) of ``slates`` (n, k) positions under the MNL choice model: the values
    weighted by the choice probabilities, a softmax over the slate's logits plus the no-click
    logit 0 (stable for logits of any size, where ``exp`` would overflow or underflow to 0/0).

    Args:
        logits: (n, C) click logits of the candidates (the no-click logit is 0).
        q: (n, C) item values ``Qbar(s, i)``.
        q_none: () or (n,) value of no click.
        slot_bias: (k,) additive slot effects on the click logit.
        slates: (n, k) candidate positions.
    """
    shown = logits.gather(1, slates) + slot_bias
    choice = torch.softmax(torch.cat([shown, torch.zeros_like(shown[:, :1])], dim=1), dim=1)
    return (choice[:, :-1] * q.gather(1, slates)).sum(1) + choice[:, -1] * q_none


def optimise_slates(
    logits: Tensor, q: Tensor, q_none: Tensor, slot_bias: Tensor, k: int, method: str
) -> Tensor:
    """Slates (n, k) int64 maximising :func:`slate_value` by ``method`` (see
    :data:`SLATE_METHODS`). Ties go to the earlier candidate.

    The greedy method keeps each row's slate value ``V`` and the log of its MNL normaliser
    ``L`` (no-click included); adding a candidate of log weight ``a`` and value ``q`` gives
    ``sigmoid(L - a) V + sigmoid(a - L) q``: no ``exp`` of a logit, so no overflow."""
    if method == "top_k":
        v, _, _ = _attractions(logits, slot_bias)
        return torch.topk(v * q, k, dim=1).indices
    n, c = q.shape
    value = q_none * torch.ones(n, dtype=q.dtype, device=q.device)
    log_norm = torch.zeros(n, dtype=q.dtype, device=q.device)
    taken = torch.zeros((n, c), dtype=torch.bool, device=q.device)
    slates = torch.empty((n, k), dtype=torch.int64, device=q.device)
    rows = torch.arange(n, device=q.device)
    for slot in range(k):
        a = logits + slot_bias[slot]
        keep = torch.sigmoid(log_norm[:, None] - a)
        candidate = keep * value[:, None] + (1.0 - keep) * q
        best = candidate.masked_fill(taken, float("-inf")).argmax(dim=1)
        slates[:, slot] = best
        taken[rows, best] = True
        value = candidate[rows, best]
        log_norm = torch.logaddexp(log_norm, a[rows, best])
    return slates


class SlateQAgent(RLAgentBase):
    """SlateQ (Ie et al. 2019, "SlateQ: A Tractable Decomposition for Reinforcement Learning
    with Recommendation Sets", IJCAI): item-wise long-term values under a learned choice model.

    Two models of ``MODELS`` score (user, candidate) pairs with shared weights across
    candidates: a *choice model*, the multinomial logit ``P(i | s, A) = exp(l_i + b_slot) /
    (1 + sum_j exp(l_j + b_slot))`` with a no-click option (logit 0) and learned slot biases,
    trained by cross-entropy on the observed clicks (the lab's ``softmax`` click loss); and an
    *item-value model* ``Qbar(s, i)``, with a learned scalar ``Qbar(s, none)`` for no click.
    Values are learned by TD on the clicked item (on the no-click value where there was no
    click), Q-learning style: the target is ``r + gamma * Q(s', A*)``, where ``A*`` is the
    slate the agent would now serve at the session's next request ``s'`` (chosen with the
    current value model, valued with a target copy synced every ``target_every`` gradient
    steps, as in double DQN), and ``r`` alone where the session ended (no bootstrap across
    sessions). ``gamma=0`` is the myopic special case: slates that maximise the expected
    immediate reward.

    Slates maximise ``Q(s, A)`` by the paper's top-k or greedy optimisation
    (``slate_method``); with probability ``epsilon`` per request the slate is uniformly random.

    Args:
        sizes: the task's sizes.
        model: name of the model family for both models (``driftrec.agents.MODELS``).
        model_params: the models' parameters.
        gamma: discount in [0, 1).
        slate_method: ``"greedy"`` or ``"top_k"``.
        epsilon: probability of a random slate, in [0, 1].
        target_every: gradient steps between syncs of the target value model, in [1, 10**8].
        config: learning rate, optimiser and requests per gradient step (default: Adam, lr
            0.01, 64 requests).
        seed: seeds the models' initial values and the exploration stream.
        device: ``"cpu"`` or ``"cuda"``.
    """

    agent_name = "slateq"
    default_config = RLConfig()

    def __init__(
        self,
        sizes: TaskSizes,
        *,
        model: str = "mf",
        model_params: Mapping[str, Any] | None = None,
        gamma: float = 0.5,
        slate_method: str = "greedy",
        epsilon: float = 0.05,
        target_every: int = 20,
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
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, high_open=True)
        self.slate_method = check_choice("slate_method", slate_method, SLATE_METHODS)
        self.epsilon = check_fraction("epsilon", epsilon, closed_below=True)
        self.target_every = check_integer("target_every", target_every, minimum=1, maximum=MAX_SIZE)
        (self.choice, self.value), self.rng = self._seeded(2)
        self.none_value = nn.Parameter(torch.zeros((), device=self.device))
        self.none_optimiser = _scalar_optimiser(self.none_value, self.config)
        self.target: Recommender = frozen_copy(self.value.model)
        self.target_none = torch.zeros((), device=self.device)
        self.pending: list[dict[str, np.ndarray]] = []
        self.pending_rows = 0

    def __repr__(self) -> str:
        return (
            f"SlateQAgent(model={self.model_name!r}, gamma={self.gamma}, "
            f"slate_method={self.slate_method!r}, epsilon={self.epsilon}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ scoring

    def _ensure_rows(self, *batches: Mapping[str, np.ndarray]) -> None:
        users, items = id_rows(*batches)
        self.choice.ensure_rows(users, items)
        self.value.ensure_rows(users, items, followers=(self.target,))

    def _plan(self, obs: Mapping[str, np.ndarray], value_model: Recommender | None = None):
        """(click logits, item values (n, C), slates (n, k)) of a checked batch; values from
        ``value_model`` (default: the trained value model), slates chosen with the latter."""
        users, items = user_batch(obs, self.device), candidate_items(obs, self.device)
        logits, q = self.choice(users, items), self.value(users, items)
        slot_bias = self.choice.model.slot_bias
        slates = optimise_slates(
            logits, q, self.none_value, slot_bias, self.sizes.slate_size, self.slate_method
        )
        if value_model is not None:
            q = value_model(users, items)
        return logits, q, slates

    def greedy(self, obs: Observation) -> np.ndarray:
        """The optimised slates (B, k), without exploration or learning (e.g. for probes)."""
        return self._optimised(observation_batch(obs, self.sizes, caller="greedy"))

    def _optimised(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        self._ensure_rows(obs)
        with torch.inference_mode():
            return self._plan(obs)[2].cpu().numpy()

    def scores(self, obs: Observation) -> np.ndarray:
        """(B, C) float32 ``v(s, i) Q(s, i)``: the key of the paper's top-k optimisation (for
        ranking metrics on probe sets). No exploration, no learning."""
        obs = observation_batch(obs, self.sizes, caller="scores")
        self._ensure_rows(obs)
        with torch.inference_mode():
            users, items = user_batch(obs, self.device), candidate_items(obs, self.device)
            logits, q = self.choice(users, items), self.value(users, items)
            v, _, _ = _attractions(logits, self.choice.model.slot_bias)
            return (v * q).cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------ protocol

    def act(self, obs: Observation) -> np.ndarray:
        """Slates (B, k) int64: the optimised slate, or with probability ``epsilon`` a random
        one (no learning happens here)."""
        slates = self._optimised(observation_batch(obs, self.sizes, caller="act"))
        explore = np.flatnonzero(self.rng.random(len(slates)) < self.epsilon)
        if len(explore):
            k, c = self.sizes.slate_size, self.sizes.num_candidates
            slates[explore] = random_slates(len(explore), c, k, self.rng)
        return slates.astype(np.int64)

    def observe(self, transition: Transition) -> None:
        """Keep the served rows (checked first: a bad transition raises and changes nothing);
        every ``batch_size`` requests, one gradient step of the choice model and one TD step
        of the item values."""
        step = check_session_step(transition, self.sizes)
        fb = step.feedback
        if not len(fb):
            return
        chunk = {f"obs.{k}": v for k, v in fb.obs.items()}
        chunk.update({f"next.{k}": v for k, v in step.next_obs.items()})
        chunk.update(slates=fb.slates, click_slot=fb.click_slot, reward=fb.reward)
        chunk["ended"] = step.ended
        self.pending.append({k: np.array(v, copy=True) for k, v in chunk.items()})
        self.pending_rows += len(fb)
        if self.pending_rows >= self.config.batch_size:
            rows = {k: np.concatenate([c[k] for c in self.pending]) for k in self.pending[0]}
            self.pending, self.pending_rows = [], 0
            self._learn(rows)

    def _learn(self, rows: dict[str, np.ndarray]) -> None:
        obs = {k[4:]: v for k, v in rows.items() if k.startswith("obs.")}
        next_obs = {k[5:]: v for k, v in rows.items() if k.startswith("next.")}
        self._ensure_rows(obs, next_obs)
        with torch.no_grad():
            logits, q_next, slates = self._plan(next_obs, value_model=self.target)
            slot_bias = self.choice.model.slot_bias
            future = slate_value(logits, q_next, self.target_none, slot_bias, slates)
        ended = torch.from_numpy(rows["ended"]).to(self.device)
        target = torch.from_numpy(rows["reward"]).to(self.device)
        target = target + self.gamma * future.masked_fill(ended, 0.0)
        self._fit(Feedback(obs, rows["slates"], rows["click_slot"], rows["reward"]), target)

    def _fit(self, feedback: Feedback, target: Tensor) -> None:
        """One gradient step of each model on served requests; ``target`` (n,) the TD targets
        of the clicked items' values (of the no-click value where there was no click)."""
        examples = SlateExamples.from_feedback(feedback)
        batch = training_batch(examples, self.device)
        written = self.choice.step(
            click_loss("softmax", slot_logits(self.choice.model, batch), batch)
        )
        clicked = batch.click_slot
        hit = clicked >= 0
        shown = shown_items(examples, self.device)
        q = self.value(batch.users, shown).gather(1, clicked.clamp_min(0)[:, None])[:, 0]
        estimate = torch.where(hit, q, self.none_value.expand_as(q))
        loss = ((estimate - target) ** 2).mean()
        self.none_optimiser.zero_grad()
        written += self.value.step(loss) + written_parameters([self.none_value])
        self.none_optimiser.step()
        self.parameters_updated += written
        self.gradient_steps += 1
        self.examples_trained += len(examples)
        if self.gradient_steps % self.target_every == 0:
            self._sync_target()

    def _sync_target(self) -> None:
        self.target = frozen_copy(self.value.model)
        self.target_none = self.none_value.detach().clone()

    def pretrain(self, logged: LoggedData) -> None:
        """Train on logged interactions (``env.log_interactions(n)``, checked like a step):
        the choice model on the clicks, the item values on the immediate rewards (a log holds
        no next request to bootstrap from), ``batch_size`` requests per gradient step; then
        the target model is synced."""
        feedback = check_logged(logged, self.sizes)
        self._ensure_rows(feedback.obs)
        size = self.config.batch_size
        for start in range(0, len(feedback), size):
            part = slice(start, start + size)
            obs = {k: v[part] for k, v in feedback.obs.items()}
            reward = feedback.reward[part]
            chunk = Feedback(obs, feedback.slates[part], feedback.click_slot[part], reward)
            self._fit(chunk, torch.from_numpy(reward).to(self.device))
        self._sync_target()

    def _stored_examples(self) -> int:
        """Requests gathered for the next gradient step (each a step of both models)."""
        return self.pending_rows

    # ------------------------------------------------------------------ state

    def _settings(self) -> tuple[Any, ...]:
        return (self.gamma, self.slate_method, self.epsilon, self.target_every)

    def _own_state(self) -> dict[str, Any]:
        return {
            "choice": self.choice.state_dict(),
            "value": self.value.state_dict(),
            "target": self.target.state_dict(),
            "none_value": self.none_value.detach(),
            "none_optimiser": self.none_optimiser.state_dict(),
            "target_none": self.target_none,
            "pending": [{k: as_tensor(v) for k, v in c.items()} for c in self.pending],
            "pending_rows": self.pending_rows,
        }

    def _load_own_state(self, state: dict[str, Any]) -> None:
        self.choice.load_state_dict(state["choice"])
        self.value.load_state_dict(state["value"])
        self.target = frozen_copy(self.value.model, state["target"])
        with torch.no_grad():
            self.none_value.copy_(state["none_value"])
        self.none_optimiser = _scalar_optimiser(self.none_value, self.config)
        self.none_optimiser.load_state_dict(state["none_optimiser"])
        self.target_none = state["target_none"].to(self.device)
        self.pending = [{k: v.numpy().copy() for k, v in c.items()} for c in state["pending"]]
        self.pending_rows = int(state["pending_rows"])


def _scalar_optimiser(param: nn.Parameter, config: RLConfig) -> torch.optim.Optimizer:
    if config.optimiser == "sgd":
        return torch.optim.SGD([param], lr=config.lr)
    return torch.optim.Adam([param], lr=config.lr)

"""A learning agent: a recommender model, a continual-learning strategy and an exploration
policy behind the batch-first agent protocol.

The agent never inspects its components' types: the exploration declares whether it needs
per-user counts or an ensemble, the model offers its own fast scoring path
(``numpy_scorer``), and the trainer reads the strategy's declarations (see
:mod:`driftrec.agents.trainer`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from driftrec.agents.checks import LoggedData, check_transition, observation_batch
from driftrec.agents.examples import SlateExamples, as_tensor
from driftrec.agents.exploration import Exploration, Greedy
from driftrec.agents.models import candidate_items, make_model, user_batch
from driftrec.agents.models.base import ItemBatch, Recommender, Scorer, UserBatch
from driftrec.agents.models.tables import grown_rows
from driftrec.agents.protocol import AgentBase, Observation, TaskSizes, Transition
from driftrec.agents.strategies import LearnerConfig, Strategy
from driftrec.agents.trainable import check_device, rows_needed
from driftrec.agents.trainer import Trainer
from driftrec.validation import check_integer, check_optional_integer

__all__ = ["LearningAgent"]


class LearningAgent(AgentBase):
    """A torch recommender that learns from its own traffic as its strategy says.

    Args:
        sizes: the task's sizes (``driftrec.agents.task_sizes(env)``).
        strategy: the continual-learning strategy (``driftrec.agents.make_strategy``).
        model: model name (``driftrec.agents.models.MODELS``).
        model_params: the model's parameters.
        learner: loss, optimiser, learning rate, L1/L2, batch sizes.
        exploration: how scores become slates.
        seed: seeds the model's initial values, the trainer's and the explorer's streams (one
            ``SeedSequence``, spawned three ways; global RNGs are never used).
        device: ``"cpu"`` or ``"cuda"``.
        act_chunk: rows scored at once when acting on CPU (bounds the (rows, C, d) gather so
            it stays in cache; 256 is fastest on common CPUs).

    Any non-negative user or item id works, also beyond the capacities in ``sizes``: before a
    batch is scored or learned from, the model's id tables (and everything that holds per-row
    state: optimisers, anchors, teachers, ensemble members, the per-user counts of Thompson
    sampling) grow to hold its ids (see ``driftrec.agents.models.tables``). Start the tables
    small with ``model_params={"initial_rows": ...}``.

    A strategy that pretrains says how many logged requests it wants
    (:attr:`pretrain_requests`); they come from the environment's documented channel, after
    ``reset``: ``agent.pretrain(env.log_interactions(agent.pretrain_requests))``.

    Example:
        >>> from driftrec.envs import RecDriftVectorEnv
        >>> from driftrec.agents import make_agent
        >>> env = RecDriftVectorEnv(8, num_users=200, num_items=300, num_candidates=20,
        ...                         slate_size=4)
        >>> agent = make_agent("online", env, model="mf", seed=0)
        >>> obs, _ = env.reset(seed=0)
        >>> agent.act(obs).shape
        (8, 4)
    """

    learns: ClassVar[bool] = True

    def __init__(
        self,
        sizes: TaskSizes,
        strategy: Strategy,
        *,
        model: str = "mf",
        model_params: Mapping[str, Any] | None = None,
        learner: LearnerConfig | None = None,
        exploration: Exploration | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        act_chunk: int = 256,
    ) -> None:
        if not isinstance(sizes, TaskSizes):
            raise TypeError(
                f"sizes must be TaskSizes (driftrec.agents.task_sizes(env)), got {sizes!r}"
            )
        if not isinstance(strategy, Strategy):
            raise TypeError(
                "strategy must be a Strategy (driftrec.agents.make_strategy(name)), got "
                f"{strategy!r}"
            )
        if learner is not None and not isinstance(learner, LearnerConfig):
            raise TypeError(f"learner must be a LearnerConfig or None, got {learner!r}")
        if exploration is not None and not isinstance(exploration, Exploration):
            raise TypeError(
                "exploration must be an exploration policy (see driftrec.agents.EXPLORATIONS: "
                f"needs_user_counts, needs_ensemble and select), got {exploration!r}"
            )
        if exploration is not None and exploration.needs_ensemble:
            if not any(rule.merge.members > 1 for rule in strategy.rules):
                raise ValueError(
                    f"{exploration!r} needs a strategy that keeps an ensemble (e.g. "
                    "make_agent('incremental', env, merge='ensemble')), or an exploration that "
                    "needs none (e.g. Thompson(posterior='last_layer'))"
                )
        self.sizes = sizes
        self.strategy = strategy
        self.model_name = model
        self.model_params = dict(model_params or {})
        self.learner = learner or LearnerConfig()
        self.exploration = exploration or Greedy()
        self.device = check_device(device)
        self.act_chunk = check_integer("act_chunk", act_chunk, minimum=1)
        self.seed = seed = check_integer("seed", seed, minimum=0)
        train_seq, explore_seq, torch_seq = np.random.SeedSequence(seed).spawn(3)
        generator = torch.Generator().manual_seed(int(torch_seq.generate_state(1, np.uint64)[0]))
        self.model = make_model(model, sizes, generator, self.device, **dict(model_params or {}))
        self.trainer = Trainer(
            self.model,
            strategy,
            self.learner,
            np.random.default_rng(train_seq),
            generator,
            self.device,
        )
        self.rng = np.random.default_rng(explore_seq)
        # The model's fast scoring path while acting (None: score with the model).
        self._scorer: Scorer | None = None
        self.user_counts = np.zeros(min(self.model.initial_rows, sizes.num_users), np.int64)
        """(rows,) requests observed per user id, counted if the exploration declares
        ``needs_user_counts`` (grown with the id tables either way)."""

    def __repr__(self) -> str:
        return (
            f"LearningAgent(strategy={self.strategy.name!r}, model={self.model_name!r}, "
            f"exploration={self.exploration!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ Ranker

    @property
    def models(self) -> list[Recommender]:
        """The serving models: the current one, then any ensemble members."""
        return [self.model, *self.trainer.members]

    def score(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """(B, C) scores of the candidates: the mean over the serving models."""
        models = self.models
        if self._scorer is not None and len(models) == 1:
            return self._scorer(users, items)
        scores = models[0](users, items)
        for member in models[1:]:
            scores = scores + member(users, items)
        return scores / len(models) if len(models) > 1 else scores

    # ------------------------------------------------------------------ growing

    def ensure_rows(
        self, user_id: np.ndarray, item_ids: np.ndarray, history: np.ndarray | None = None
    ) -> None:
        """Grow the id tables, and all per-row state, to hold these ids (numpy arrays of user
        ids, item ids, history item ids; -1 padding is ignored). One max per array."""
        users = rows_needed(np.asarray(user_id))
        items = rows_needed(np.asarray(item_ids))
        if history is not None:
            items = max(items, rows_needed(np.asarray(history)))
        self.trainer.ensure_rows(users, items)
        counts = self.user_counts
        if users > len(counts):
            rows = grown_rows(len(counts), users, self.sizes.num_users)
            self.user_counts = np.concatenate([counts, np.zeros(rows - len(counts), np.int64)])

    def _ensure_rows_for(self, obs: Observation) -> None:
        self.ensure_rows(obs["user_id"], obs["candidate_ids"], obs["history"])

    # ------------------------------------------------------------------ protocol

    def act(self, obs: Observation) -> np.ndarray:
        """Slates (B, k) int64 for a batch of requests (no learning happens here). ``user_id``
        may be (B,) or (B, 1)."""
        obs = observation_batch(obs, self.sizes, caller="act")
        n = len(obs["user_id"])
        k = self.sizes.slate_size
        chunk = n if self.device.type != "cpu" else self.act_chunk
        out = np.empty((n, k), dtype=np.int64)
        self._ensure_rows_for(obs)
        with torch.inference_mode():
            self._scorer = self.model.numpy_scorer()
            for start in range(0, n, chunk):
                part = {key: value[start : start + chunk] for key, value in obs.items()}
                users = user_batch(part, self.device)
                items = candidate_items(part, self.device)
                out[start : start + chunk] = self.exploration.select(
                    self, users, items, k, self.rng
                )
            self._scorer = None
        return out

    def scores(self, obs: Observation) -> np.ndarray:
        """(B, C) float32 scores of the candidates (the serving models' mean; higher is
        better), e.g. for ranking metrics on probe sets. No exploration, no learning."""
        obs = observation_batch(obs, self.sizes, caller="scores")
        n = len(obs["user_id"])
        out = np.empty((n, self.sizes.num_candidates), dtype=np.float32)
        self._ensure_rows_for(obs)
        with torch.inference_mode():
            self._scorer = self.model.numpy_scorer()
            for start in range(0, n, self.act_chunk):
                part = {key: value[start : start + self.act_chunk] for key, value in obs.items()}
                users, items = user_batch(part, self.device), candidate_items(part, self.device)
                out[start : start + self.act_chunk] = self.score(users, items).cpu().numpy()
            self._scorer = None
        return out

    def greedy(self, obs: Observation) -> np.ndarray:
        """The greedy slates (B, k) (no exploration, no learning), e.g. for probe sets."""
        scores = torch.from_numpy(self.scores(obs))
        return torch.topk(scores, self.sizes.slate_size, dim=1).indices.numpy()

    def observe(self, transition: Transition) -> None:
        """Learn (as the strategy decides) from a batch of served requests.

        The transition is checked first (``driftrec.agents.checks.check_transition``): a bad
        one raises and leaves the agent exactly as it was. Rows with ``info["served"]`` False
        (a session being reset under next-step autoreset) are not learned from."""
        feedback = check_transition(transition, self.sizes)
        if not len(feedback):
            return
        examples = SlateExamples.from_feedback(feedback)
        self._ensure_rows_for(feedback.obs)
        if self.exploration.needs_user_counts:
            self.user_counts += np.bincount(examples.user_id, minlength=len(self.user_counts))
        self.trainer.observe(examples, feedback.obs)

    @property
    def pretrain_requests(self) -> int:
        """How many logged requests the strategy wants before the stream (0: none):
        ``agent.pretrain(env.log_interactions(agent.pretrain_requests))``."""
        return self.strategy.pretrain_requests

    def pretrain(self, logged: LoggedData | SlateExamples, epochs: int | None = None) -> None:
        """Train on logged interactions before the stream: an environment's
        ``env.log_interactions(n)`` (checked like an observed step), or
        :class:`SlateExamples`. A runner calls
        ``agent.pretrain(env.log_interactions(agent.pretrain_requests))`` after ``reset``."""
        epochs = check_optional_integer("epochs", epochs, minimum=1)
        if isinstance(logged, SlateExamples):
            examples = logged
        else:
            examples = SlateExamples.from_logged(logged, self.sizes)
        self.ensure_rows(examples.user_id, examples.item_ids, examples.history)
        self.trainer.pretrain(examples, epochs)

    def cost(self) -> dict[str, Any]:
        """Learning cost so far: gradient steps, examples trained on, updates per rule,
        parameters in each rule's scope, examples held in stores."""
        return self.trainer.cost()

    def _signature(self) -> dict[str, Any]:
        # Plain values (the strategy's and learner's reprs are complete descriptions of their
        # frozen configuration), so that the state loads with torch.load's weights_only=True.
        return {
            "strategy": repr(self.strategy),
            "learner": repr(self.learner),
            "model": self.model_name,
            "model_params": {key: repr(value) for key, value in sorted(self.model_params.items())},
            "sizes": dataclasses.asdict(self.sizes),
        }

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything that determines future behaviour, in tensors and plain
        containers only (dict, list, str, int, float, bool, None): ``torch.save`` it, and
        ``torch.load`` reads it back with its default ``weights_only=True``."""
        return copy.deepcopy(
            {
                "signature": self._signature(),
                "trainer": self.trainer.state_dict(),
                "rng": self.rng.bit_generator.state,
                "user_counts": as_tensor(self.user_counts),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also one read back by ``torch.load``); the agent then
        continues bit-identically.

        Everything is checked before anything changes (the signature: strategy, learner,
        model name, model parameters and sizes; the model's tensors and their shapes; the
        optimiser's parts): a state that does not fit raises ValueError saying what differs,
        and leaves the agent exactly as it was (a load that fails further in is rolled
        back)."""
        mine, theirs = self._signature(), state.get("signature")
        if theirs != mine:
            differ = sorted(
                key for key in {*mine, *(theirs or {})} if (theirs or {}).get(key) != mine.get(key)
            )
            details = "; ".join(
                f"{key}: saved {(theirs or {}).get(key)!r}, this agent {mine.get(key)!r}"
                for key in differ
            )
            raise ValueError(
                f"this state belongs to another agent ({details}): build the agent with the "
                "same strategy, learner, model, model parameters and environment sizes"
            )
        self.trainer.check_state(state["trainer"])
        state = copy.deepcopy(state)
        before = self.state_dict()
        try:
            self._load(state)
        except Exception as error:
            self._load(before)
            raise ValueError(f"cannot load this state ({error}); the agent is unchanged") from error

    def _load(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state["trainer"])
        self.rng.bit_generator.state = state["rng"]
        self.user_counts = state["user_counts"].numpy().copy()

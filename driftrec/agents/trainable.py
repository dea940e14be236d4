"""A recommender model with its own optimiser, for agents that train a model directly rather
than through a continual-learning strategy (the RL agents: :mod:`driftrec.agents.slateq`,
:mod:`driftrec.agents.reinforce`).

:class:`TrainableModel` builds a model of ``MODELS`` from a seeded generator, keeps a
:class:`~driftrec.agents.optimisers.SplitOptimiser` over all of its parameters (lazy Adam on
the sparse id tables), grows the model's id tables and the optimiser's per-row state together,
and saves and restores both. :class:`RLConfig` holds the learning settings those agents share,
and :class:`RLAgentBase` the rest of what they share: the configuration they store, their
seeded streams, their learning counters and the common part of their state.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from driftrec.agents.models import make_model
from driftrec.agents.models.base import ItemBatch, Recommender, UserBatch
from driftrec.agents.models.tables import grow_tables, id_tables_of, match_rows, resize_to_state
from driftrec.agents.optimisers import OPTIMISERS, SplitOptimiser, check_optimiser
from driftrec.agents.protocol import AgentBase, TaskSizes
from driftrec.agents.scopes import sparse_tables
from driftrec.validation import MAX_LR, MAX_SIZE, check_integer, check_real

__all__ = [
    "OPTIMISERS",
    "RLAgentBase",
    "RLConfig",
    "TrainableModel",
    "available_devices",
    "check_device",
    "check_exploration",
    "id_rows",
    "rows_needed",
]


def rows_needed(*ids: np.ndarray) -> int:
    """Rows an id table needs to hold every id of ``ids``: the largest + 1 (0 if none)."""
    return max((int(a.max()) + 1 for a in ids if a.size), default=0)


def id_rows(*batches: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """User rows and item rows the id tables need for every id of ``batches`` (observation
    batches: ``user_id``, and ``candidate_ids`` and ``history`` for the items)."""
    users = rows_needed(*(b["user_id"] for b in batches))
    items = rows_needed(*(a for b in batches for a in (b["candidate_ids"], b["history"])))
    return users, items


def available_devices() -> list[str]:
    """The devices this process can put a model on: ``cpu``, and ``cuda:0`` ... ``cuda:N-1``
    when torch sees N CUDA GPUs."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(gpus))]


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` this process can use (``cpu``, ``cuda`` or ``cuda:i``
    when torch sees that GPU), or a ``ValueError`` that names it and lists the devices
    available here. Checked at construction: ``cuda`` on a CPU-only torch, ``mps`` or
    ``meta`` would otherwise fail on the first tensor, with torch's own message.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    available = available_devices()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be one of {available} (or a torch.device), got {device!r}"
        ) from error
    usable = (parsed.type == "cpu" and parsed.index in (None, 0)) or (
        parsed.type == "cuda" and (parsed.index or 0) < len(available) - 1
    )
    if not usable:
        raise ValueError(
            f"device {device!r} is not available here: device must be one of {available}"
            + ("" if len(available) > 1 else " (torch sees no CUDA GPU)")
        )
    return parsed


@dataclass(frozen=True)
class RLConfig:
    """The learning settings shared by the RL agents (checked here; errors name the field)."""

    lr: float = 0.01
    """Learning rate of every model the agent trains, in (0, 10] (``MAX_LR``)."""
    optimiser: str = "adam"
    """``adam`` (lazy Adam on id tables, Adam elsewhere) or ``sgd``."""
    batch_size: int = 64
    """Requests gathered before a gradient step, in [1, 10**8] (``MAX_SIZE``)."""

    def __post_init__(self) -> None:
        lr = check_real("lr", self.lr, low=0.0, low_open=True, high=MAX_LR)
        object.__setattr__(self, "lr", lr)
        check_optimiser(self.optimiser)
        batch = check_integer("batch_size", self.batch_size, minimum=1, maximum=MAX_SIZE)
        object.__setattr__(self, "batch_size", batch)


def check_exploration(agent: str, exploration: Any) -> None:
    """The RL agents explore by their own rule (SlateQ's ``epsilon``, REINFORCE's sampled
    policy): the lab's exploration setting must be left at ``"greedy"``."""
    name = exploration if isinstance(exploration, str) else None
    if isinstance(exploration, Mapping) and set(exploration) == {"name"}:
        name = exploration["name"]
    if name != "greedy":
        raise ValueError(
            f"{agent} explores by its own rule (see its parameters), so exploration must be "
            f"'greedy' (the default), got {exploration!r}"
        )


class TrainableModel:
    """A model of ``MODELS`` and an optimiser over all of its parameters, grown together.

    Args:
        name: model name (``mf``, ``two_tower``, ``sasrec``).
        params: the model's parameters.
        sizes: the task's sizes (``driftrec.agents.task_sizes``).
        generator: draws the initial parameters (a CPU generator).
        device: where the model lives.
        config: optimiser and learning rate.
    """

    def __init__(
        self,
        name: str,
        params: Mapping[str, Any],
        sizes: Any,
        generator: torch.Generator,
        device: torch.device,
        config: RLConfig,
    ) -> None:
        self.model: Recommender = make_model(name, sizes, generator, device, **dict(params))
        self.config = config
        self.sparse = sparse_tables(self.model)
        self.optimiser = self._new_optimiser()
        self.tables = list(id_tables_of(self.model).values())

    def _new_optimiser(self) -> SplitOptimiser:
        named = list(self.model.named_parameters())
        return SplitOptimiser(named, self.sparse, self.config.optimiser, self.config.lr)

    def __call__(self, users: UserBatch, items: ItemBatch) -> Tensor:
        """(n, m) scores of the model."""
        return self.model(users, items)

    def ensure_rows(self, users: int, items: int, followers: tuple[Recommender, ...] = ()) -> None:
        """Grow the id tables to hold ``users`` user rows and ``items`` item rows, the
        optimiser's per-row state with them, and the tables of ``followers`` (frozen copies,
        e.g. a target network) to the model's rows."""
        if grow_tables(self.tables, users, items):
            self.optimiser.grow()
            for follower in followers:
                match_rows(follower, self.model)

    def step(self, loss: Tensor) -> int:
        """One gradient step on ``loss``; the scalar parameters it wrote."""
        self.optimiser.zero_grad()
        loss.backward()
        return self.optimiser.step()

    def state_dict(self) -> dict[str, Any]:
        """Parameters and optimiser state (tensors and plain containers; references)."""
        return {"model": self.model.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        resize_to_state(self.model, state["model"])  # a fresh model's tables are still small
        self.model.load_state_dict(state["model"])
        self.optimiser = self._new_optimiser()
        self.optimiser.load_state_dict(state["optimiser"])


class RLAgentBase(AgentBase):
    """What the RL agents (:mod:`driftrec.agents.slateq`, :mod:`driftrec.agents.reinforce`)
    share: their common arguments, stored under their own names; trainable models and a random
    stream seeded from ``seed`` (:meth:`_seeded`); the learning counters reported by
    :meth:`cost`; and the common part of their state.

    A subclass names itself (``agent_name``) and provides its settings for the state's
    signature (:meth:`_settings`), the examples it holds (:meth:`_stored_examples`), and the
    rest of its state (:meth:`_own_state`, :meth:`_load_own_state`).

    Args:
        sizes: the task's sizes.
        model: name of the model family (``driftrec.agents.MODELS``).
        model_params: the models' parameters.
        config: learning rate, optimiser and batch size (None: the class's ``default_config``).
        seed: seeds the models' initial values and the agent's random stream.
        device: ``"cpu"`` or ``"cuda"``.
    """

    learns: ClassVar[bool] = True
    agent_name: ClassVar[str]
    """The agent's name in ``AGENTS`` (a saved state belongs to it)."""
    default_config: ClassVar[RLConfig]
    """The learning settings of an agent built without ``config``; ``make_agent`` takes the
    fields it is not given from here too."""
    rng: np.random.Generator
    """The agent's own random stream (from :meth:`_seeded`)."""

    def __init__(
        self,
        sizes: TaskSizes,
        *,
        model: str,
        model_params: Mapping[str, Any] | None,
        config: RLConfig | None,
        seed: int,
        device: str | torch.device,
    ) -> None:
        if not isinstance(sizes, TaskSizes):
            raise TypeError(
                f"sizes must be TaskSizes (driftrec.agents.task_sizes(env)), got {sizes!r}"
            )
        self.sizes = sizes
        self.model_name = model
        self.model_params = dict(model_params or {})
        self.config = self.default_config if config is None else config
        self.seed = check_integer("seed", seed, minimum=0)
        self.device = check_device(device)
        self.gradient_steps = self.examples_trained = self.parameters_updated = 0

    def _seeded(self, models: int) -> tuple[list[TrainableModel], np.random.Generator]:
        """``models`` trainable models of the agent's family and a random stream, each from its
        own child of ``SeedSequence(seed)`` in that order (the stream from the last)."""
        *model_seqs, stream_seq = np.random.SeedSequence(self.seed).spawn(models + 1)
        trained = [
            TrainableModel(
                self.model_name,
                self.model_params,
                self.sizes,
                torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0])),
                self.device,
                self.config,
            )
            for seq in model_seqs
        ]
        return trained, np.random.default_rng(stream_seq)

    def _settings(self) -> tuple[Any, ...]:  # pragma: no cover - overridden
        """The agent's own settings (its arguments beyond the common ones)."""
        raise NotImplementedError

    def _stored_examples(self) -> int:  # pragma: no cover - overridden
        """Examples held for a later gradient step."""
        raise NotImplementedError

    def _own_state(self) -> dict[str, Any]:  # pragma: no cover - overridden
        """The agent's models and buffers, in tensors and plain containers (references: the
        caller copies)."""
        raise NotImplementedError

    def _load_own_state(self, state: dict[str, Any]) -> None:  # pragma: no cover - overridden
        """Restore what :meth:`_own_state` saved (``state`` is the caller's copy)."""
        raise NotImplementedError

    def cost(self) -> dict[str, Any]:
        """Gradient steps (each updates the agent's models: ``optimiser_steps`` too), examples
        trained on, the scalar parameters the steps wrote (``parameters_updated``), and
        examples held for a later step."""
        return {
            "gradient_steps": self.gradient_steps,
            "examples_trained": self.examples_trained,
            "optimiser_steps": self.gradient_steps,
            "parameters_updated": self.parameters_updated,
            "stored_examples": self._stored_examples(),
        }

    def _signature(self) -> dict[str, Any]:
        return {
            "agent": self.agent_name,
            "model": self.model_name,
            "model_params": repr(sorted(self.model_params.items())),
            "config": repr(self._settings()),
            "learner": repr(self.config),
            "sizes": dataclasses.asdict(self.sizes),
        }

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything that determines future behaviour (the random stream
        included), in tensors and plain containers only (``torch.load`` reads it back with
        ``weights_only=True``)."""
        return copy.deepcopy(
            {
                "signature": self._signature(),
                **self._own_state(),
                "rng": self.rng.bit_generator.state,
                "gradient_steps": self.gradient_steps,
                "examples_trained": self.examples_trained,
                "parameters_updated": self.parameters_updated,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the agent then continues bit-identically."""
        if state["signature"] != self._signature():
            raise ValueError(
                f"this state belongs to {state['signature']}, not to {self._signature()}: "
                "build the agent with the same parameters, model and environment sizes"
            )
        state = copy.deepcopy(state)
        self._load_own_state(state)
        self.rng.bit_generator.state = state["rng"]
        self.gradient_steps = int(state["gradient_steps"])
        self.examples_trained = int(state["examples_trained"])
        self.parameters_updated = int(state.get("parameters_updated", 0))  # saved before it

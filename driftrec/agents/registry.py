"""Build agents from plain configuration: a name and parameters, as an experiment spec lists
them. Unknown names or parameters fail with the list of valid ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from driftrec.agents.baselines import OracleAgent, PopularityAgent, RandomAgent
from driftrec.agents.exploration import EXPLORATIONS
from driftrec.agents.learning_agent import LearningAgent
from driftrec.agents.models import MODELS, model_parameters
from driftrec.agents.protocol import Agent, task_sizes
from driftrec.agents.strategies import (
    STRATEGIES,
    LearnerConfig,
    Strategy,
    make_strategy,
    strategy_parameters,
)
from driftrec.validation import check_integer

__all__ = ["AGENTS", "BASELINES", "agent_names", "agent_parameters", "make_agent"]

BASELINES = ("random", "popularity", "oracle")
"""Non-learning agents."""

AGENTS = (*BASELINES, *STRATEGIES)
"""Every name ``make_agent`` accepts: the baselines and the strategy presets."""

LEARNER_PARAMETERS = tuple(f.name for f in dataclasses.fields(LearnerConfig))
_BASELINE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "random": (),
    "popularity": ("window",),
    "oracle": (),
}


def agent_names() -> list[str]:
    """Every agent name, baselines first."""
    return list(AGENTS)


def agent_parameters(name: str) -> list[str]:
    """The keyword parameters ``make_agent(name, ...)`` accepts besides model, exploration,
    seed and device: the preset's own parameters and the learner's (loss, optimiser, lr, l1,
    l2, micro_batch, batch_size)."""
    if name in BASELINES:
        return list(_BASELINE_PARAMETERS[name])
    if name not in STRATEGIES:
        raise ValueError(f"unknown agent {name!r}; valid agents are {list(AGENTS)}")
    return sorted(strategy_parameters(name)) + list(LEARNER_PARAMETERS)


def _named(spec: str | Mapping[str, Any], kind: str, valid: Mapping[str, Any]) -> tuple[str, dict]:
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and "name" in spec:
        params = dict(spec)
        name = params.pop("name")
    else:
        raise TypeError(
            f"{kind} must be a name or a mapping with a 'name' key (e.g. {{'name': "
            f"{next(iter(valid))!r}}}), got {spec!r}"
        )
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid {kind}s are {sorted(valid)}")
    return name, params


def _exploration(spec: str | Mapping[str, Any]) -> Any:
    name, params = _named(spec, "exploration", EXPLORATIONS)
    cls = EXPLORATIONS[name]
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for exploration {name!r}; its parameters are "
            f"{fields or 'none'}"
        )
    return cls(**params)


def make_agent(
    name: str | Strategy,
    env_or_spaces: Any,
    *,
    model: str | Mapping[str, Any] = "mf",
    exploration: str | Mapping[str, Any] = "greedy",
    seed: int = 0,
    device: str = "cpu",
    **params: Any,
) -> Agent:
    """Build an agent from configuration.

    Args:
        name: a baseline (``random``, ``popularity``, ``oracle``), a strategy preset (see
            ``STRATEGIES``) or a composed :class:`~driftrec.agents.strategies.Strategy`.
        env_or_spaces: the environment (vector or single; the oracle needs the environment
            itself) or an ``(observation_space, action_space)`` pair of one request.
        model: model name (``mf``, ``two_tower``, ``sasrec``) or ``{"name": ..., **params}``.
        exploration: ``greedy``, ``epsilon_greedy``, ``softmax``, ``thompson``, or
            ``{"name": ..., **params}``.
        seed: seeds every random stream of the agent.
        device: ``"cpu"`` or ``"cuda"`` (learning agents).
        **params: the preset's parameters and the learner's (``loss``, ``optimiser``, ``lr``,
            ``l1``, ``l2``, ``micro_batch``, ``batch_size``); see :func:`agent_parameters`.

    Example:
        >>> from driftrec.envs import RecDriftVectorEnv
        >>> env = RecDriftVectorEnv(4, num_users=200, num_items=300, num_candidates=20,
        ...                         slate_size=4)
        >>> make_agent("replay", env, model={"name": "mf", "dim": 16}, capacity=500, lr=0.02)
        LearningAgent(strategy='replay', model='mf', exploration=Greedy(), seed=0)
        >>> make_agent("onlin", env)
        Traceback (most recent call last):
        ...
        ValueError: unknown agent 'onlin'; valid agents are ['random', 'popularity', ...
    """
    if not isinstance(name, (str, Strategy)):
        raise TypeError(
            f"name must be an agent name (one of {list(AGENTS)}) or a Strategy, got {name!r}"
        )
    if isinstance(name, str) and name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents are {list(AGENTS)}")
    seed = check_integer("seed", seed, minimum=0)
    if name in BASELINES:
        unknown = sorted(set(params) - set(_BASELINE_PARAMETERS[name]))
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown} for agent {name!r}; its parameters are "
                f"{list(_BASELINE_PARAMETERS[name]) or 'none'}"
            )
        if name == "oracle":
            if isinstance(env_or_spaces, tuple):
                raise TypeError(
                    "the oracle reads ground truth through env.oracle_action(): pass the "
                    "environment, not its spaces"
                )
            return OracleAgent(env_or_spaces)
        sizes = task_sizes(env_or_spaces)
        if name == "random":
            return RandomAgent(sizes, seed=seed)
        return PopularityAgent(sizes, seed=seed, **params)

    sizes = task_sizes(env_or_spaces)
    learner_params = {k: v for k, v in params.items() if k in LEARNER_PARAMETERS}
    strategy_params = {k: v for k, v in params.items() if k not in LEARNER_PARAMETERS}
    if isinstance(name, Strategy):
        if strategy_params:
            raise TypeError(
                f"unknown parameter(s) {sorted(strategy_params)} for a composed strategy; "
                f"valid ones are the learner's {list(LEARNER_PARAMETERS)}"
            )
        strategy = name
    else:
        valid = strategy_parameters(name)
        unknown = sorted(set(strategy_params) - set(valid))
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown} for agent {name!r}; its parameters are "
                f"{sorted(valid)} and the learner's {list(LEARNER_PARAMETERS)}"
            )
        strategy = make_strategy(name, **strategy_params)
    model_name, model_params = _named(model, "model", MODELS)
    unknown = sorted(set(model_params) - set(model_parameters(model_name)))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for model {model_name!r}; its parameters are "
            f"{sorted(model_parameters(model_name))}"
        )
    return LearningAgent(
        sizes,
        strategy,
        model=model_name,
        model_params=model_params,
        learner=LearnerConfig(**learner_params),
        exploration=_exploration(exploration),
        seed=seed,
        device=device,
    )

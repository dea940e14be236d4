"""Build agents from plain configuration: a name and parameters, as an experiment spec lists
them. Unknown names or parameters fail with the list of valid ones.

``AGENTS`` is one :class:`~driftrec.registry.Registry` of every agent name: the baselines, then
every strategy preset of ``STRATEGIES`` as a learning agent (the presets' own parameters and the
learner's), the frozen oracle, then the RL recommenders (``slateq``, ``topk_reinforce``), which
train their own models. Models, explorations and strategies are looked up in their
own registries (``MODELS``, ``EXPLORATIONS``, ``STRATEGIES``), so one registered there is
available here by name.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftrec.agents.baselines import PopularityAgent, RandomAgent
from driftrec.agents.exploration import EXPLORATIONS
from driftrec.agents.learning_agent import LearningAgent
from driftrec.agents.models import MODELS
from driftrec.agents.oracles import DiverseOracleAgent, FrozenOracleAgent, OracleAgent
from driftrec.agents.protocol import Agent, task_sizes
from driftrec.agents.reinforce import TopKReinforceAgent
from driftrec.agents.slateq import SlateQAgent
from driftrec.agents.strategies import STRATEGIES, LearnerConfig, Strategy
from driftrec.agents.trainable import RLAgentBase, RLConfig, check_exploration
from driftrec.registry import Registry

__all__ = [
    "AGENTS",
    "BASELINES",
    "RL_AGENTS",
    "AgentSettings",
    "agent_names",
    "agent_parameters",
    "make_agent",
    "make_agent_recording",
]

LEARNER_PARAMETERS = tuple(f.name for f in dataclasses.fields(LearnerConfig))
RL_CONFIG_PARAMETERS = tuple(f.name for f in dataclasses.fields(RLConfig))


@dataclass(frozen=True)
class AgentSettings:
    """What ``make_agent`` passes every agent builder besides its own parameters (each agent
    reads what it uses and checks it: a baseline ignores the model, the oracles the seed)."""

    model: str | Mapping[str, Any] = "mf"
    """Model name or ``{"name": ..., **params}`` (learning agents)."""
    exploration: str | Mapping[str, Any] = "greedy"
    """Exploration name or ``{"name": ..., **params}`` (learning agents)."""
    seed: int = 0
    """Seeds every random stream of the agent (checked by the agent)."""
    device: str = "cpu"
    """``"cpu"`` or ``"cuda"`` (learning agents)."""


SETTINGS = tuple(f.name for f in dataclasses.fields(AgentSettings))


@dataclass(frozen=True)
class RecordingSettings(AgentSettings):
    """:class:`AgentSettings` that record which of their fields are read (:attr:`read`): how
    an experiment spec's check tells whether a user's builder uses the ``model`` or the
    ``exploration`` it is given."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_read", set())

    def __getattribute__(self, name: str) -> Any:
        if name in SETTINGS:
            object.__getattribute__(self, "_read").add(name)
        return object.__getattribute__(self, name)

    @property
    def read(self) -> frozenset[str]:
        """The fields read so far."""
        return frozenset(object.__getattribute__(self, "_read"))


AGENTS: Registry[Agent] = Registry("agent", skip=2, sort_names=False)
"""Every name ``make_agent`` accepts, in this order: the baselines ``random``, ``popularity``,
``oracle``, the strategy presets, ``frozen_oracle``, ``diverse_oracle``, then the RL agents
``slateq`` and ``topk_reinforce``."""


@AGENTS.register("random")
def _random(env_or_spaces: Any, settings: AgentSettings, /) -> RandomAgent:
    """Uniformly random slates of distinct candidates: the floor every learner must beat."""
    return RandomAgent(task_sizes(env_or_spaces), seed=settings.seed)


@AGENTS.register("popularity")
def _popularity(
    env_or_spaces: Any, settings: AgentSettings, /, window: int = 10_000
) -> PopularityAgent:
    """The most clicked candidates over the last ``window`` requests (Ji et al. 2020)."""
    return PopularityAgent(task_sizes(env_or_spaces), window=window, seed=settings.seed)


@AGENTS.register("oracle")
def _oracle(env_or_spaces: Any, settings: AgentSettings, /) -> OracleAgent:
    """The exact best slates, read from the environment's ground truth (needs the env)."""
    return OracleAgent(env_or_spaces)


def _named(spec: str | Mapping[str, Any], kind: str, valid: Registry[Any]) -> tuple[str, dict]:
    """``(name, params)`` from a name or ``{"name": ..., **params}``."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping) and "name" in spec:
        params = dict(spec)
        return params.pop("name"), params
    raise TypeError(
        f"{kind} must be a name or a mapping with a 'name' key (e.g. {{'name': "
        f"{valid.names()[0]!r}}}), got {spec!r}"
    )


def _learning_agent(
    strategy: Strategy, env_or_spaces: Any, settings: AgentSettings, learner: dict[str, Any]
) -> LearningAgent:
    model, model_params = _named(settings.model, "model", MODELS)
    exploration, exploration_params = _named(settings.exploration, "exploration", EXPLORATIONS)
    return LearningAgent(
        task_sizes(env_or_spaces),
        strategy,
        model=model,
        model_params=model_params,
        learner=LearnerConfig(**learner),
        exploration=EXPLORATIONS.build(exploration, **exploration_params),
        seed=settings.seed,
        device=settings.device,
    )


def _builder_signature(parameters: Iterable[tuple[str, Any]]) -> inspect.Signature:
    """``(env_or_spaces, settings, /, *, name=default, ...)``: the signature of a builder whose
    parameters are made at run time, from which the registry reads them."""
    positional = inspect.Parameter.POSITIONAL_ONLY
    keyword = inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(
        [
            inspect.Parameter("env_or_spaces", positional),
            inspect.Parameter("settings", positional),
            *(inspect.Parameter(name, keyword, default=default) for name, default in parameters),
        ]
    )


class _PresetAgent:
    """The builder of a learning agent with strategy preset ``preset``: its parameters (read
    by the registry from ``__signature__``) are the preset's and the learner's."""

    def __init__(self, preset: str) -> None:
        self.preset = preset
        self.own = STRATEGIES.parameters(preset)
        self.__doc__ = STRATEGIES[preset].__doc__
        learner = {f.name: f.default for f in dataclasses.fields(LearnerConfig)}
        self.__signature__ = _builder_signature(
            [
                *((n, self.own[n]) for n in sorted(self.own)),
                *((n, learner[n]) for n in LEARNER_PARAMETERS),
            ]
        )

    def __call__(self, env_or_spaces: Any, settings: AgentSettings, /, **params: Any) -> Agent:
        learner = {k: v for k, v in params.items() if k in LEARNER_PARAMETERS}
        strategy_params = {k: v for k, v in params.items() if k not in LEARNER_PARAMETERS}
        unknown = sorted(set(strategy_params) - set(self.own))
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown} for agent {self.preset!r}; its parameters are "
                f"{sorted(self.own)} and the learner's {list(LEARNER_PARAMETERS)}"
            )
        strategy = STRATEGIES[self.preset](**strategy_params)
        return _learning_agent(strategy, env_or_spaces, settings, learner)


def _mirror_strategies() -> None:
    """Keep ``AGENTS`` holding the strategy presets as they are: one registered with
    ``@STRATEGIES.register()`` after this module was imported (a user's) joins it, one
    unregistered leaves it, one replaced is rebuilt with its new parameters (run on every
    change of ``STRATEGIES``; a preset named like another agent does not replace it)."""
    for preset in STRATEGIES:
        if preset not in AGENTS or isinstance(AGENTS[preset], _PresetAgent):
            AGENTS.register(preset, replace=True)(_PresetAgent(preset))
    for name in AGENTS.names():
        if isinstance(AGENTS[name], _PresetAgent) and name not in STRATEGIES:
            AGENTS.unregister(name)


_mirror_strategies()
STRATEGIES.on_change(_mirror_strategies)


@AGENTS.register("frozen_oracle")
def _frozen_oracle(env_or_spaces: Any, settings: AgentSettings, /) -> FrozenOracleAgent:
    """The best slates under the world as it was when the agent was built: what drift costs a
    model that stops learning (needs the env, reset)."""
    return FrozenOracleAgent(env_or_spaces)


@AGENTS.register("diverse_oracle")
def _diverse_oracle(env_or_spaces: Any, settings: AgentSettings, /) -> DiverseOracleAgent:
    """The true utilities served as topic-diverse slates (best of each topic first): the simple
    diversity-aware reference of the long-term setting (``monotony`` scenario; needs the env)."""
    return DiverseOracleAgent(env_or_spaces)


class _RLAgentBuilder:
    """The builder of the RL agent ``agent``: its parameters (read by the registry from
    ``__signature__``) are the agent's own keyword arguments and the fields of
    :class:`RLConfig`, with the agent's defaults (its constructor's and its
    ``default_config``'s), so that each default is written once, in the agent."""

    def __init__(self, agent: type[RLAgentBase], summary: str) -> None:
        self.agent = agent
        self.__doc__ = summary
        # The arguments every RL agent takes (model, config, seed, ...) come from the settings.
        common = inspect.signature(RLAgentBase).parameters
        own = [
            (p.name, p.default)
            for p in inspect.signature(agent).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in common
        ]
        learning = [(name, getattr(agent.default_config, name)) for name in RL_CONFIG_PARAMETERS]
        self.__signature__ = _builder_signature([*own, *learning])

    def __call__(self, env_or_spaces: Any, settings: AgentSettings, /, **params: Any) -> Agent:
        self.__signature__.bind(env_or_spaces, settings, **params)  # no unknown parameter
        check_exploration(self.agent.agent_name, settings.exploration)
        model, model_params = _named(settings.model, "model", MODELS)
        sizes = task_sizes(env_or_spaces)
        learning = {k: params.pop(k) for k in RL_CONFIG_PARAMETERS if k in params}
        return self.agent(
            sizes,
            model=model,
            model_params=model_params,
            config=dataclasses.replace(self.agent.default_config, **learning),
            seed=settings.seed,
            device=settings.device,
            **params,
        )


AGENTS.register(SlateQAgent.agent_name)(
    _RLAgentBuilder(
        SlateQAgent,
        """SlateQ (Ie et al. 2019, IJCAI): item-wise long-term values learned by TD, combined
        with a learned MNL choice model; slates by the paper's greedy or top-k optimisation.""",
    )
)
AGENTS.register(TopKReinforceAgent.agent_name)(
    _RLAgentBuilder(
        TopKReinforceAgent,
        """Top-K off-policy-corrected REINFORCE (Chen et al. 2019, WSDM): a softmax policy over
        the candidates trained on session returns, with capped importance weights and the
        top-K multiplier.""",
    )
)


BASELINES = ("random", "popularity", "oracle", "frozen_oracle", "diverse_oracle")
"""Agents that learn no model."""

RL_AGENTS = ("slateq", "topk_reinforce")
"""The RL recommenders: they train their own models (no continual-learning strategy)."""


def agent_names() -> list[str]:
    """Every agent name: ``random``, ``popularity``, ``oracle``, the strategy presets,
    ``frozen_oracle``, ``diverse_oracle``, ``slateq``, ``topk_reinforce``."""
    return AGENTS.names()


def agent_parameters(name: str) -> list[str]:
    """The keyword parameters ``make_agent(name, ...)`` accepts besides model, exploration,
    seed and device: a baseline's or an RL agent's own, or a preset's own (sorted) and the
    learner's (loss, optimiser, lr, l1, l2, micro_batch, batch_size)."""
    return list(AGENTS.parameters(name))


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
        name: an agent of ``AGENTS``: a baseline (``random``, ``popularity``, ``oracle``,
            ``frozen_oracle``, ``diverse_oracle``), a strategy preset (see ``STRATEGIES``), an
            RL agent (``slateq``, ``topk_reinforce``: see :data:`RL_AGENTS`); or a composed
            :class:`~driftrec.agents.strategies.Strategy`.
        env_or_spaces: the environment (vector or single; the oracles need the environment
            itself, and the frozen oracle one that was reset) or an ``(observation_space,
            action_space)`` pair of one request.
        model: a name of ``MODELS`` (``mf``, ``two_tower``, ``sasrec``) or ``{"name": ...,
            **params}``.
        exploration: a name of ``EXPLORATIONS`` (``greedy``, ``epsilon_greedy``, ``softmax``,
            ``thompson``) or ``{"name": ..., **params}``.
        seed: seeds every random stream of the agent.
        device: ``"cpu"`` or ``"cuda"`` (learning agents).
        **params: the agent's parameters (a preset's and the learner's: ``loss``,
            ``optimiser``, ``lr``, ``l1``, ``l2``, ``micro_batch``, ``batch_size``); see
            :func:`agent_parameters`.

    A learning agent that pretrains asks for logged data through ``agent.pretrain_requests``:
    ``agent.pretrain(env.log_interactions(agent.pretrain_requests))`` after ``env.reset``.

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
    settings = AgentSettings(model=model, exploration=exploration, seed=seed, device=device)
    return _make(name, env_or_spaces, settings, params)


def make_agent_recording(
    name: str,
    env_or_spaces: Any,
    *,
    model: str | Mapping[str, Any] = "mf",
    exploration: str | Mapping[str, Any] = "greedy",
    seed: int = 0,
    device: str = "cpu",
    **params: Any,
) -> tuple[Agent, RecordingSettings]:
    """:func:`make_agent`, also returning the settings its builder was given, which record
    the fields read (by the builder, and by the agent if it kept them)."""
    settings = RecordingSettings(model=model, exploration=exploration, seed=seed, device=device)
    return _make(name, env_or_spaces, settings, params), settings


def _make(
    name: str | Strategy, env_or_spaces: Any, settings: AgentSettings, params: dict[str, Any]
) -> Agent:
    if isinstance(name, Strategy):
        unknown = sorted(set(params) - set(LEARNER_PARAMETERS))
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown} for a composed strategy; valid ones are the "
                f"learner's {list(LEARNER_PARAMETERS)}"
            )
        return _learning_agent(name, env_or_spaces, settings, params)
    if not isinstance(name, str):
        raise TypeError(
            f"name must be an agent name (one of {AGENTS.names()}) or a Strategy, got {name!r}"
        )
    builder = AGENTS[name]
    if name not in STRATEGIES:  # a preset's builder checks its own and the learner's
        AGENTS.check_parameters(name, params)
    return builder(env_or_spaces, settings, **params)

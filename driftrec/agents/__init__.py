"""Agents: PyTorch recommenders, the continual-learning strategies that decide when and how they
learn, exploration policies, baselines (random, popularity, oracle, frozen oracle), and the RL
recommenders SlateQ and top-K off-policy-corrected REINFORCE.

Quick start::

    from driftrec.envs import RecDriftVectorEnv
    from driftrec.agents import make_agent, Transition

    env = RecDriftVectorEnv(256, scenario="sudden", at=50_000)
    agent = make_agent("online", env, model="mf", seed=0)
    obs, _ = env.reset(seed=0)
    if agent.pretrain_requests:  # logged data, through the environment's documented channel
        agent.pretrain(env.log_interactions(agent.pretrain_requests))
    for _ in range(400):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
        obs = next_obs
"""

from driftrec.agents.baselines import PopularityAgent, RandomAgent
from driftrec.agents.buffers import CumulativeStore, RecentWindow, ReplayBuffer
from driftrec.agents.data import Cumulative, FreshData, Replay, Window
from driftrec.agents.distillation import Distillation
from driftrec.agents.ewc import EWC
from driftrec.agents.examples import SlateExamples
from driftrec.agents.exploration import (
    EXPLORATIONS,
    EpsilonGreedy,
    Greedy,
    Softmax,
    Thompson,
)
from driftrec.agents.learning_agent import LearningAgent
from driftrec.agents.losses import CLICK_LOSSES
from driftrec.agents.merging import Ensemble, MovingAverage, Replace
from driftrec.agents.models import MODELS, make_model, model_parameters
from driftrec.agents.oracles import FrozenOracleAgent, OracleAgent
from driftrec.agents.protocol import (
    PRIVILEGED_INFO_KEYS,
    Agent,
    AgentBase,
    TaskSizes,
    Transition,
    task_sizes,
)
from driftrec.agents.registry import (
    AGENTS,
    BASELINES,
    RL_AGENTS,
    agent_names,
    agent_parameters,
    make_agent,
)
from driftrec.agents.reinforce import TopKReinforceAgent
from driftrec.agents.scopes import SCOPES
from driftrec.agents.slateq import SlateQAgent
from driftrec.agents.strategies import (
    STRATEGIES,
    LearnerConfig,
    Strategy,
    UpdateRule,
    make_strategy,
    strategy_parameters,
)
from driftrec.agents.terms import Memoryless, WeightPenalty
from driftrec.agents.trainer import Trainer
from driftrec.agents.triggers import DriftAlarm, EveryN, EveryStep, Never, Schedule

__all__ = [
    "AGENTS",
    "BASELINES",
    "CLICK_LOSSES",
    "EWC",
    "EXPLORATIONS",
    "MODELS",
    "PRIVILEGED_INFO_KEYS",
    "RL_AGENTS",
    "SCOPES",
    "STRATEGIES",
    "Agent",
    "AgentBase",
    "Cumulative",
    "CumulativeStore",
    "Distillation",
    "DriftAlarm",
    "Ensemble",
    "EpsilonGreedy",
    "EveryN",
    "EveryStep",
    "FreshData",
    "FrozenOracleAgent",
    "Greedy",
    "LearnerConfig",
    "LearningAgent",
    "Memoryless",
    "MovingAverage",
    "Never",
    "OracleAgent",
    "PopularityAgent",
    "RandomAgent",
    "RecentWindow",
    "Replace",
    "Replay",
    "ReplayBuffer",
    "Schedule",
    "SlateExamples",
    "SlateQAgent",
    "Softmax",
    "Strategy",
    "TaskSizes",
    "Thompson",
    "TopKReinforceAgent",
    "Trainer",
    "Transition",
    "UpdateRule",
    "WeightPenalty",
    "Window",
    "agent_names",
    "agent_parameters",
    "make_agent",
    "make_model",
    "make_strategy",
    "model_parameters",
    "strategy_parameters",
    "task_sizes",
]

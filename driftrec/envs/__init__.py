"""Gymnasium environments over a drifting world; importing this registers the ``driftrec/`` ids,
and a scenario preset registered later (``@SCENARIOS.register()``) gets its id at once."""

from driftrec.envs.registration import env_id, register_envs, registered_ids
from driftrec.envs.single import RecDriftEnv
from driftrec.envs.spaces import observation_space
from driftrec.envs.vector import RecDriftVectorEnv
from driftrec.simulators.scenarios import SCENARIOS

register_envs()
SCENARIOS.on_change(register_envs)

__all__ = [
    "RecDriftEnv",
    "RecDriftVectorEnv",
    "env_id",
    "observation_space",
    "register_envs",
    "registered_ids",
]

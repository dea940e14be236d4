"""Gymnasium environments over a drifting world; importing this registers the ``driftrec/`` ids."""

from driftrec.envs.registration import env_id, register_envs, registered_ids
from driftrec.envs.single import RecDriftEnv
from driftrec.envs.spaces import observation_space
from driftrec.envs.vector import RecDriftVectorEnv

register_envs()

__all__ = [
    "RecDriftEnv",
    "RecDriftVectorEnv",
    "env_id",
    "observation_space",
    "register_envs",
    "registered_ids",
]

"""Gymnasium environments over a drifting world; importing this registers the ``driftrec/`` ids."""

from driftrec.envs.rec_drift import RecDriftEnv, RecDriftVectorEnv, observation_space
from driftrec.envs.registration import env_id, register_envs, registered_ids

register_envs()

__all__ = [
    "RecDriftEnv",
    "RecDriftVectorEnv",
    "env_id",
    "observation_space",
    "register_envs",
    "registered_ids",
]

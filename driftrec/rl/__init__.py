"""The RL ecosystem around the environments: adapters for the libraries RL researchers use.

- :mod:`driftrec.rl.adapters`: a score action (top-k of a score per candidate) and a
  per-candidate observation layout, as functions and Gymnasium wrappers (single and vector),
  so that one scoring network can be shared over the candidates (no optional dependency).
- :mod:`driftrec.rl.sb3`: ``SB3VecEnv``, a Stable-Baselines3 ``VecEnv`` whose sessions share
  one world (``stable-baselines3`` is an optional dependency, imported by that module only).

This package sits beside ``driftrec.agents`` (it may use environments and agents, never the
experiments runner), so that optional RL libraries never load with the core.
"""

from driftrec.rl.adapters import (
    CandidateObservation,
    ScoreAction,
    VectorCandidateObservation,
    VectorScoreAction,
    candidate_layout_dims,
    candidate_observation_space,
    score_action_space,
    scores_to_slates,
    to_candidate_layout,
)

__all__ = [
    "CandidateObservation",
    "ScoreAction",
    "VectorCandidateObservation",
    "VectorScoreAction",
    "candidate_layout_dims",
    "candidate_observation_space",
    "score_action_space",
    "scores_to_slates",
    "to_candidate_layout",
]

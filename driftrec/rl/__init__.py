"""The RL ecosystem around the environments: adapters for the libraries RL researchers use.

- :mod:`driftrec.rl.sb3`: ``SB3VecEnv``, a Stable-Baselines3 ``VecEnv`` whose sessions share
  one world (``stable-baselines3`` is an optional dependency, imported by that module only).

This package sits beside ``driftrec.agents`` (it may use environments and agents, never the
experiments runner), so that optional RL libraries never load with the core.
"""

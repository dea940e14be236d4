"""Gymnasium ids under the ``driftrec/`` namespace: one per scenario preset, plus a configurable
``driftrec/RecDrift-v0`` (pass ``scenario=`` and any parameter to ``gymnasium.make``).

Registration happens when ``driftrec`` is imported. In a process that has not imported it (a
Ray / RLlib worker, a subprocess), prefix the id with the module, as gymnasium allows:
``gymnasium.make("driftrec:driftrec/Sudden-v0")`` imports ``driftrec`` first.
"""

from __future__ import annotations

import gymnasium as gym

from driftrec.simulators.scenarios import SCENARIOS

ENTRY_POINT = "driftrec.envs.single:RecDriftEnv"
VECTOR_ENTRY_POINT = "driftrec.envs.vector:RecDriftVectorEnv"


def env_id(scenario: str) -> str:
    """The id of a scenario preset: ``cohort_shift`` -> ``driftrec/CohortShift-v0``."""
    return "driftrec/" + "".join(part.capitalize() for part in scenario.split("_")) + "-v0"


def registered_ids() -> list[str]:
    """Every id this package registers."""
    return ["driftrec/RecDrift-v0"] + [env_id(name) for name in SCENARIOS]


_REGISTERED: set[str] = set()
"""The ids :func:`register_envs` registered (a user's own ids over our entry point are not)."""


def register_envs() -> None:
    """Register all ids (idempotent), and drop the ids it registered for presets no longer
    registered. Importing ``driftrec`` calls it, and again whenever ``SCENARIOS`` changes."""
    specs: dict[str, dict[str, str]] = {"driftrec/RecDrift-v0": {}}
    specs |= {env_id(n): {"preset": n} for n in SCENARIOS}
    for id_ in _REGISTERED - set(specs):
        gym.registry.pop(id_, None)
        _REGISTERED.discard(id_)
    for id_, kwargs in specs.items():
        if id_ in gym.registry:
            continue
        gym.register(
            id=id_,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=kwargs,
            disable_env_checker=False,
        )
        _REGISTERED.add(id_)

"""A user's own module of registrations, written for the tests of a spec's ``imports``."""

from __future__ import annotations

USER_MODULE = '''"""A user's own scenario and agent, registered when the module is imported."""
from driftrec.agents import AGENTS
from driftrec.agents.baselines import RandomAgent
from driftrec.agents.protocol import task_sizes
from driftrec.simulators import SCENARIOS, SuddenShift
from driftrec.simulators.scenarios import Scenario


@SCENARIOS.register()
def {prefix}_shift(at: int = 1_000) -> Scenario:
    """A sudden shift under another name."""
    return Scenario("{prefix}_shift", (SuddenShift(at),))


@AGENTS.register("{prefix}_random")
def {prefix}_random(env_or_spaces, settings, /):
    """Random slates under another name."""
    return RandomAgent(task_sizes(env_or_spaces), seed=settings.seed)
'''


def write_user_module(directory, prefix: str) -> str:
    """Write a module registering ``<prefix>_shift`` and ``<prefix>_random`` into
    ``directory``; return its name."""
    name = f"{prefix}_plugins"
    (directory / f"{name}.py").write_text(USER_MODULE.format(prefix=prefix))
    return name


def user_spec(tiny: dict, module: str, prefix: str) -> dict:
    """The tiny spec with the user's scenario and agent, imported through ``imports``."""
    return {
        **tiny,
        "imports": [module],
        "seeds": [0],
        "scenarios": [{"name": f"{prefix}_shift", "params": {"at": 2_000}}],
        "agents": [{"name": f"{prefix}_random"}, {"name": "online"}],
        "warm_start": None,
    }

"""A user's own module of registrations, written for the tests of a spec's ``imports``."""

from __future__ import annotations

USER_MODULE = '''"""A user's own scenario, choice model, retriever and agent, registered when the
module is imported."""
import numpy as np

from driftrec.agents import AGENTS
from driftrec.agents.baselines import RandomAgent
from driftrec.agents.protocol import task_sizes
from driftrec.simulators import CHOICE_MODELS, SCENARIOS, MultinomialLogitChoice, SuddenShift
from driftrec.simulators.retrieval import RETRIEVERS
from driftrec.simulators.scenarios import Scenario


@RETRIEVERS.register("{prefix}_uniform")
class Uniform:
    """Candidates uniformly at random among the live items."""

    def __init__(self, config, items):
        self.items, self.count = items, config.num_candidates

    def retrieve(self, n, clock, rng):
        live = np.flatnonzero(self.items.available(clock))
        return np.stack([rng.choice(live, self.count, replace=False) for _ in range(n)])

    def record_clicks(self, items, clock):
        pass

    def catalogue_changed(self):
        pass


@CHOICE_MODELS.register()
def {prefix}_steep(config):
    """A logit whose position bias halves each next slot's weight."""
    bias = -np.log(2.0) * np.arange(config.slate_size)
    return MultinomialLogitChoice(config.slate_size, config.no_click_utility, bias)


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
    """Write a module registering ``<prefix>_shift``, ``<prefix>_steep`` (a choice model),
    ``<prefix>_uniform`` (a retriever) and ``<prefix>_random`` into ``directory``; return its
    name."""
    name = f"{prefix}_plugins"
    (directory / f"{name}.py").write_text(USER_MODULE.format(prefix=prefix))
    return name


def user_spec(tiny: dict, module: str, prefix: str) -> dict:
    """The tiny spec with the user's scenario, choice model, retriever and agent, imported
    through ``imports``."""
    world = {"choice_model": f"{prefix}_steep", "retrieval": f"{prefix}_uniform"}
    return {
        **tiny,
        "world": {**tiny["world"], **world},
        "imports": [module],
        "seeds": [0],
        "scenarios": [{"name": f"{prefix}_shift", "params": {"at": 2_000}}],
        "agents": [{"name": f"{prefix}_random"}, {"name": "online"}],
        "warm_start": None,
    }


def unregister_user_module(module: str, prefix: str) -> None:
    """Undo :func:`write_user_module`'s registrations and forget the module."""
    import sys

    from driftrec.agents import AGENTS
    from driftrec.simulators import CHOICE_MODELS, SCENARIOS
    from driftrec.simulators.retrieval import RETRIEVERS

    SCENARIOS.unregister(f"{prefix}_shift")
    CHOICE_MODELS.unregister(f"{prefix}_steep")
    RETRIEVERS.unregister(f"{prefix}_uniform")
    AGENTS.unregister(f"{prefix}_random")
    sys.modules.pop(module, None)

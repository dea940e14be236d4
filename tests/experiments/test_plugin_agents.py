"""A user's agents, as the spec check and the cells treat them: a broken agent is refused
when the spec is checked (one line naming it and the method), not in the middle of a cell;
settings an agent ignores are refused; a custom builder gets the cell's device; an agent whose
scores are never finite is not told to lower a learning rate; ``driftrec list --imports``
lists a user's registrations."""

from __future__ import annotations

import random
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from driftrec.agents import AGENTS, AgentBase, task_sizes
from driftrec.agents.baselines import RandomAgent
from driftrec.experiments import cell as cell_module
from driftrec.experiments.cli import main
from driftrec.experiments.experiment import run_experiment
from driftrec.experiments.report import write_report
from driftrec.experiments.results import ResultsDir
from driftrec.experiments.spec import ExperimentSpec, SpecError, load_spec

PROTOCOL = "driftrec.agents.protocol.Agent"


class FeatureMean(AgentBase):
    """Scores candidates by their features' dot product with the mean clicked item's; ``mode``
    breaks one thing on purpose."""

    learns = True

    def __init__(self, sizes, seed: int = 0, mode: str = "ok") -> None:
        self.sizes, self.mode = sizes, mode
        self.w = np.full(sizes.item_feature_dim, 0.1)
        self.observed = 0

    def _scores(self, obs):
        s = np.asarray(obs["candidate_features"], dtype=np.float64) @ self.w
        return s + np.arange(s.shape[1]) * 1e-3  # no ties

    def _slates(self, obs):
        order = np.argsort(-self._scores(obs), axis=1, kind="stable")
        return order[:, : self.sizes.slate_size].astype(np.int64)

    def scores(self, obs):
        s = self._scores(obs)
        if self.mode == "nan_scores" or (self.mode == "nan_after" and self.observed):
            return s * np.nan
        if self.mode == "scores_short":
            return s[:, :-1]
        if self.mode == "scores_text":
            return s.astype(str)
        return s

    def greedy(self, obs):
        slates = self._slates(obs)
        return slates[:, :-1] if self.mode == "greedy_short" else slates

    def act(self, obs):
        a = self._slates(obs)
        if self.mode == "wrong_shape":
            return a[:, :-1]
        if self.mode == "transposed":
            return a.T
        if self.mode == "float":
            return a.astype(np.float64) + 0.5
        if self.mode == "out_of_range":
            return a + self.sizes.num_candidates
        if self.mode == "raises":
            raise KeyError("user_embedding")
        if self.mode == "global_rng":  # draws from every legacy global stream
            random.random(), np.random.random(), torch.rand(1)  # noqa: NPY002
        return a

    def observe(self, transition) -> None:
        self.observed += 1


class NoObserve:
    """Acts, but cannot learn what happened."""

    def __init__(self, sizes) -> None:
        self.k = sizes.slate_size

    def act(self, obs):
        return np.tile(np.arange(self.k), (len(obs["candidate_ids"]), 1))


class KeepsSettings(RandomAgent):
    """Keeps the settings it was built with (it may read them later)."""

    def __init__(self, sizes, settings) -> None:
        super().__init__(sizes, seed=settings.seed)
        self.settings = settings


DEVICES: list[str] = []
"""The devices the ``p_device`` builder was given."""


def _feature_mean(env_or_spaces, settings, /, mode: str = "ok"):
    """A feature-mean recommender."""
    if mode == "global_rng":
        random.random(), np.random.random(), torch.rand(1)  # noqa: NPY002
    return FeatureMean(task_sizes(env_or_spaces), seed=settings.seed, mode=mode)


def _no_observe(env_or_spaces, settings, /):
    """Lacks observe."""
    return NoObserve(task_sizes(env_or_spaces))


def _broken(env_or_spaces, settings, /):
    """Its builder raises a KeyError."""
    return {}["x"]


def _reads_model(env_or_spaces, settings, /):
    """Reads its model setting (and would build it)."""
    assert settings.model is not None
    return RandomAgent(task_sizes(env_or_spaces), seed=settings.seed)


def _keeps_settings(env_or_spaces, settings, /):
    """Keeps its settings."""
    return KeepsSettings(task_sizes(env_or_spaces), settings)


def _device(env_or_spaces, settings, /):
    """Records its device."""
    DEVICES.append(settings.device)
    return RandomAgent(task_sizes(env_or_spaces), seed=settings.seed)


BUILDERS = {
    "p_feature": _feature_mean,
    "p_no_observe": _no_observe,
    "p_broken": _broken,
    "p_reads_model": _reads_model,
    "p_keeps_settings": _keeps_settings,
    "p_device": _device,
}


@pytest.fixture(autouse=True)
def plugins():
    """The agents above, registered for the test only."""
    for name, builder in BUILDERS.items():
        AGENTS.register(name)(builder)
    try:
        yield
    finally:
        for name in BUILDERS:
            AGENTS.unregister(name)


def _spec(tiny: dict, *agents: dict, **fields) -> dict:
    return {**tiny, "seeds": [0], "agents": list(agents), "warm_start": None, **fields}


def _refusal(spec: dict) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return str(caught.value)


def test_an_agent_without_observe_is_refused_naming_it_and_the_protocol(tiny):
    message = _refusal(_spec(tiny, {"name": "p_no_observe"}))
    assert "agents.0 (p_no_observe): a NoObserve has no callable observe" in message
    assert PROTOCOL in message


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("wrong_shape", "act(obs) on a reset observation batch returned shape (8, 3), expected "
         "(B, k) = (8, 4) integer positions"),
        ("transposed", "act(obs) on a reset observation batch returned shape (4, 8)"),
        ("float", "act(obs) on a reset observation batch returned float64 values, expected "
         "(B, k) = (8, 4) integer positions"),
        ("out_of_range", "act(obs) on a reset observation batch returned positions from 2"),
        ("out_of_range", "expected positions in [0, 20) (C = 20 candidates a request)"),
        ("raises", "act(obs) raised KeyError: 'user_embedding'"),
        ("greedy_short", "greedy(obs) on a reset observation batch returned shape (8, 3)"),
        ("scores_short", "scores(obs) on a reset observation batch returned shape (8, 19), "
         "expected (B, C) = (8, 20) finite real scores"),
        ("scores_text", "scores(obs) on a reset observation batch returned <U"),
        ("nan_scores", "scores(obs) on a reset observation batch returned 160 non-finite "
         "values (NaN or inf) of 160, before the agent learned anything"),
    ],
)  # fmt: skip
def test_an_agent_that_answers_against_the_protocol_is_refused_before_any_cell(tiny, mode, said):
    """The run would have failed (or measured nonsense) in its first batch or evaluation."""
    spec = _spec(tiny, {"name": "online"}, {"name": "p_feature", "params": {"mode": mode}})
    message = _refusal(spec)
    assert message.startswith("bad experiment spec:\n  agents.1 (p_feature): ")
    assert said in message
    assert "agents.0" not in message  # the built-in learner passes


def test_a_builder_that_raises_is_one_line_naming_the_agent_and_the_error(tiny, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec(tiny, {"name": "p_broken"})))
    with pytest.raises(SystemExit) as caught:
        main(["run", str(path), "--runner", "local", "--out", str(tmp_path / "out")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "driftrec run: error: bad experiment spec: agents.0 (p_broken): building it raised "
        "KeyError: 'x'\n"
    )
    assert not (tmp_path / "out").exists()


def test_the_spec_check_leaves_the_global_random_streams_as_they_were(tiny):
    """Building and calling the agents once draws nothing the cells would see: a user's agent
    that draws from Python's, NumPy's and torch's global streams included."""
    spec = _spec(tiny, {"name": "online"}, {"name": "p_feature", "params": {"mode": "global_rng"}})
    random.seed(3), np.random.seed(3), torch.manual_seed(3)  # noqa: NPY002
    numpy_state = np.random.get_state  # the legacy global stream is what is checked
    before = (random.getstate(), numpy_state()[1].copy(), torch.get_rng_state())
    load_spec(spec)
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(numpy_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])


def test_a_cell_is_bit_identical_with_and_without_the_spec_check(tiny):
    # The check builds its own environment and agents: a cell's seeded streams (world, agent)
    # are untouched. (The cells do not seed the global streams, which an agent should not use;
    # that the check leaves them as they were is the test above.)
    spec_dict = _spec(tiny, {"name": "online"}, {"name": "p_feature"})
    unchecked = ExperimentSpec.model_validate(spec_dict).cells()
    alone = [cell_module.run_cell(cell) for cell in unchecked]
    checked = [cell_module.run_cell(cell) for cell in load_spec(spec_dict).cells()]
    for a, b in zip(alone, checked, strict=True):
        for key, curve in a.curves.items():
            np.testing.assert_array_equal(b.curves[key].values, curve.values, err_msg=key)
        np.testing.assert_array_equal(a.probe, b.probe)
        for key in a.ranking:
            np.testing.assert_array_equal(a.ranking[key], b.ranking[key], err_msg=key)


# ------------------------------------------------------------------ settings and device


@pytest.mark.parametrize(
    ("fields", "given"),
    [
        ({"model": {"name": "two_tower"}}, "model"),
        ({"exploration": "softmax"}, "exploration"),
        ({"model": "sasrec", "exploration": "softmax"}, "exploration and model"),
    ],
)
def test_a_model_or_exploration_a_custom_agent_never_reads_is_refused(tiny, fields, given):
    message = _refusal(_spec(tiny, {"name": "p_feature", **fields}))
    assert f"agents.0 (p_feature): {given} given, but agent 'p_feature''s builder never reads" in (
        message
    )
    assert f"remove {given}" in message


def test_a_custom_agent_that_reads_its_model_or_keeps_its_settings_is_not_refused(tiny):
    load_spec(_spec(tiny, {"name": "p_reads_model", "model": {"name": "two_tower"}}))
    with pytest.warns(UserWarning, match=r"agents.0 \(p_keeps_settings\): exploration given, but"):
        load_spec(_spec(tiny, {"name": "p_keeps_settings", "exploration": "softmax"}))


def test_a_custom_builder_gets_the_cells_device(tiny, monkeypatch):
    """A GPU cell's device reaches a user's builder (settings.device), as it reaches the
    built-in learners (this machine need not have the GPU: the cell's device is set)."""
    spec = ExperimentSpec.model_validate(_spec(tiny, {"name": "p_device"}))
    monkeypatch.setattr(cell_module, "_device", lambda cell: "cuda")
    DEVICES.clear()
    cell_module.run_cell(spec.cells()[0])
    assert DEVICES and set(DEVICES) == {"cuda"}


# ------------------------------------------------------------------ divergence


def test_scores_never_finite_are_not_blamed_on_a_learning_rate(tiny, tmp_path):
    """At t=0 before any update, non-finite scores are the model's initial parameters or the
    scores method, in the cell's warning and in the report (run_cell, without the spec check
    that refuses such an agent)."""
    spec = ExperimentSpec.model_validate(
        _spec(tiny, {"name": "p_feature", "params": {"mode": "nan_scores"}}, name="nan-start")
    )
    cell = spec.cells()[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cell_module.run_cell(cell)
    assert result.diverged_at == 0
    (message,) = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert "not finite from the start, before it learned anything" in message
    assert "initial parameters" in message and "scores method" in message
    assert "learning rate" not in message and "lr" not in message.split("(")[0]
    directory = ResultsDir(tmp_path / "out")
    directory.prepare(spec)
    directory.write_cell(cell.id, result)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = write_report(directory.root)
    summary = (report.parent / "summary.md").read_text()
    assert "not finite from the start" in summary
    assert "learning rate" not in summary


def test_an_agent_without_a_learning_rate_is_not_told_to_lower_one(tiny, tmp_path):
    spec = _spec(tiny, {"name": "p_feature", "params": {"mode": "nan_after"}}, name="nan-after")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_experiment(spec, tmp_path / "out", runner="local", progress=False)
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    from_cell = [m for m in messages if m.startswith("cell sudden__p_feature__s0:")]
    assert len(from_cell) == 1
    assert "diverged as it learned" in from_cell[0]
    assert "learning rate" not in from_cell[0]
    summary = (report.parent / "summary.md").read_text()
    assert "diverged as it learned" in summary and "learning rate" not in summary


# ------------------------------------------------------------------ driftrec list


LIST_MODULE = '''"""A user's registrations, to be listed."""
from driftrec.agents import AGENTS, STRATEGIES, make_strategy
from driftrec.agents.baselines import RandomAgent
from driftrec.agents.models import MODELS, MatrixFactorisation
from driftrec.agents.protocol import task_sizes
from driftrec.simulators import CHOICE_MODELS, SCENARIOS, SuddenShift
from driftrec.simulators.choice import CascadeChoice
from driftrec.simulators.scenarios import Scenario


@SCENARIOS.register()
def listed_shift(at: int = 1_234) -> Scenario:
    """A sudden shift at ``at`` under another name."""
    return Scenario("listed_shift", (SuddenShift(at),))


@CHOICE_MODELS.register()
def listed_choice(config):
    """A cascade that ignores ``no_click_utility``."""
    return CascadeChoice(config.slate_size, 0.0)


@AGENTS.register("listed_agent")
def listed_agent(env_or_spaces, settings, /, width: int = 7):
    """Random slates under another name."""
    return RandomAgent(task_sizes(env_or_spaces), seed=settings.seed)


@STRATEGIES.register()
def listed_strategy(epochs: int = 3):
    """Online, several passes."""
    return make_strategy("online", epochs=epochs)


@MODELS.register("listed_model")
class ListedModel(MatrixFactorisation):
    """MF under another name."""

    def __init__(self, sizes, dim: int = 5, **kw):
        super().__init__(sizes, dim=dim, **kw)
'''


def test_list_imports_a_users_module_and_lists_its_registrations(tmp_path, monkeypatch, capsys):
    from driftrec.agents import MODELS, STRATEGIES
    from driftrec.simulators import CHOICE_MODELS, SCENARIOS

    (tmp_path / "listed_plugins.py").write_text(LIST_MODULE)
    monkeypatch.chdir(tmp_path)  # found in the working directory, as a spec's imports are
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert main(["list", "--imports", "listed_plugins"]) == 0
    finally:
        SCENARIOS.unregister("listed_shift")
        CHOICE_MODELS.unregister("listed_choice")
        AGENTS.unregister("listed_agent")
        STRATEGIES.unregister("listed_strategy")
        MODELS.unregister("listed_model")
        sys.modules.pop("listed_plugins", None)
    out = capsys.readouterr().out
    assert "listed_shift" in out and "at=1234" in out
    assert "A sudden shift at `at` under another name." in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  listed")}
    assert "width=7" in lines["listed_agent"]
    assert "epochs=3" in lines["listed_strategy"]
    assert "dim=5" in lines["listed_model"]
    assert "A cascade that ignores `no_click_utility`." in lines["listed_choice"]


def test_list_refuses_a_module_it_cannot_import_in_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["list", "--imports", "no_such_plugins"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "driftrec list: error: argument --imports: cannot import 'no_such_plugins': No module "
        "named 'no_such_plugins' (it must be importable from the working directory or "
        "PYTHONPATH)\n"
    )
    with pytest.raises(SystemExit):
        main(["list", "--imports", "my-plugins"])
    assert "must be dotted Python module names" in capsys.readouterr().err


def test_list_keeps_the_names_a_summary_quotes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "At `at` every affected cohort" in out
    assert "At at " not in out


def test_a_bad_spec_is_one_line_without_a_stray_semicolon(tiny, tmp_path, capsys):
    spec = {**tiny, "scenarios": [{"name": "sudden", "params": {"at": -1}}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit):
        main(["run", str(path), "--runner", "local", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err.startswith("driftrec run: error: bad experiment spec: scenarios.0 (sudden): ")
    assert ":;" not in err


def test_the_docs_plugin_example_runs(tmp_path, monkeypatch):
    """docs/experiments.md's example of a user's agent and model registers and builds."""
    from driftrec.agents import MODELS

    text = (Path(__file__).parents[2] / "docs" / "experiments.md").read_text()
    marker = "# myplugins.py"
    block = text[text.index(marker) :]
    block = block[: block.index("```")]
    (tmp_path / "myplugins.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        __import__("myplugins")
        spec = load_spec(
            {
                "name": "docs",
                "imports": ["myplugins"],
                "horizon": 400,
                "num_envs": 100,
                "seeds": [0],
                "world": {"num_users": 50, "num_items": 60, "num_candidates": 10,
                          "slate_size": 3},
                "scenarios": [{"name": "sudden", "params": {"at": 200}}],
                "agents": [{"name": "online", "model": {"name": "mf_scaled", "scale": 2.0}},
                           {"name": "top_score", "model": {"name": "mf_scaled"}}],
                "evaluation": {"window": 100, "every": 100, "probe_size": 20},
            }
        )  # fmt: skip
        for cell in spec.cells():
            assert cell_module.run_cell(cell).horizon == 400
    finally:
        AGENTS.unregister("top_score")
        MODELS.unregister("mf_scaled")
        sys.modules.pop("myplugins", None)


BROKEN_SCENARIO = '''
from driftrec.simulators import SCENARIOS, Scenario


@SCENARIOS.register()
def failing_scenario(x: int = 1) -> Scenario:
    """Fails its own way when built."""
    return {"x": x}["y"]
'''


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("def broken(:\n", "imports.0: importing 'user_mod' raised SyntaxError: invalid syntax"),
        (
            "raise RuntimeError('boom')\n",
            "imports.0: importing 'user_mod' raised RuntimeError: boom",
        ),
        (BROKEN_SCENARIO, "scenarios.0 (failing_scenario): building it raised KeyError: 'y'"),
    ],
)
def test_a_users_module_or_scenario_that_fails_its_own_way_is_one_line(
    tiny, tmp_path, monkeypatch, source, said
):
    # ImportError, TypeError and ValueError were one line; anything else was a traceback
    from driftrec.simulators import SCENARIOS

    (tmp_path / "user_mod.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    spec = {**tiny, "imports": ["user_mod"]}
    if "failing_scenario" in source:
        spec["scenarios"] = [{"name": "failing_scenario"}]
    try:
        assert said in _refusal(spec)
    finally:
        sys.modules.pop("user_mod", None)
        if "failing_scenario" in SCENARIOS:
            SCENARIOS.unregister("failing_scenario")

"""A spec's values are checked where they enter: a value that would crash a run mid-way (a
clock past the world's, arrays larger than the machine, a horizon off the batch grid) is refused
up front with the field's path, and evaluation settings that would measure nothing or nonsense
draw one warning each (docs/metrics.md)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from tiny_spec import tiny_spec

from driftrec.experiments import spec_checks
from driftrec.experiments.spec import SpecError, load_spec


def _spec(**changes: Any) -> dict[str, Any]:
    spec = tiny_spec([{"name": "online"}, {"name": "random"}])
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def _refused(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return str(caught.value)


def _warnings(spec: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_spec(spec)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"horizon": 10**30}, "horizon"),
        ({"evaluation": {"window": 10**30}}, "evaluation.window"),
        ({"evaluation": {"every": 10**30}}, "evaluation.every"),
        ({"evaluation": {"regret_horizon": 10**30}}, "evaluation.regret_horizon"),
        ({"evaluation": {"resolution": 10**30}}, "evaluation.resolution"),
        ({"evaluation": {"probe_size": 10**9}}, "evaluation.probe_size"),
        ({"warm_start": {"requests": 10**10}}, "warm_start.requests"),
        ({"num_envs": 10**9}, "num_envs"),
    ],
)
def test_clocks_and_sizes_beyond_any_run_are_refused_by_field(changes, where):
    message = _refused(_spec(**changes))
    assert f"\n  {where}: Input should be less than or equal to" in message


def test_arrays_larger_than_the_machine_are_refused_saying_how_many_fit(monkeypatch):
    monkeypatch.setattr(spec_checks, "machine_memory", lambda: 2**30)  # a 1 GiB machine
    spec = _spec(
        horizon=1_000_000,
        num_envs=500_000,
        evaluation={"every": 500_000, "probe_size": 10**6},
        warm_start={"requests": 10**6},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the window is shorter than a batch here
        lines = _refused(spec).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "num_envs",
        "evaluation.probe_size",
        "warm_start.requests",
    ]
    assert "more than this machine's 1.0 GiB: at most" in lines[0]
    fit = int(lines[2].split("at most ")[1].split(" fit")[0].replace(",", ""))
    assert 100 < fit < 10**6
    assert "lower warm_start.requests" in lines[2]


def test_a_batch_too_large_is_refused_before_the_environment_is_built(monkeypatch):
    import driftrec.envs

    monkeypatch.setattr(spec_checks, "machine_memory", lambda: 16 * 2**30)  # any machine

    def boom(*args, **kwargs):
        raise AssertionError("built")

    monkeypatch.setattr(driftrec.envs, "RecDriftVectorEnv", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the window is shorter than a batch here
        message = _refused(_spec(num_envs=10**7, horizon=10**7, evaluation={"every": 10**7}))
    assert "\n  num_envs: 10,000,000 concurrent sessions" in message


def test_running_out_of_memory_while_building_is_a_spec_error_naming_it(monkeypatch):
    import driftrec.agents.registry
    import driftrec.envs

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 80 GiB")

    # the spec check builds agents with make_agent_recording (make_agent, recording reads)
    monkeypatch.setattr(driftrec.agents.registry, "make_agent_recording", no_memory)
    assert "agents.0 (online): it does not fit in memory" in _refused(_spec())
    monkeypatch.setattr(driftrec.envs, "RecDriftVectorEnv", no_memory)
    assert "scenarios.0 (sudden): it does not fit in memory" in _refused(_spec())


@pytest.mark.parametrize(
    ("changes", "start"),
    [
        ({"evaluation": {"window": 2_000}}, "evaluation.window (2,000) is not shorter than"),
        ({"evaluation": {"window": 50}}, "evaluation.window (50) is shorter than the curves' bin"),
        (
            {"evaluation": {"resolution": 150, "window": 300}},
            "evaluation.resolution (150) is not a multiple of num_envs",
        ),
        (
            {"evaluation": {"resolution": 400, "window": 300}},
            "evaluation.resolution (400) is larger than evaluation.window",
        ),
        (
            {"scenarios": [{"name": "sudden", "params": {"at": 5_000}}]},
            "scenarios.0 (sudden): its drift is scheduled, but no change is seen within",
        ),
        (
            {"scenarios": [{"name": "recurring", "params": {"period": 200}}]},
            "scenarios.0 (recurring): 8 of its scheduled changes come less than "
            "evaluation.window (300)",
        ),
    ],
)
def test_evaluation_settings_that_measure_nonsense_warn_once_naming_the_field(changes, start):
    messages = _warnings(_spec(**changes))
    assert len([m for m in messages if m.startswith(start)]) == 1, messages


def test_the_shared_settings_draw_no_warning():
    assert _warnings(_spec()) == []


def test_changes_closer_than_the_window_are_judged_on_the_batch_grid():
    # changes every 290 requests are seen every 300 (at 300, 600, 900, ...): not under W = 300
    recurring = {"name": "recurring", "params": {"period": 290}}
    assert not [m for m in _warnings(_spec(scenarios=[recurring])) if "previous one" in m]
    recurring["params"]["period"] = 250  # seen at 300, 500, 800, 1,000, 1,300, 1,500, 1,800
    assert [m for m in _warnings(_spec(scenarios=[recurring])) if "previous one" in m] == [
        "scenarios.0 (recurring): 3 of its scheduled changes come less than evaluation.window "
        "(300) after the previous one (first: 300 and 500, as seen on the batch grid): "
        "each is measured against the previous one's degraded level (docs/metrics.md, "
        "pitfalls); lower evaluation.window below the gap or space the changes, and read the "
        "twin columns"
    ]


@pytest.mark.parametrize(("at", "warned"), [(1_700, False), (1_800, True)])
def test_a_change_within_a_window_of_the_horizon_is_censored_for_all_and_warned(at, warned):
    # horizon 2,000, W = 300: a change at 1,700 has its window [1,700, 2,000); at 1,800 none
    # (every agent, the oracle too, was reported censored there without a word)
    messages = _warnings(_spec(scenarios=[{"name": "sudden", "params": {"at": at}}]))
    expected = (
        f"scenarios.0 (sudden): its change at {at:,} leaves less than evaluation.window (300) "
        "before the horizon: no agent, the oracle included, can be seen back within it, so it "
        "is censored for all; end the horizon a window after it"
    )
    assert messages == ([expected] if warned else [])


def test_a_typo_in_a_world_setting_is_named_once_with_the_closest_setting():
    spec = _spec(scenarios=[{"name": "sudden", "params": {"at": 1_000}}, {"name": "stationary"}])
    spec["world"]["num_user"] = 300
    message = _refused(spec)
    assert message == (
        "bad experiment spec:\n  world.num_user: unknown world setting (did you mean 'num_users'?)"
    )


def test_world_may_still_set_a_scenario_parameter_but_not_an_environment_option():
    spec = _spec(scenarios=[{"name": "sudden"}])
    spec["world"]["at"] = 1_000
    load_spec(spec)
    spec["world"]["twin"] = True
    assert "world.twin: not a world setting but an environment option" in _refused(spec)


@pytest.mark.parametrize("field", ["model", "exploration"])
@pytest.mark.parametrize(
    "name", ["random", "oracle", "popularity", "frozen_oracle", "diverse_oracle"]
)
def test_a_baseline_given_a_model_or_exploration_is_refused(name, field):
    """Other than the defaults (which a results directory's spec.yaml writes out for every
    agent: those load, see below)."""
    value = {"model": "two_tower", "exploration": "softmax"}[field]
    message = _refused(tiny_spec([{"name": "online"}, {"name": name, field: value}]))
    assert f"\n  agents.1 ({name}): {field} given, but {name!r} has no model" in message


def test_learners_still_take_a_model_and_exploration():
    agent = {"name": "online", "model": {"name": "mf", "dim": 8}, "exploration": "softmax"}
    load_spec(tiny_spec([agent]))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_eps_is_refused_as_such(value):
    message = _refused(_spec(evaluation={"eps": value}))
    assert "evaluation.eps: Input should be a finite number" in message


def test_a_horizon_off_the_batch_grid_is_warned_about_with_the_nearest_valid_ones():
    """1,050 requests with batches of 100 served 1,000 while the spec said 1,050. A warning, not
    a refusal: results directories written before keep loading, and the default num_envs (256)
    divides no round horizon."""
    found = _warnings(_spec(horizon=1_050))
    assert [w for w in found if w.startswith("horizon")] == [
        "horizon (1,050) is not a multiple of num_envs (100): a cell serves whole batches, "
        "1,000 requests; set horizon to 1000 or 1100 to say so"
    ]


def test_a_results_directorys_own_spec_with_baselines_loads_again(tmp_path):
    """spec.yaml records every field, so a baseline's default model and exploration are written
    out: reading it back must not count them as given."""
    spec = load_spec(_spec())
    assert [a.name for a in spec.agents] == ["online", "random"]
    stored = tmp_path / "spec.yaml"
    stored.write_text(spec.to_yaml())
    assert load_spec(stored).fingerprint() == spec.fingerprint()


def test_window_warnings_need_a_change_to_measure():
    """A stationary grid measures no recovery: its window is not warned about."""
    stationary = _spec(scenarios=[{"name": "stationary"}], evaluation={"window": 5_000})
    assert not [w for w in _warnings(stationary) if "window" in w]


def test_render_mode_in_world_is_refused_as_an_environment_option():
    message = _refused(_spec(world={"render_mode": None}))
    assert "world.render_mode: not a world setting but an environment option" in message


def test_spec_files_that_cannot_be_read_say_which_and_why(tmp_path):
    """Before: a missing file without a .yaml suffix was read as YAML text ("a spec is a YAML
    mapping of fields, got str"), an empty file gave "got NoneType", and a syntax error said
    where in "<unicode string>"."""
    with pytest.raises(SpecError, match=r"spec file 'specs/nope.yml.txt' does not exist"):
        load_spec("specs/nope.yml.txt")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(SpecError, match=r"empty.yaml' is empty: a spec is a YAML mapping"):
        load_spec(empty)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("hello\n")  # exists: not "does not exist"
    with pytest.raises(SpecError, match=r"a spec is a YAML mapping of fields, got str"):
        load_spec(scalar)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [\n")
    with pytest.raises(SpecError, match=r"broken.yaml' is not valid YAML") as error:
        load_spec(broken)
    assert f'in "{broken}", line 2' in str(error.value)

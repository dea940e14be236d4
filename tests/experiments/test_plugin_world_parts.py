"""A user's choice model or retriever that breaks the contract is refused where it enters: by
``gym.make`` / the environments, and by the spec check in one line (exit 2), before any cell
runs."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from driftrec.experiments.cli import main
from driftrec.simulators import CHOICE_MODELS, RETRIEVERS, MultinomialLogitChoice
from driftrec.simulators.choice import make_choice_model
from driftrec.simulators.scenarios import resolve_world


class TooLikely:
    """A logit whose probabilities are doubled: rows sum past 1."""

    def __init__(self, config):
        self.inner = make_choice_model("mnl", config.slate_size, 1.0, 1.0)
        self.slate_size = config.slate_size

    def slot_probabilities(self, slate_utilities, shown=None):
        return 2.0 * self.inner.slot_probabilities(slate_utilities, shown)

    def oracle(self, utilities, values):
        return self.inner.oracle(utilities, values)

    def oracle_value(self, utilities, values):
        return self.inner.oracle_value(utilities, values)


class Repeats:
    """Candidates with the first item twice."""

    def __init__(self, config, items):
        self.items, self.count = items, config.num_candidates

    def retrieve(self, n, clock, rng):
        live = np.flatnonzero(self.items.available(clock))[: self.count]
        live[1] = live[0]
        return np.tile(live, (n, 1))

    def record_clicks(self, items, clock):
        pass

    def catalogue_changed(self):
        pass


@pytest.fixture
def broken_parts():
    CHOICE_MODELS.register("too_likely")(TooLikely)
    RETRIEVERS.register("repeats")(Repeats)
    yield
    CHOICE_MODELS.unregister("too_likely")
    RETRIEVERS.unregister("repeats")


def test_the_environments_refuse_a_broken_choice_model_when_made(broken_parts):
    import gymnasium as gym

    from driftrec.envs import RecDriftVectorEnv, env_id

    with pytest.raises(ValueError, match=r"choice model TooLikely: slot_probabilities\(\) ret"):
        gym.make(env_id("sudden"), choice_model="too_likely", num_users=300, num_items=200)
    with pytest.raises(ValueError, match=r"choice model TooLikely: .* summing to more than 1"):
        RecDriftVectorEnv(4, "stationary", choice_model="too_likely")


@pytest.mark.parametrize(
    ("world", "said"),
    [
        (
            {"choice_model": "too_likely"},
            "scenarios.0 (sudden): choice model TooLikely: slot_probabilities() returned "
            "probabilities summing to more than 1",
        ),
        (
            {"retrieval": "repeats"},
            "scenarios.0 (sudden): retriever Repeats at t=0: retrieve(4) returned an item "
            "twice in one request at request 0",
        ),
    ],
    ids=["choice model", "retriever"],
)
def test_a_spec_naming_a_broken_part_is_refused_in_one_line(
    broken_parts, tiny, tmp_path, capsys, world, said
):
    spec = {**tiny, "world": {**tiny["world"], **world}, "scenarios": tiny["scenarios"][:1]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit) as caught:
        main(["run", str(path), "--runner", "local", "--out", str(tmp_path / "out")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("driftrec run: error: bad experiment spec: ") and said in err
    assert err.count("\n") == 1  # one line
    assert not (tmp_path / "out").exists()


def test_a_builder_of_the_built_in_logit_with_a_bias_its_oracle_cannot_take_is_refused():
    @CHOICE_MODELS.register("rising")
    def rising(config):
        """Later slots seen more: not what the MNL oracle assumes."""
        return MultinomialLogitChoice(config.slate_size, 1.0, np.arange(config.slate_size) * 1.0)

    try:
        with pytest.raises(ValueError, match=r"position_bias must be .* non-increasing"):
            resolve_world("stationary", choice_model="rising")
    finally:
        CHOICE_MODELS.unregister("rising")

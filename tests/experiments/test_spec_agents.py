"""Checking a spec warns about an agent that could never update within a cell's horizon."""

from __future__ import annotations

import warnings

import pytest
from tiny_spec import tiny_spec

from driftrec.experiments.spec import ExperimentSpec


def _spec(agents: list[dict]) -> ExperimentSpec:
    return ExperimentSpec.model_validate(tiny_spec(agents))


def _warnings(spec: ExperimentSpec) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec.check_against_registries()
    return [str(w.message) for w in caught if "never updates" in str(w.message)]


def test_an_agent_whose_first_update_is_past_the_horizon_is_named():
    messages = _warnings(
        _spec(
            [
                {"name": "static"},  # trains once after 20,000 requests (default train_on)
                {"name": "fine_tune", "params": {"every": 1_000}},
                {"name": "replay", "params": {"micro_batch": 4_096}},
            ]
        )
    )
    assert len(messages) == 2
    assert messages[0].startswith("agents.0 (static): its first update comes after 20,224")
    assert messages[1].startswith("agents.2 (replay): its first update comes after 4,096")


@pytest.mark.parametrize(
    "agent",
    [
        {"name": "static", "params": {"train_on": 0}},  # the no-update control, on purpose
        {"name": "online"},
        {"name": "drift_triggered"},  # data-driven: cannot be known in advance
        {"name": "random"},
    ],
)
def test_agents_that_can_update_or_are_not_meant_to_are_not_warned_about(agent):
    assert _warnings(_spec([agent])) == []

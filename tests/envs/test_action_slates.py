"""The repeats rule of an action (``driftrec.slates.empty_repeats``), checked row by row against
its plain statement: a slot is empty (-1) when an earlier slot of the row holds its position."""

from __future__ import annotations

import numpy as np
import pytest

from driftrec.slates import empty_repeats


def first_shows(row: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for position in row:
        out.append(-1 if position in seen else position)
        seen.add(position)
    return out


@pytest.mark.parametrize("k", [1, 2, 5, 10, 33])
def test_a_repeated_position_is_shown_at_its_first_slot_only(k):
    rng = np.random.default_rng(k)
    actions = rng.integers(0, max(2, k // 2), (200, k))  # most rows repeat some position
    before = actions.copy()
    slates = empty_repeats(actions)
    assert slates.dtype == np.int64 and slates.shape == actions.shape
    assert slates.tolist() == [first_shows(row) for row in actions.tolist()]
    assert np.array_equal(actions, before)  # a new array; the action is left as it was


def test_no_rows_and_no_slots():
    assert empty_repeats(np.zeros((0, 4), dtype=np.int64)).shape == (0, 4)
    assert empty_repeats(np.zeros((3, 0), dtype=np.int64)).shape == (3, 0)

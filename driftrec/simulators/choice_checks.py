"""The contract every choice model keeps, checked: :func:`check_choice_model`.

A world checks a choice model that is not a built-in one when it is built (a user's, from
``CHOICE_MODELS`` or passed to ``World`` / ``World.draw``), so that a model whose probabilities
or oracle are wrong is refused before anything is served, not found out in a regret below zero
or a run that dies mid-way. The check runs on a few requests of its own random utilities (its
own generator: the world's streams are untouched).
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np

from driftrec.simulators.choice import CascadeChoice, MultinomialLogitChoice, row_sums
from driftrec.validation import check_choice, check_integer

__all__ = ["BUILT_IN_CHOICE_MODELS", "check_choice_model"]

BUILT_IN_CHOICE_MODELS = (MultinomialLogitChoice, CascadeChoice)
"""The built-in models' classes: correct by construction (their parameters are checked when
made; the suite tests their oracles against brute force), so a world does not check an
instance of exactly these again (a subclass, which may override a method, it does)."""

_METHODS = ("slot_probabilities", "oracle", "oracle_value")
_TOLERANCE = 1e-6
"""Relative tolerance of the comparisons of two expected rewards (float32 utilities)."""


def check_choice_model(
    model: Any,
    num_candidates: int,
    *,
    slate_size: int | None = None,
    reward: str = "click",
    requests: int = 8,
    random_slates: int = 64,
    seed: int = 0,
) -> None:
    """Check ``model`` against the choice-model contract the world relies on; raise naming the
    broken rule.

    1. It has ``slate_size`` (a positive integer, ``slate_size`` if given) and the methods
       ``slot_probabilities``, ``oracle`` and ``oracle_value``; it deep-copies (world
       snapshots copy it).
    2. ``slot_probabilities(u, shown)`` is (n, k), real, finite, each >= 0, each row's sum
       at most 1 (the rest is no click), and 0 at every slot not shown.
    3. ``oracle(u, values)`` gives (n, k) integer positions in [-1, C-1] (-1: an empty slot),
       none shown twice in a row, and (n,) finite values >= 0, each the expected reward of
       its slate under ``slot_probabilities``; ``oracle_value`` gives the same values.
    4. The oracle is the best slate: no full slate of distinct positions earns more, among
       ``random_slates`` random ones per request, the top k by utility, and every slate
       when there are at most 5,000 of them.

    Under ``reward="engagement"`` rules 3 and 4 hold with each item's positive value
    (``values``); under ``"click"`` with ``values=None`` (every click is worth 1).

    Args:
        model: the choice model.
        num_candidates: candidates per request (C), at least the slate size.
        slate_size: the slate size the world needs (None: the model's own).
        reward: 'click' or 'engagement': the rewards the model is checked with.
        requests: requests of random utilities checked (n).
        random_slates: random full slates each request's oracle is compared with.
        seed: the check's own random generator.

    Raises:
        TypeError: a missing attribute or method, or a value of the wrong type.
        ValueError: a broken rule, named, with the first request at fault.
    """
    name = type(model).__name__
    reward = check_choice("reward", reward, ("click", "engagement"))
    c = check_integer("num_candidates", num_candidates, minimum=1)
    k = _slate_size(model, name, slate_size)
    if k > c:
        raise ValueError(f"choice model {name}: slate_size {k} exceeds num_candidates {c}")
    rng = np.random.default_rng(seed)
    n = check_integer("requests", requests, minimum=1)
    utilities = (3.0 * rng.standard_normal((n, c))).astype(np.float32)
    values = None
    if reward == "engagement":
        values = np.exp(0.5 * rng.standard_normal((n, c))).astype(np.float32)
    probabilities = _ProbabilityCheck(model, name, k)
    shown = rng.random((n, k)) < 0.7
    shown[:, 0] = True
    for mask in (np.ones((n, k), dtype=bool), shown):
        probabilities(utilities[:, :k], mask)

    slates, best = _oracle(model, name, utilities, values, k)
    expected = _expected(probabilities, utilities, values, slates)
    _same(name, "oracle(): its values are not its slates' expected rewards", best, expected)
    alone = np.asarray(model.oracle_value(utilities, values), dtype=np.float64)
    if alone.shape != (n,):
        raise ValueError(f"choice model {name}: oracle_value() returned shape {alone.shape}")
    _same(name, "oracle_value() differs from oracle()'s values", alone, best)

    # Every rival slate of every request in one call: (m, n, k) laid out as m n requests.
    rivals = _rival_slates(utilities, k, random_slates, rng)
    m = len(rivals)
    tiled = np.tile(utilities, (m, 1))
    rival = _expected(
        probabilities,
        tiled,
        None if values is None else np.tile(values, (m, 1)),
        rivals.reshape(m * n, k),
    ).reshape(m, n)
    beaten = rival > best + _TOLERANCE * np.maximum(1.0, np.abs(best))
    if beaten.any():
        which, row = (int(i[0]) for i in np.nonzero(beaten))
        raise ValueError(
            f"choice model {name}: oracle() is not the best slate: at request {row} the slate "
            f"{rivals[which, row].tolist()} earns {rival[which, row]:.6g} against the oracle's "
            f"{slates[row].tolist()} at {best[row]:.6g}"
        )


def _slate_size(model: Any, name: str, wanted: int | None) -> int:
    missing = [m for m in _METHODS if not callable(getattr(model, m, None))]
    if missing or not hasattr(model, "slate_size"):
        lacks = missing + ([] if hasattr(model, "slate_size") else ["slate_size"])
        raise TypeError(
            f"choice model {name} lacks {lacks}: a choice model has slate_size and the methods "
            f"{list(_METHODS)} (driftrec.simulators.ChoiceModel)"
        )
    k = check_integer(f"{name}.slate_size", model.slate_size, minimum=1)
    if wanted is not None and k != wanted:
        raise ValueError(
            f"choice model {name} has slate_size {k}, but the world's slates have {wanted} slots"
        )
    try:
        copy.deepcopy(model)
    except Exception as error:
        raise TypeError(
            f"choice model {name} cannot be deep-copied ({type(error).__name__}: {error}); "
            "world snapshots copy it"
        ) from error
    return int(k)


class _ProbabilityCheck:
    """``model.slot_probabilities``, each answer checked against rule 2."""

    def __init__(self, model: Any, name: str, k: int) -> None:
        self.model, self.name, self.k = model, name, k

    def __call__(self, slate_utilities: np.ndarray, shown: np.ndarray) -> np.ndarray:
        name = f"choice model {self.name}: slot_probabilities()"
        probs = np.asarray(self.model.slot_probabilities(slate_utilities, shown))
        if probs.shape != shown.shape:
            raise ValueError(f"{name} returned shape {probs.shape}, expected {shown.shape}")
        if probs.dtype.kind not in "fiu":
            raise TypeError(f"{name} returned {probs.dtype} values, expected real numbers")
        probs = probs.astype(np.float64)
        problems = {
            "not finite": ~np.isfinite(probs).all(axis=1),
            "below 0": (probs < 0).any(axis=1),  # then a sum at most 1 holds each <= 1
            "summing to more than 1": row_sums(probs) > 1.0 + 1e-9,
            "not 0 at an empty slot": (np.where(shown, 0.0, probs) != 0).any(axis=1),
        }
        for problem, rows in problems.items():
            if rows.any():
                row = int(np.flatnonzero(rows)[0])
                raise ValueError(
                    f"{name} returned probabilities {problem} at request {row}: "
                    f"{probs[row].tolist()} (shown {shown[row].tolist()})"
                )
        return probs


def _oracle(
    model: Any, name: str, utilities: np.ndarray, values: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    n, c = utilities.shape
    answer = model.oracle(utilities, values)
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise TypeError(f"choice model {name}: oracle() must return (slates, values)")
    slates, best = np.asarray(answer[0]), np.asarray(answer[1], dtype=np.float64)
    if slates.shape != (n, k) or slates.dtype.kind not in "iu":
        raise ValueError(
            f"choice model {name}: oracle() returned slates of {slates.dtype} {slates.shape}, "
            f"expected ({n}, {k}) integer positions"
        )
    if best.shape != (n,) or not np.isfinite(best).all() or (best < 0).any():
        raise ValueError(
            f"choice model {name}: oracle() returned values {best.tolist()}, expected ({n},) "
            "finite expected rewards >= 0"
        )
    if slates.size and (slates.min() < -1 or slates.max() >= c):
        raise ValueError(
            f"choice model {name}: oracle() returned positions from {slates.min()} to "
            f"{slates.max()}, expected positions in [0, {c - 1}] or -1 for an empty slot"
        )
    ordered = np.sort(np.where(slates >= 0, slates, -1 - np.arange(k)), axis=1)
    repeats = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if repeats.any():
        row = int(np.flatnonzero(repeats)[0])
        raise ValueError(
            f"choice model {name}: oracle() shows a position twice at request {row}: "
            f"{slates[row].tolist()}"
        )
    return slates.astype(np.int64), best


def _expected(
    probabilities: _ProbabilityCheck,
    utilities: np.ndarray,
    values: np.ndarray | None,
    slates: np.ndarray,
) -> np.ndarray:
    """(n,) expected reward of ``slates`` (-1: empty) under the model."""
    at = np.maximum(slates, 0)
    probs = probabilities(np.take_along_axis(utilities, at, axis=1), slates >= 0)
    if values is None:
        return row_sums(probs)
    return row_sums(probs * np.take_along_axis(values, at, axis=1))


def _same(name: str, rule: str, got: np.ndarray, want: np.ndarray) -> None:
    wrong = ~np.isclose(got, want, rtol=_TOLERANCE, atol=1e-12)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ValueError(f"choice model {name}: {rule} (request {row}: {got[row]} and {want[row]})")


def _rival_slates(
    utilities: np.ndarray, k: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """(m, n, k) full slates to compare the oracle with: the top k by utility, ``count`` random
    ones per request, and every ordered slate when there are at most 5,000."""
    n, c = utilities.shape
    top = np.argsort(-utilities, axis=1, kind="stable")[None, :, :k]
    drawn = np.argsort(rng.random((count, n, c)), axis=2)[:, :, :k]
    rivals = [top, drawn]
    if math.perm(c, k) <= 5_000:
        every = np.array(list(itertools.permutations(range(c), k)), dtype=np.int64)
        rivals.append(np.broadcast_to(every[:, None, :], (len(every), n, k)))
    return np.concatenate(rivals)

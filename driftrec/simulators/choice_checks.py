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
from typing import TYPE_CHECKING, Any

import numpy as np

from driftrec.simulators.choice import (
    CHOICE_MODELS,
    CascadeChoice,
    ChoiceModel,
    MultinomialLogitChoice,
    row_sums,
)
from driftrec.slates import empty_repeats
from driftrec.validation import check_choice, check_integer

if TYPE_CHECKING:
    from driftrec.simulators.config import WorldConfig

__all__ = ["BUILT_IN_CHOICE_MODELS", "check_choice_model", "check_for_world"]

BUILT_IN_CHOICE_MODELS = (MultinomialLogitChoice, CascadeChoice)
"""The built-in models' classes: correct by construction (their parameters are checked when
made; the suite tests their oracles against brute force), so a world does not check an
instance of exactly these again (a subclass, which may override a method, it does)."""

_METHODS = ("slot_probabilities", "oracle", "oracle_value")
_TOLERANCE = 1e-5
"""Relative tolerance of the comparisons of two answers (float32 utilities: the built-in
logit's float32 exponential of a large batch differs from its float64 one of a small batch by
up to 2e-6, relative, at a no-click utility of 8)."""

_ABSOLUTE = 1e-9
"""Absolute tolerance of the same comparisons (probabilities near 0)."""


def check_for_world(config: WorldConfig, model: ChoiceModel | None = None) -> ChoiceModel:
    """``model`` (default: the one ``config.choice_model`` names, built from
    :data:`~driftrec.simulators.CHOICE_MODELS`), checked for a world of ``config`` unless it
    is a built-in one: where a world is resolved (an environment made) and where it is built."""
    if model is None:
        model = CHOICE_MODELS[config.choice_model](config)
    if type(model) not in BUILT_IN_CHOICE_MODELS:
        check_choice_model(
            model, config.num_candidates, slate_size=config.slate_size, reward=config.reward
        )
    return model


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
    2. ``slot_probabilities(u, shown)`` is (n, j), real, finite, each >= 0, each row's sum
       at most 1 (the rest is no click), and 0 at every slot not shown; asked with j = k,
       k - 1 and 1 slots (probes ask for one slot alone) and with ``shown=None`` (every slot
       shown: the same as all True).
    3. ``oracle(u, values)`` gives (n, k) integer positions in [-1, C-1] (-1: an empty slot),
       none shown twice in a row, and (n,) finite values >= 0, each the expected reward of
       its slate under ``slot_probabilities``; ``oracle_value`` gives the same values.
    4. An answer for a request does not depend on the other requests of its batch: each
       request alone (the single environment's batches of one; two of them) and the requests
       repeated into a batch of 64 (past the built-in models' small-batch paths) get the
       same answers.
    5. No method writes to the arrays it is given (probes pass views of their own).
    6. The oracle is the best slate: no full slate of distinct positions earns more, among
       ``random_slates`` random ones per request, the top k by utility, and every slate
       when there are at most 5,000 of them.

    Under ``reward="engagement"`` rules 3, 4 and 6 hold with each item's positive value
    (``values``); under ``"click"`` with ``values=None`` (every click is worth 1). The check
    runs on its own random utilities (a few times the usual spread of the world's): it is a
    sample, not a proof.

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
    checked = _Checked(model, name, f"check_choice_model(model, {c}, reward={reward!r})")

    everything = np.ones((n, k), dtype=bool)
    full = checked.probabilities(utilities[:, :k], everything)
    shown = rng.random((n, k)) < 0.7
    shown[:, 0] = True
    checked.probabilities(utilities[:, :k], shown)
    checked.same(
        "slot_probabilities() with shown=None differs from every slot shown",
        checked.probabilities(utilities[:, :k], None),
        full,
    )
    for j in sorted({1, k - 1} - {0}):  # fewer slots than k (probes: one alone)
        checked.probabilities(utilities[:, :j], None)

    slates, best = checked.oracle(utilities, values, k)
    expected = _expected(checked, utilities, values, slates)
    checked.same("oracle(): its values are not its slates' expected rewards", best, expected)
    checked.same(
        "oracle_value() differs from oracle()'s values",
        checked.oracle_value(utilities, values),
        best,
    )
    _batch_independent(checked, utilities, values, full, best, k)

    # Every rival slate of every request in one call: (m, n, k) laid out as m n requests.
    rivals = _rival_slates(utilities, k, random_slates, rng)
    m = len(rivals)
    tiled = np.tile(utilities, (m, 1))
    rival = _expected(
        checked,
        tiled,
        None if values is None else np.tile(values, (m, 1)),
        rivals.reshape(m * n, k),
    ).reshape(m, n)
    beaten = rival > best + _TOLERANCE * np.maximum(1.0, np.abs(best))
    if beaten.any():
        which, row = (int(i[0]) for i in np.nonzero(beaten))
        if np.array_equal(rivals[which, row], slates[row]):
            raise checked.fail(
                f"slot_probabilities() values the oracle's own slate {slates[row].tolist()} at "
                f"{rival[which, row]:.6g} in a batch of {m * n} requests and at {best[row]:.6g} "
                f"in a batch of {n}: an answer must not depend on the other requests"
            )
        raise checked.fail(
            f"oracle() is not the best slate: at request {row} the slate "
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


class _Checked:
    """The model's methods, each answer checked (rules 2, 3 and 5), every refusal one line
    ending with how to reproduce it (``reproduce``)."""

    def __init__(self, model: Any, name: str, reproduce: str) -> None:
        self.model, self.name, self.reproduce = model, name, reproduce

    def fail(self, message: str, error: type[Exception] = ValueError) -> Exception:
        return error(
            f"choice model {self.name}: {message} (on the check's own random utilities; "
            f"reproduce with driftrec.simulators.{self.reproduce})"
        )

    def same(self, rule: str, got: np.ndarray, want: np.ndarray) -> None:
        """Refuse unless ``got`` is ``want`` (rows of requests: (n,) or (n, j))."""
        wrong = ~np.isclose(got, want, rtol=_TOLERANCE, atol=_ABSOLUTE)
        if wrong.any():
            row = int(np.flatnonzero(wrong.reshape(len(wrong), -1).any(axis=1))[0])
            got_row, want_row = np.asarray(got[row]).tolist(), np.asarray(want[row]).tolist()
            raise self.fail(f"{rule} (request {row}: {got_row} and {want_row})")

    def call(self, method: str, *arrays: np.ndarray | None) -> Any:
        """``model.<method>(*arrays)``, refusing an exception or a write to the arrays."""
        before = [None if a is None else a.copy() for a in arrays]
        shapes = ", ".join("None" if a is None else str(a.shape) for a in arrays)
        try:
            answer = getattr(self.model, method)(*arrays)
        except Exception as error:
            raise self.fail(
                f"{method}() of inputs {shapes} raised {type(error).__name__}: {error}"
            ) from error
        for a, b in zip(arrays, before, strict=True):
            if a is not None and b is not None and not np.array_equal(a, b, equal_nan=True):
                raise self.fail(
                    f"{method}() wrote to an array it was given ({shapes}): a model must not "
                    "change its inputs (probes pass views of their own utilities)"
                )
        return answer

    def probabilities(self, slate_utilities: np.ndarray, shown: np.ndarray | None) -> np.ndarray:
        what = "slot_probabilities()"
        probs = np.asarray(self.call("slot_probabilities", slate_utilities, shown))
        if probs.shape != slate_utilities.shape:
            raise self.fail(
                f"{what} returned shape {probs.shape}, expected {slate_utilities.shape}"
            )
        if probs.dtype.kind not in "fiu":
            raise self.fail(f"{what} returned {probs.dtype} values, not real numbers", TypeError)
        probs = probs.astype(np.float64)
        problems = {
            "not finite": ~np.isfinite(probs).all(axis=1),
            "below 0": (probs < 0).any(axis=1),  # then a sum at most 1 holds each <= 1
            "summing to more than 1": row_sums(probs) > 1.0 + 1e-9,
        }
        if shown is not None:
            problems["not 0 at an empty slot"] = (np.where(shown, 0.0, probs) != 0).any(axis=1)
        for problem, rows in problems.items():
            if rows.any():
                row = int(np.flatnonzero(rows)[0])
                mask = "" if shown is None else f" (shown {shown[row].tolist()})"
                raise self.fail(
                    f"{what} returned probabilities {problem} at request {row}: "
                    f"{probs[row].tolist()}{mask}"
                )
        return probs

    def oracle_value(self, utilities: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        alone = np.asarray(self.call("oracle_value", utilities, values), dtype=np.float64)
        if alone.shape != (len(utilities),):
            raise self.fail(f"oracle_value() returned shape {alone.shape}")
        return alone

    def oracle(
        self, utilities: np.ndarray, values: np.ndarray | None, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n, c = utilities.shape
        answer = self.call("oracle", utilities, values)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise self.fail("oracle() must return (slates, values)", TypeError)
        slates, best = np.asarray(answer[0]), np.asarray(answer[1], dtype=np.float64)
        if slates.shape != (n, k) or slates.dtype.kind not in "iu":
            raise self.fail(
                f"oracle() returned slates of {slates.dtype} {slates.shape}, expected ({n}, "
                f"{k}) integer positions"
            )
        if best.shape != (n,) or not np.isfinite(best).all() or (best < 0).any():
            raise self.fail(
                f"oracle() returned values {best.tolist()}, expected ({n},) finite expected "
                "rewards >= 0"
            )
        if slates.size and (slates.min() < -1 or slates.max() >= c):
            raise self.fail(
                f"oracle() returned positions from {slates.min()} to {slates.max()}, expected "
                f"positions in [0, {c - 1}] or -1 for an empty slot"
            )
        # A position shown twice is one the environments' rule would empty (-1 never repeats).
        repeats = (empty_repeats(slates) != slates).any(axis=1)
        if repeats.any():
            row = int(np.flatnonzero(repeats)[0])
            raise self.fail(
                f"oracle() shows a position twice at request {row}: {slates[row].tolist()}"
            )
        return slates.astype(np.int64), best


BIG_BATCH = 64
"""Requests in the check's large batch: the built-in models' own large-batch path starts here."""

ALONE = 2
"""Requests of the check's batch asked alone too (a single environment's batches of one)."""


def _batch_independent(
    checked: _Checked,
    utilities: np.ndarray,
    values: np.ndarray | None,
    full: np.ndarray,
    best: np.ndarray,
    k: int,
) -> None:
    """Rule 4: each request alone, and the requests repeated into a batch of
    :data:`BIG_BATCH`, get the answers they got in the check's batch."""
    n = len(utilities)
    rule = "{} of request {} alone differs from its answer in a batch of {}: an answer must "
    rule += "not depend on the other requests (the single environment asks one at a time)"
    for r in range(min(n, ALONE)):
        one = utilities[r : r + 1]
        value = None if values is None else values[r : r + 1]
        shown = np.ones((1, k), dtype=bool)
        what = "slot_probabilities()"
        checked.same(
            rule.format(what, r, n), checked.probabilities(one[:, :k], shown), full[r : r + 1]
        )
        best_alone = checked.oracle(one, value, k)[1]
        checked.same(rule.format("oracle()", r, n), best_alone, best[r : r + 1])
        alone = checked.oracle_value(one, value)
        checked.same(rule.format("oracle_value()", r, n), alone, best[r : r + 1])
    reps = -(-BIG_BATCH // n)
    big = np.tile(utilities, (reps, 1))
    big_values = None if values is None else np.tile(values, (reps, 1))
    rule = f"{{}} in a batch of {len(big)} (the requests repeated) differs from its answers in "
    rule += f"a batch of {n}: an answer must not depend on the batch's size"
    everything = np.ones((len(big), k), dtype=bool)
    probs = checked.probabilities(big[:, :k], everything)
    checked.same(rule.format("slot_probabilities()"), probs, np.tile(full, (reps, 1)))
    checked.same(
        rule.format("oracle()"), checked.oracle(big, big_values, k)[1], np.tile(best, reps)
    )
    checked.same(
        rule.format("oracle_value()"), checked.oracle_value(big, big_values), np.tile(best, reps)
    )


def _expected(
    checked: _Checked,
    utilities: np.ndarray,
    values: np.ndarray | None,
    slates: np.ndarray,
) -> np.ndarray:
    """(n,) expected reward of ``slates`` (-1: empty) under the model."""
    at = np.maximum(slates, 0)
    probs = checked.probabilities(np.take_along_axis(utilities, at, axis=1), slates >= 0)
    if values is None:
        return row_sums(probs)
    return row_sums(probs * np.take_along_axis(values, at, axis=1))


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

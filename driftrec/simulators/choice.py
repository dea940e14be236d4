"""Choice models: how a user responds to a slate, in closed form, and the exact oracle slate.

A slate is given as candidate positions, shape (n, k), with ``-1`` for an empty slot. Item
utilities over the candidate set are ``utilities: (n, C)``; ``values: (n, C)`` is the reward an
item earns when clicked (``None`` means every click is worth 1, the click reward).

Both built-in models give, for any slate, the exact probability that each slot is clicked, so
expected rewards are computed in closed form rather than estimated; sampling draws one response
from the same probabilities. :data:`CHOICE_MODELS` names them, and users' own models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from driftrec.registry import Registry
from driftrec.simulators.requests import lean
from driftrec.validation import check_integer, check_real

if TYPE_CHECKING:
    from driftrec.simulators.config import WorldConfig

__all__ = [
    "CHOICE_MODELS",
    "CascadeChoice",
    "ChoiceModel",
    "MultinomialLogitChoice",
    "make_choice_model",
    "oracle_value",
    "position_bias_terms",
    "row_sums",
    "top_k_sorted",
]


EXP32_ROWS = 64
"""From this many requests on, float32 utilities take the float32 exponential (see
``MultinomialLogitChoice._weights``); fewer stay in float64, where NumPy's per-call cost, not
the exponential, is what counts."""

EXP32_MAX = 80.0
"""Logits (utility + position bias - no-click utility) from which the float32 exponential
would come near overflow (about 88.7): a batch with one takes float64 instead."""


class ChoiceModel(Protocol):
    """What the world needs from a choice model."""

    @property
    def slate_size(self) -> int:
        """Slots per slate (k)."""
        ...

    def slot_probabilities(
        self, slate_utilities: np.ndarray, shown: np.ndarray | None = None
    ) -> np.ndarray:
        """Click probability of each slot: of a slate's first j slots, any j from 1 to k
        (probes ask for one slot alone), for any number of requests n (one at a time in the
        single environment), each row's answer its own. It must not write to its inputs.

        Args:
            slate_utilities: (n, j) utility of the item in each slot (any value where empty).
            shown: (n, j) bool, False for an empty slot (None: every slot is shown).

        Returns:
            (n, j) float64; a row sums to P(click) <= 1, the rest is no click.
        """
        ...

    def oracle(
        self, utilities: np.ndarray, values: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best slate per request and its expected reward: ((n, k) positions, -1 empty; (n,))."""
        ...

    def oracle_value(self, utilities: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The oracle's expected reward alone, (n,): ``oracle(...)[1]``, possibly faster (the
        world asks for it on every request)."""
        ...


def position_bias_terms(slate_size: int, strength: float) -> np.ndarray:
    """Additive position bias b_j = -strength * log2(1 + j), j = 0..k-1 (a DCG-shaped decay)."""
    return -strength * np.log2(1.0 + np.arange(slate_size, dtype=np.float64))


def sample_slots(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the clicked slot per row from slot probabilities (n, k); -1 means no click."""
    if lean(len(probabilities)):
        # One row: the same single draw, the same running total and the same comparisons,
        # on Python floats.
        draw, running, chosen = rng.random(), 0.0, 0
        for p in probabilities[0].tolist():
            running += p
            chosen += draw >= running
        return np.array([chosen if chosen < probabilities.shape[1] else -1], dtype=np.int64)
    n, k = probabilities.shape
    u = rng.random((n,))
    # The clicked slot is the number of cumulative probabilities at or below u, counted slot
    # by slot: the running total adds one slot at a time, as cumsum does (the same sums), and
    # k whole-column operations cost less than reductions along rows of k.
    slot = np.zeros(n, dtype=np.int64)
    total = np.zeros(n)
    for j in range(k):
        total += probabilities[:, j]
        slot += u >= total
    clicked: np.ndarray = np.where(slot >= k, -1, slot)
    return clicked


def row_sums(values: np.ndarray) -> np.ndarray:
    """(n,) float64 sums of the rows of ``values`` (n, k), added slot by slot from the first.

    Every sum over a slate's slots goes through here, so that the order of the additions is
    fixed: k whole-column additions cost less than n reductions of rows of k, and one row is
    Python's ``sum`` of its values (the same additions in the same order, without k NumPy
    calls on arrays of one element).
    """
    n, k = values.shape
    if lean(n) and values.dtype == np.float64:
        return np.array([sum(values[0].tolist(), 0.0)])  # 0.0 + v0 + v1 ..., as below
    total = np.zeros(n)
    for j in range(k):
        total += values[:, j]
    return total


def expected_reward(probabilities: np.ndarray, slot_values: np.ndarray | None) -> np.ndarray:
    """Expected reward per row: sum over slots of P(click slot) * value of its item."""
    if slot_values is None:
        return row_sums(probabilities)
    return row_sums(probabilities * slot_values)


def top_k_sorted(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores per row, best first: (n, C) -> (n, k)."""
    n, c = scores.shape
    if k < c:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(c), (n, c)).copy()
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _top_k_values(scores: np.ndarray, k: int) -> np.ndarray:
    """The k largest scores per row, best first: (n, C) -> (n, k). A full sort of short rows
    is several times faster than argpartition here, and values are all the click oracle needs."""
    return np.sort(scores, axis=1)[:, : -k - 1 : -1]


def _first(rows: np.ndarray | None) -> np.ndarray | None:
    return None if rows is None else rows[0]


def _gather(values: np.ndarray | None, slate: np.ndarray) -> np.ndarray | None:
    if values is None:
        return None
    return np.take_along_axis(values, np.maximum(slate, 0), axis=1)


@dataclass(frozen=True)
class MultinomialLogitChoice:
    """Multinomial logit over the slate plus a no-click option, with additive position bias.

    P(click slot j) = exp(s_j + b_j) / (exp(s_0) + sum_l exp(s_l + b_l)), where s_j is the
    utility of the item in slot j, b_j the position bias and s_0 the no-click utility.

    Oracle. For clicks, P(click) is increasing in every exp(s_j + b_j), and by the rearrangement
    inequality the best pairing of utilities and positions is sorted with sorted; so the top-k
    candidates by utility, best in the best position, are optimal. For an item-dependent reward
    this is no longer so (the cardinality-constrained MNL assortment problem, Rusmevichientong,
    Shen & Shmoys 2010, here with position weights): the optimum lambda* solves
    max_slate sum_j c_j v_j (r_j - lambda) = lambda * w_0 with c_j = exp(b_j), v_j = exp(s_j),
    and for fixed lambda the inner maximum is again a sort (items with positive v (r - lambda),
    best first). Dinkelbach's method (1967) iterates lambda <- reward(best slate for lambda); it
    increases strictly and stops at the exact optimum after finitely many steps.
    """

    slate_size: int
    no_click_utility: float
    position_bias: np.ndarray
    """(k,) additive bias per slot, non-increasing."""
    _shift: np.ndarray = field(init=False, repr=False, compare=False)
    """(k,) float64 ``position_bias - no_click_utility``: what a slot adds to its utility."""
    _shift32: np.ndarray = field(init=False, repr=False, compare=False)
    """``_shift`` in float32, for the float32 exponential."""

    def __post_init__(self) -> None:
        k = check_integer("slate_size", self.slate_size, minimum=1)
        s0 = check_real("no_click_utility", self.no_click_utility)
        bias = np.asarray(self.position_bias, dtype=np.float64)
        # The oracle pairs sorted utilities with sorted slots: it is exact for a bias that
        # never rises from one slot to the next.
        if bias.shape != (k,) or not np.isfinite(bias).all() or (np.diff(bias) > 0).any():
            raise ValueError(
                f"position_bias must be {k} finite values (one per slot), non-increasing, got "
                f"{bias.tolist()}"
            )
        object.__setattr__(self, "slate_size", k)
        object.__setattr__(self, "no_click_utility", s0)
        object.__setattr__(self, "position_bias", bias)
        shift = bias - s0
        object.__setattr__(self, "_shift", shift)
        object.__setattr__(self, "_shift32", shift.astype(np.float32))

    def _weights(self, slate_utilities: np.ndarray) -> np.ndarray:
        """(n, k) float64 exp(s_j + b_j - s_0). Float32 utilities of a large batch take the
        exponential in float32 (NumPy's vectorised float32 exp is several times faster than
        float64's; its error of a few 1e-7, relative, is that of the float32 utilities
        themselves), unless a logit reaches :data:`EXP32_MAX`; anything else is float64."""
        k = slate_utilities.shape[1]
        if slate_utilities.dtype == np.float32 and len(slate_utilities) >= EXP32_ROWS:
            logits = np.add(slate_utilities, self._shift32[:k])
            if logits.max() < EXP32_MAX:
                np.exp(logits, out=logits)
                return logits.astype(np.float64)
        # Widening inside the add is the same as astype(float64) first, one pass fewer.
        weights = np.add(slate_utilities, self._shift[:k], dtype=np.float64)
        np.exp(weights, out=weights)
        return weights

    def slot_probabilities(
        self, slate_utilities: np.ndarray, shown: np.ndarray | None = None
    ) -> np.ndarray:
        if lean(len(slate_utilities)):
            return np.array([self._row_probabilities(slate_utilities[0], _first(shown))])
        # The rest runs in place on the one (n, k) array of weights.
        weights = self._weights(slate_utilities)
        if shown is not None:
            np.copyto(weights, 0.0, where=~shown)
        total = row_sums(weights)
        total += 1.0
        weights /= total[:, None]
        return weights

    def _row_probabilities(self, slate_utilities: np.ndarray, shown: np.ndarray | None) -> list:
        """``slot_probabilities`` of one row (k,) as Python floats: the same float64
        exponentials, then the same zeroing, sum (slot by slot, as :func:`row_sums`), ``+ 1``
        and divisions on Python floats instead of NumPy calls on arrays of one row (the same
        numbers, to the bit)."""
        shift = self._shift[: len(slate_utilities)]
        weights = np.exp(np.add(slate_utilities, shift, dtype=np.float64)).tolist()
        if shown is not None:
            weights = [w if s else 0.0 for w, s in zip(weights, shown.tolist(), strict=True)]
        total = sum(weights) + 1.0
        return [w / total for w in weights]

    def oracle_value(self, utilities: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The oracle's expected reward alone (see :func:`oracle_value`)."""
        if values is None and lean(len(utilities)):
            # One row: the same sorted values, probabilities and sum, on Python floats.
            top = _top_k_values(utilities, self.slate_size)[0]
            return np.array([sum(self._row_probabilities(top, None))])
        return oracle_value(self, utilities, values)

    def oracle(
        self, utilities: np.ndarray, values: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        k = self.slate_size
        if values is None:
            slate = top_k_sorted(utilities, k)
            probs = self.slot_probabilities(np.take_along_axis(utilities, slate, axis=1))
            return slate, row_sums(probs)
        v = np.exp(utilities.astype(np.float64) - self.no_click_utility)
        c = np.exp(self.position_bias)
        r = values.astype(np.float64)
        lam = np.zeros(utilities.shape[0])
        for _ in range(10 * utilities.shape[1] + 10):
            a = v * (r - lam[:, None])
            slate = top_k_sorted(a, k)
            keep = np.take_along_axis(a, slate, axis=1) > 0
            weight = np.take_along_axis(v, slate, axis=1) * c * keep
            new = (weight * np.take_along_axis(r, slate, axis=1)).sum(axis=1) / (
                1.0 + weight.sum(axis=1)
            )
            improved = new > lam * (1 + 1e-12) + 1e-300
            lam = np.maximum(lam, new)
            if not improved.any():
                break
        return np.where(keep, slate, -1), lam


@dataclass(frozen=True)
class CascadeChoice:
    """Cascade model (Craswell et al. 2008): the user scans the slate top-down and clicks slot j
    with attraction a_j = sigmoid(s_j - s_0) if reached; a click ends the scan.

    P(click slot j) = a_j * prod_{l<j} (1 - a_l). The cascade itself is the position effect, so
    no additive bias applies.

    Oracle. For clicks, P(click) = 1 - prod (1 - a_j) depends only on the set: the top-k by
    utility. For an item-dependent reward r, an exchange argument shows that, for a fixed set,
    the best order is by r descending (swap i before j iff r_i >= r_j); choosing the set is then
    an exact dynamic programme over candidates in that order with at most k picks.
    """

    slate_size: int
    no_click_utility: float

    def __post_init__(self) -> None:
        k = check_integer("slate_size", self.slate_size, minimum=1)
        object.__setattr__(self, "slate_size", k)
        s0 = check_real("no_click_utility", self.no_click_utility)
        object.__setattr__(self, "no_click_utility", s0)

    def attraction(self, utilities: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(self.no_click_utility - utilities.astype(np.float64)))

    def slot_probabilities(
        self, slate_utilities: np.ndarray, shown: np.ndarray | None = None
    ) -> np.ndarray:
        a = self.attraction(slate_utilities)
        if shown is not None:
            a = np.where(shown, a, 0.0)
        survive = np.cumprod(1.0 - a, axis=1)
        reach = np.concatenate([np.ones((a.shape[0], 1)), survive[:, :-1]], axis=1)
        return a * reach

    def oracle_value(self, utilities: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The oracle's expected reward alone (see :func:`oracle_value`)."""
        return oracle_value(self, utilities, values)

    def oracle(
        self, utilities: np.ndarray, values: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        k = self.slate_size
        if values is None:
            slate = top_k_sorted(utilities, k)
        else:
            slate = self._engagement_oracle(utilities, values.astype(np.float64))
        shown = slate >= 0
        probs = self.slot_probabilities(
            np.take_along_axis(utilities, np.maximum(slate, 0), axis=1), shown
        )
        return slate, expected_reward(probs, _gather(values, slate))

    def _engagement_oracle(self, utilities: np.ndarray, values: np.ndarray) -> np.ndarray:
        n, c = utilities.shape
        k = self.slate_size
        order = np.argsort(-values, axis=1, kind="stable")
        a = np.take_along_axis(self.attraction(utilities), order, axis=1)
        r = np.take_along_axis(values, order, axis=1)
        # best[:, m] = best expected reward from the remaining candidates with at most m slots.
        best = np.zeros((n, k + 1))
        take = np.zeros((c, n, k + 1), dtype=bool)
        for i in range(c - 1, -1, -1):
            with_i = a[:, i : i + 1] * r[:, i : i + 1] + (1.0 - a[:, i : i + 1]) * best[:, :-1]
            take[i, :, 1:] = with_i > best[:, 1:]
            best[:, 1:] = np.maximum(best[:, 1:], with_i)
        slate = np.full((n, k), -1, dtype=np.int64)
        left = np.full(n, k)
        filled = np.zeros(n, dtype=np.int64)
        rows = np.arange(n)
        for i in range(c):
            chosen = take[i, rows, left] & (left > 0)
            slate[rows[chosen], filled[chosen]] = order[chosen, i]
            filled += chosen
            left -= chosen
        return slate


def oracle_value(
    model: ChoiceModel, utilities: np.ndarray, values: np.ndarray | None
) -> np.ndarray:
    """The oracle's expected reward alone, (n,): the same number as ``model.oracle(...)[1]``.

    For clicks, both models' oracle is the top-k by utility, best first, so sorting the values
    is enough (no positions needed); for an item-dependent reward it is the full oracle.
    """
    if values is not None:
        return model.oracle(utilities, values)[1]
    top = _top_k_values(utilities, model.slate_size)
    return row_sums(model.slot_probabilities(top))


def make_choice_model(
    kind: str, slate_size: int, no_click_utility: float, position_bias: float
) -> MultinomialLogitChoice | CascadeChoice:
    """The built-in choice model named ``kind`` ('mnl' or 'cascade'), from its parameters
    (a world builds its model from ``CHOICE_MODELS``, which holds these two and users' own)."""
    if kind == "mnl":
        return MultinomialLogitChoice(
            slate_size, no_click_utility, position_bias_terms(slate_size, position_bias)
        )
    if kind == "cascade":
        return CascadeChoice(slate_size, no_click_utility)
    raise ValueError(f"unknown choice model {kind!r}; valid ones are ['cascade', 'mnl']")


CHOICE_MODELS: Registry[ChoiceModel] = Registry("choice model", skip=1)
"""Choice models by name, as ``WorldConfig.choice_model`` names them: a builder takes the
world's :class:`~driftrec.simulators.WorldConfig` and returns a :class:`ChoiceModel` with its
``slate_size``. Register your own with ``@CHOICE_MODELS.register()``: from then on it is a
value of ``choice_model`` for worlds, environments and experiment specs (through their
``imports``). The world checks a model that is not a built-in one when it is built
(:func:`~driftrec.simulators.check_choice_model`)."""


def _built_in(kind: str, config: WorldConfig) -> ChoiceModel:
    return make_choice_model(kind, config.slate_size, config.no_click_utility, config.position_bias)


@CHOICE_MODELS.register("mnl")
def _mnl(config: WorldConfig) -> ChoiceModel:
    """Multinomial logit over the slate plus no-click, with additive position bias."""
    return _built_in("mnl", config)


@CHOICE_MODELS.register("cascade")
def _cascade(config: WorldConfig) -> ChoiceModel:
    """Cascade: a top-down scan, each slot clicked with its attraction if reached."""
    return _built_in("cascade", config)

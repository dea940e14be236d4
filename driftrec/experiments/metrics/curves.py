"""Per-request curves over the world clock, and the streaming recorder that builds them.

A :class:`Curve` is piecewise constant per request: every request in a bin carries the bin's
mean. Any window ``[a, b)`` on integer clocks is then measured exactly, bins it cuts through
counting by their overlap, through the cumulative integral ``F(t) = sum of the quantity over
the requests [edges[0], t)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftrec.validation import check_integer

__all__ = ["QUANTITIES", "Curve", "CurveRecorder"]

QUANTITIES = ("normalised", "expected", "oracle", "regret", "clicks")
"""The curves a :class:`CurveRecorder` returns, in this order."""


def _clock_array(name: str, value: Any) -> np.ndarray:
    """Integer clocks as int64 (any integral dtype; floats are refused, even integral ones)."""
    array = np.asarray(value)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer clocks, got dtype {array.dtype}")
    return array.astype(np.int64)


def _finite_vector(name: str, value: Any, length: int | None = None) -> np.ndarray:
    """A 1-d array of finite reals as float64, optionally of a given length."""
    array = np.asarray(value)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} must have length {length}, got {len(array)}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][:3]} ...")
    return array


@dataclass(frozen=True, eq=False)
class Curve:
    """A piecewise-constant per-request curve over the world clock.

    ``values[i]`` is the mean of a per-request quantity over the requests at clocks
    ``[edges[i], edges[i + 1])``; within a bin every request counts as that mean.

    Attributes:
        edges: (n + 1,) int64, strictly increasing bin edges (clocks), n >= 1.
        values: (n,) float64, finite bin means.

    Both arrays are stored as read-only copies. Two curves are equal when their edges and
    values are.

    Example:
        >>> curve = Curve(edges=[0, 10, 20, 40], values=[1.0, 0.5, 0.25])
        >>> curve.mean(5, 25)  # (5 * 1.0 + 10 * 0.5 + 5 * 0.25) / 20
        0.5625
        >>> curve.window_means(np.array([10, 25, 40]), width=10)
        array([1.   , 0.375, 0.25 ])
    """

    edges: np.ndarray
    values: np.ndarray
    _cumulative: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        edges = _clock_array("edges", self.edges)
        if edges.ndim != 1 or len(edges) < 2:
            raise ValueError(f"edges must be 1-d with at least 2 clocks, got shape {edges.shape}")
        if not (np.diff(edges) > 0).all():
            raise ValueError(f"edges must be strictly increasing, got {edges.tolist()[:8]} ...")
        values = _finite_vector("values", self.values, len(edges) - 1)
        cumulative = np.concatenate([[0.0], np.cumsum(values * np.diff(edges))])
        for name, array in (("edges", edges), ("values", values), ("_cumulative", cumulative)):
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Curve):
            return NotImplemented
        return bool(
            np.array_equal(self.edges, other.edges) and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]  # equality is by value, and arrays are mutable

    def __reduce__(self) -> tuple[type[Curve], tuple[np.ndarray, np.ndarray]]:
        # Rebuilt through __init__, so an unpickled curve is checked and read-only again.
        return (Curve, (self.edges, self.values))

    @property
    def start(self) -> int:
        """The first clock the curve covers (``edges[0]``)."""
        return int(self.edges[0])

    @property
    def end(self) -> int:
        """The clock after the last request the curve covers (``edges[-1]``)."""
        return int(self.edges[-1])

    @property
    def widths(self) -> np.ndarray:
        """(n,) int64 requests per bin."""
        return np.diff(self.edges)

    def integral(self, t: np.ndarray) -> np.ndarray:
        """``F(t)``: the sum of the quantity over requests ``[start, t)``, for clocks ``t`` (any
        shape) inside ``[start, end]``; exact within a bin (linear interpolation of the
        cumulative sum at the edges)."""
        t = _clock_array("t", t)
        self._check_inside(t.min(initial=self.start), t.max(initial=self.start))
        i = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.values) - 1)
        return self._cumulative[i] + self.values[i] * (t - self.edges[i])

    def total(self, start: int, end: int) -> float:
        """The sum of the quantity over requests ``[start, end)`` (the mean times the count);
        0.0 for an empty window (``start == end``).

        Raises:
            ValueError: ``start > end``, or the window reaches outside ``[self.start,
                self.end]``.
        """
        start, end = check_integer("start", start), check_integer("end", end)
        if start > end:
            raise ValueError(f"window [{start}, {end}) ends before it starts")
        low, high = self.integral(np.array([start, end]))
        return float(high - low)

    def mean(self, start: int, end: int) -> float:
        """The request-weighted mean over ``[start, end)``: bins cut by the window weigh by
        their overlap with it.

        Raises:
            ValueError: the window is empty or reaches outside ``[self.start, self.end]``.
        """
        start, end = check_integer("start", start), check_integer("end", end)
        if end <= start:
            raise ValueError(f"the mean over [{start}, {end}) needs a non-empty window")
        return self.total(start, end) / (end - start)

    def window_means(self, ends: np.ndarray, width: int) -> np.ndarray:
        """The mean over ``[t - width, t)`` for every clock ``t`` in ``ends`` (any shape; the
        result has the same shape), as ``(F(t) - F(t - width)) / width``: no loop over ``ends``.

        Raises:
            ValueError: ``width < 1`` or a window reaches outside ``[self.start, self.end]``.
        """
        width = check_integer("width", width, minimum=1)
        ends = _clock_array("ends", ends)
        if ends.size == 0:
            return np.zeros(ends.shape)
        return (self.integral(ends) - self.integral(ends - width)) / width

    def _check_inside(self, low: int, high: int) -> None:
        if low < self.start or high > self.end:
            raise ValueError(
                f"clocks [{low}, {high}] reach outside the curve, which covers requests "
                f"[{self.start}, {self.end})"
            )


class CurveRecorder:
    """A streaming metric (Avalanche's ``update`` / ``result`` / ``reset``) that turns batched
    steps into per-request curves binned by the world clock.

    Requests are assigned to bins ``[clock0 + i * resolution, clock0 + (i + 1) * resolution)``
    where ``clock0`` is the clock of the first update after construction or :meth:`reset`;
    the last bin keeps its true width if it is not full.

    Per request, with ``e`` the expected reward of the served slate, ``o`` the oracle's
    expected reward and ``c`` the observed reward: ``normalised = e / o`` (1 when ``o == 0``:
    every slate is then optimal), ``expected = e``, ``oracle = o``, ``regret = o - e``,
    ``clicks = c``. Each curve's bin value is the mean over the bin's requests.

    Args:
        resolution: bin width in requests (>= 1).

    Example:
        >>> recorder = CurveRecorder(resolution=2)
        >>> recorder.update(0, np.array([0.2, 0.4, 0.3]), np.array([0.4, 0.4, 0.6]), np.ones(3))
        >>> curve = recorder.result()["normalised"]
        >>> curve.edges.tolist(), curve.values.tolist()  # (0.5 + 1.0) / 2, then 0.5 alone
        ([0, 2, 3], [0.75, 0.5])
    """

    def __init__(self, resolution: int) -> None:
        self.resolution = check_integer("resolution", resolution, minimum=1)
        self.reset()

    def __repr__(self) -> str:
        return f"CurveRecorder(resolution={self.resolution})"

    def reset(self) -> None:
        """Forget everything recorded; the next update's clock becomes ``clock0``."""
        self._clock0: int | None = None
        self._next_clock: int | None = None
        self._bins = 0
        self._sums = np.zeros((len(QUANTITIES), 0))
        self._counts = np.zeros(0, dtype=np.int64)

    def update(
        self, clock: int, expected: np.ndarray, oracle: np.ndarray, clicks: np.ndarray
    ) -> None:
        """Record one batched step: ``B`` requests served at clocks ``clock .. clock + B - 1``.

        Args:
            clock: the clock of the step's first request; must equal the previous update's
                ``clock + B`` (steps are contiguous).
            expected: (B,) expected reward of each served slate.
            oracle: (B,) the oracle slate's expected reward.
            clicks: (B,) the observed reward.

        Raises:
            ValueError: a gap or overlap with the previous update, arrays of different lengths
                or not 1-d, non-finite values. Nothing is recorded then.
        """
        clock = check_integer("clock", clock)
        expected = _finite_vector("expected", expected)
        oracle = _finite_vector("oracle", oracle, len(expected))
        clicks = _finite_vector("clicks", clicks, len(expected))
        if self._next_clock is not None and clock != self._next_clock:
            raise ValueError(
                f"update at clock {clock}, but the previous update ended at clock "
                f"{self._next_clock}: steps must be contiguous (call reset() to start over)"
            )
        if self._clock0 is None:
            self._clock0 = clock
        self._next_clock = clock + len(expected)
        if len(expected) == 0:
            return
        offset = clock - self._clock0
        first = offset // self.resolution
        local = (offset + np.arange(len(expected))) // self.resolution - first
        width = int(local[-1]) + 1
        self._grow(first + width)
        normalised = np.divide(expected, oracle, out=np.ones_like(expected), where=oracle != 0)
        per_request = (normalised, expected, oracle, oracle - expected, clicks)
        for row, quantity in enumerate(per_request):
            self._sums[row, first : first + width] += np.bincount(
                local, weights=quantity, minlength=width
            )
        self._counts[first : first + width] += np.bincount(local, minlength=width)
        self._bins = max(self._bins, first + width)

    def result(self) -> dict[str, Curve]:
        """The curves so far, keyed by :data:`QUANTITIES`, all on the same edges.

        Raises:
            ValueError: nothing has been recorded yet.
        """
        if self._clock0 is None or self._next_clock == self._clock0:
            raise ValueError("CurveRecorder.result() called before any request was recorded")
        assert self._next_clock is not None
        edges = self._clock0 + self.resolution * np.arange(self._bins + 1)
        edges[-1] = self._next_clock
        means = self._sums[:, : self._bins] / self._counts[: self._bins]
        return {name: Curve(edges, means[row]) for row, name in enumerate(QUANTITIES)}

    def _grow(self, bins: int) -> None:
        capacity = len(self._counts)
        if bins <= capacity:
            return
        extra = max(bins, 2 * capacity) - capacity
        self._sums = np.pad(self._sums, ((0, 0), (0, extra)))
        self._counts = np.pad(self._counts, (0, extra))

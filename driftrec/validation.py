"""Checks for configuration values, used wherever a value enters (world settings, drift
processes, scenario parameters, agents): each names the field, says what was expected, and
returns the value normalised to a plain Python type.

Integral values may be any integral type (``int``, ``numpy.int64``, ...), so that parameter
sweeps built from NumPy grids work; real values may be any real type and must be finite unless
infinity is explicitly allowed. ``bool`` is never a number here (``True`` as a size is a bug).
Strings are never numbers (``"0.5"`` fails with a message that says so).
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "MAX_LR",
    "MAX_SIZE",
    "MAX_TIME",
    "MAX_WEIGHT",
    "MAX_WIDTH",
    "build_failure",
    "check_choice",
    "check_flag",
    "check_fraction",
    "check_integer",
    "check_integer_tuple",
    "check_names",
    "check_optional_integer",
    "check_real",
    "check_real_tuple",
    "check_time",
    "machine_memory",
    "one_line",
]

MAX_TIME = 10**15
"""The latest clock a world reaches or a parameter names (a thousand million million requests,
31 years at a million per second): far beyond any run, and small enough that sums of times stay
exact in int64 and float64 alike."""

MAX_SIZE = 10**8
"""The most examples, requests or rows a buffer, window or id table may be configured to hold:
a hundred million, beyond any in-memory run (a replay buffer of that many slates is tens of
GiB). Larger is a typo that would otherwise fail in the allocator, mid-run, without a name."""

MAX_WIDTH = 4096
"""The widest embedding, layer or layer count a model may be configured with."""

MAX_LR = 10.0
"""The largest learning rate: a step of 10 already moves a parameter further than any useful
update; beyond it float32 steps overflow to inf and the model turns NaN."""

MAX_WEIGHT = 1e6
"""The largest weight of a loss term (EWC's or distillation's strength, an entropy bonus):
a million times the click loss; beyond it the term's float32 value and gradients overflow."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a Python ``bool``: ``True`` / ``False`` (NumPy's included), nothing else
    (``1`` or ``"yes"`` as a switch is a bug).

    Example:
        >>> check_flag("use_ids", 1)
        Traceback (most recent call last):
        ...
        TypeError: use_ids must be True or False, got 1 (int)
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_optional_integer(
    name: str, value: Any, *, minimum: int, maximum: int | None = None
) -> int | None:
    """None, or an integer in ``[minimum, maximum]`` (see :func:`check_integer`), as a Python
    value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be None or an integer >= {minimum}, got {_describe(value)}")
    return check_integer(name, value, minimum=minimum, maximum=maximum)


def check_names(
    name: str, value: Any, valid: Iterable[str], *, allow_empty: bool = False
) -> tuple[str, ...]:
    """Names as a tuple of strings, each one of ``valid``. A single string is one name
    (``"embeddings"`` means ``("embeddings",)``, not its letters).

    Example:
        >>> check_names("scope", "embeddings", ("all", "embeddings"))
        ('embeddings',)
        >>> check_names("scope", ("weights",), ("all", "embeddings"))
        Traceback (most recent call last):
        ...
        ValueError: unknown scope ['weights']; valid scope values are ('all', 'embeddings')
    """
    valid = tuple(valid)
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a name or a sequence of names from {valid}, got {_describe(value)}"
        )
    names = tuple(value)
    not_strings = [v for v in names if not isinstance(v, str)]
    if not_strings:
        raise TypeError(f"{name} must hold names (strings) from {valid}, got {not_strings}")
    unknown = [v for v in names if v not in valid]
    if unknown:
        raise ValueError(f"unknown {name} {unknown}; valid {name} values are {valid}")
    if not names and not allow_empty:
        raise ValueError(f"{name} must name at least one of {valid}, got {value!r}")
    return names


def check_integer(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as a Python ``int``: any integral type (NumPy's included), not ``bool``, within
    ``[minimum, maximum]``.

    Raises:
        TypeError: not an integer; ValueError: out of range.

    Example:
        >>> import numpy as np
        >>> check_integer("num_users", np.int64(500), minimum=1)
        500
        >>> check_integer("num_users", 2.5, minimum=1)
        Traceback (most recent call last):
        ...
        TypeError: num_users must be an integer, got 2.5 (float)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_time(name: str, value: Any, *, minimum: int = 1) -> int:
    """A clock or a duration in requests: an integer in ``[minimum, MAX_TIME]``.

    Example:
        >>> check_time("start", 10**30)
        Traceback (most recent call last):
        ...
        ValueError: start is a time in requests and must be at most 10**15, got 1e+30
    """
    value = check_integer(name, value, minimum=minimum)
    if value > MAX_TIME:
        # Exact while it is short enough to read (1e+15 would read as the bound itself).
        shown = f"{value:,}" if value < 10**18 else f"{float(value):.3g}"
        raise ValueError(f"{name} is a time in requests and must be at most 10**15, got {shown}")
    return value


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a Python ``float``: any real type, not ``bool``, not NaN, finite unless
    ``allow_inf``, within the interval given by ``low`` / ``high`` (closed unless ``low_open`` /
    ``high_open``).

    Raises:
        TypeError: not a real number; ValueError: NaN, infinite or out of range.

    Example:
        >>> check_real("similarity", "0.5", low=-1, high=1)
        Traceback (most recent call last):
        ...
        TypeError: similarity must be a real number, got '0.5' (str)
        >>> check_real("affinity_scale", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: affinity_scale must be finite, got nan
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = (
            ("(" if low_open or low is None else "[")
            + f"{left}, {right}"
            + (")" if high_open or high is None else "]")
        )
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_fraction(
    name: str, value: Any, *, closed_below: bool = False, open_above: bool = False
) -> float:
    """A real in (0, 1]; ``closed_below`` admits 0, ``open_above`` excludes 1."""
    return check_real(
        name, value, low=0.0, high=1.0, low_open=not closed_below, high_open=open_above
    )


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (strings), else an error listing them (and the
    closest, for a misspelt one).

    Example:
        >>> check_choice("kind", "mnll", ("mnl", "cascade"))
        Traceback (most recent call last):
        ...
        ValueError: kind must be one of ['mnl', 'cascade'], got 'mnll' (did you mean 'mnl'?)
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {list(choices)}, got {value!r}{did_you_mean(value, choices)}"
        )
    return value


def did_you_mean(value: Any, names: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the name closest to a misspelt ``value``, or ``""``.

    Example:
        >>> did_you_mean("onlne", ["online", "random"])
        " (did you mean 'online'?)"
    """
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sequence(name: str, value: Any, what: str) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of {what}, got {_describe(value)}")
    try:
        return tuple(value)
    except TypeError as error:  # e.g. a 0-d array
        raise TypeError(f"{name} must be a sequence of {what}, got {_describe(value)}") from error


def check_integer_tuple(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    length: int | None = None,
    nonempty: bool = True,
    distinct: bool = False,
) -> tuple[int, ...]:
    """A sequence of integers (a tuple, list or 1-d array) as a tuple of Python ints, each
    within ``[minimum, maximum]``; a bare integer is refused (``cohorts=3`` is ambiguous)."""
    items = _sequence(name, value, "integers")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} needs {length} values, got {len(items)}: {list(items)}")
    if nonempty and not items:
        raise ValueError(f"{name} must not be empty")
    out = tuple(
        check_integer(f"{name}[{i}]", v, minimum=minimum, maximum=maximum)
        for i, v in enumerate(items)
    )
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {list(out)}")
    return out


def check_real_tuple(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    length: int | None = None,
) -> tuple[float, ...]:
    """A sequence of finite reals as a tuple of Python floats, each within ``[low, high]``."""
    items = _sequence(name, value, "real numbers")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} needs {length} values, got {len(items)}: {list(items)}")
    return tuple(check_real(f"{name}[{i}]", v, low=low, high=high) for i, v in enumerate(items))


def machine_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the platform does not say: what
    checks of a world's or an experiment's memory compare against."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not available on this platform
        return None


def one_line(text: object) -> str:
    r"""``str(text)``'s non-empty lines, stripped, joined by ``"; "`` (the first by a space
    when it is a heading, ending in ``":"``): an error on one line.

    Example:
        >>> one_line("bad spec:\n  horizon: too large\n  seeds: empty")
        'bad spec: horizon: too large; seeds: empty'
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # the heading, then its items
        return lines[0] + " " + "; ".join(lines[1:])
    return "; ".join(lines)


def build_failure(where: str, error: Exception, memory_advice: str) -> str:
    """One line saying why building ``where`` (a spec's scenario, agent, ...) failed: a
    TypeError's or ValueError's own message (the checks' refusals), a MemoryError with
    ``memory_advice`` (what to lower), anything else by its type (a user's plugin failing its
    own way).

    Example:
        >>> build_failure("agents.0 (mine)", KeyError("x"), "lower its sizes")
        "agents.0 (mine): building it raised KeyError: 'x'"
    """
    if isinstance(error, (TypeError, ValueError)):
        return f"{where}: {error}"
    if isinstance(error, MemoryError):
        return f"{where}: it does not fit in memory ({error}); {memory_advice}"
    return f"{where}: building it raised {type(error).__name__}: {error}"

"""Checks of agent configuration values, on top of the shared ones in
``driftrec.simulators.validation`` (integers, reals, fractions, choices): flags, optional sizes
and parameter-group names. Each names the field, says what was expected, and returns the value
as a plain Python value (a tuple of names for a group list).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from driftrec.simulators.validation import check_integer

__all__ = ["check_flag", "check_group_names", "check_optional_integer"]


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
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_optional_integer(name: str, value: Any, *, minimum: int) -> int | None:
    """None, or an integer >= ``minimum`` (see ``check_integer``), as a Python value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be None or an integer >= {minimum}, got {value!r} "
            f"({type(value).__name__})"
        )
    return check_integer(name, value, minimum=minimum)


def check_group_names(
    name: str, value: Any, valid: Iterable[str], *, allow_empty: bool = False
) -> tuple[str, ...]:
    """Parameter-group names as a tuple of strings, each one of ``valid``. A single string is
    one name (``"embeddings"`` means ``("embeddings",)``, not its letters).

    Example:
        >>> check_group_names("scope", "embeddings", ("all", "embeddings"))
        ('embeddings',)
        >>> check_group_names("scope", ("weights",), ("all", "embeddings"))
        Traceback (most recent call last):
        ...
        ValueError: unknown scope ['weights']; valid scope values are ('all', 'embeddings')
    """
    valid = tuple(valid)
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a group name or a sequence of them (from {valid}), got {value!r} "
            f"({type(value).__name__})"
        )
    names = tuple(value)
    not_strings = [v for v in names if not isinstance(v, str)]
    if not_strings:
        raise TypeError(f"{name} must hold group names (strings) from {valid}, got {not_strings}")
    unknown = [v for v in names if v not in valid]
    if unknown:
        raise ValueError(f"unknown {name} {unknown}; valid {name} values are {valid}")
    if not names and not allow_empty:
        raise ValueError(f"{name} must name at least one group of {valid}, got {value!r}")
    return names

"""How newly trained parameters combine with the ones they replace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from driftrec.validation import check_fraction, check_integer

__all__ = ["Ensemble", "Merge", "MovingAverage", "Replace"]


class Merge(Protocol):
    """Combines the parameters before an update (``old``) with those after it (``new``).

    Attributes:
        members: how many models serve together (1: just the current one); with more, the
            trainer keeps the ``members - 1`` most recent post-update snapshots and the agent
            ranks by the mean of their scores.
    """

    members: int

    def merge(self, old: dict[str, Tensor], new: dict[str, Tensor]) -> dict[str, Tensor]:
        """The parameters to keep, by name (a pure function)."""
        ...


def _one_member(merge: Any) -> None:
    if check_integer("members", merge.members, minimum=1) != 1:
        raise ValueError(
            f"{type(merge).__name__} serves one model: members must be 1, got {merge.members} "
            "(use Ensemble(size) to serve several)"
        )
    object.__setattr__(merge, "members", 1)


@dataclass(frozen=True)
class Replace:
    """Keep the newly trained parameters."""

    members: int = 1

    def __post_init__(self) -> None:
        _one_member(self)

    def merge(self, old, new):
        return new


@dataclass(frozen=True)
class MovingAverage:
    """``weight * new + (1 - weight) * old``: integrate the update into the old model (Polyak
    averaging, Polyak & Juditsky 1992, applied once per update)."""

    weight: float = 0.5
    members: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_fraction("weight", self.weight))
        _one_member(self)

    def merge(self, old, new):
        w = self.weight
        return {name: w * new[name] + (1.0 - w) * old[name] for name in new}


@dataclass(frozen=True)
class Ensemble:
    """Keep the new parameters, and serve the mean score of the current model and the
    ``size - 1`` previous post-update snapshots (a temporal ensemble)."""

    size: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_integer("size", self.size, minimum=1))

    @property
    def members(self) -> int:
        return self.size

    def merge(self, old, new):
        return new

"""How newly trained parameters combine with the ones they replace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from torch import Tensor

from driftrec.validation import check_fraction, check_integer

__all__ = ["Ensemble", "Merge", "MovingAverage", "Replace"]

Parameters = dict[str, Tensor]
"""Parameters of an update's scope, by name."""


class Merge(Protocol):
    """Combines the parameters before an update (``old``) with those after it (``new``). It
    declares what it needs from the trainer; the trainer reads these declarations, never the
    merge's type."""

    @property
    def members(self) -> int:
        """How many models serve together (1: just the current one); with more, the trainer
        keeps the ``members - 1`` most recent post-update snapshots and the agent ranks by the
        mean of their scores."""
        ...

    @property
    def needs_previous(self) -> bool:
        """Whether :meth:`merge` needs the parameters from before the update: the trainer then
        copies them before training and calls :meth:`merge` after it; otherwise the trained
        parameters are kept as they are (``merge`` is not called)."""
        ...

    def merge(self, old: Parameters, new: Parameters) -> Parameters:
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
    needs_previous: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _one_member(self)

    def merge(self, old: Parameters, new: Parameters) -> Parameters:
        return new


@dataclass(frozen=True)
class MovingAverage:
    """``weight * new + (1 - weight) * old``: integrate the update into the old model (Polyak
    averaging, Polyak & Juditsky 1992, applied once per update)."""

    weight: float = 0.5
    members: int = 1
    needs_previous: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_fraction("weight", self.weight))
        _one_member(self)

    def merge(self, old: Parameters, new: Parameters) -> Parameters:
        w = self.weight
        return {name: w * new[name] + (1.0 - w) * old[name] for name in new}


@dataclass(frozen=True)
class Ensemble:
    """Keep the new parameters, and serve the mean score of the current model and the
    ``size - 1`` previous post-update snapshots (a temporal ensemble)."""

    size: int = 3
    needs_previous: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_integer("size", self.size, minimum=1))

    @property
    def members(self) -> int:
        return self.size

    def merge(self, old: Parameters, new: Parameters) -> Parameters:
        return new

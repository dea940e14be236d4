"""Which parameters an update may change: all of them, or named groups of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from driftrec.agents.models.base import PARAMETER_GROUPS, Recommender

__all__ = ["SCOPES", "ParameterScope", "resolve_scope"]

SCOPES = ("all", "embeddings", "body", "head", "adapters")
"""Valid scope names. ``all`` is every parameter; the others are the model's groups (see
``driftrec.agents.models.PARAMETER_GROUPS``). The slot bias (group ``feedback``) is in every
scope: it models how the feedback was collected, not what the user likes."""


@dataclass(frozen=True)
class ParameterScope:
    """The parameters an update trains.

    Attributes:
        names: parameter names, in the model's order.
        params: the parameters themselves.
        sparse: names of id tables with sparse gradients (penalties touch only batch rows).
        penalised: names that regularisers apply to (everything but the slot bias).
    """

    names: tuple[str, ...]
    params: tuple[nn.Parameter, ...]
    sparse: frozenset[str]
    penalised: tuple[str, ...]

    def named(self) -> list[tuple[str, nn.Parameter]]:
        return list(zip(self.names, self.params, strict=True))


def sparse_tables(model: Recommender) -> frozenset[str]:
    """Names of the parameters of ``model`` that are sparse-gradient embedding tables."""
    return frozenset(
        f"{name}.weight" if name else "weight"
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Embedding) and mod.sparse
    )


def resolve_scope(
    model: Recommender, scope: Sequence[str], freeze: Sequence[str] = ()
) -> ParameterScope:
    """The parameters of ``model`` selected by the group names ``scope`` (see :data:`SCOPES`),
    less the groups in ``freeze`` (which may be empty for this model)."""
    scope = tuple(scope)
    unknown_frozen = sorted(set(freeze) - set(SCOPES[1:]))
    if unknown_frozen:
        raise ValueError(f"cannot freeze {unknown_frozen}; groups are {list(SCOPES[1:])}")
    unknown = sorted(set(scope) - set(SCOPES))
    if unknown or not scope:
        raise ValueError(f"unknown scope {list(unknown or scope)}; valid scopes are {list(SCOPES)}")
    groups = model.parameter_groups()
    assert set(groups) == set(PARAMETER_GROUPS), "a model must report every parameter group"
    if "all" in scope:
        wanted = {name for names in groups.values() for name in names}
    else:
        for group in scope:
            if not groups[group]:
                hint = (
                    " (build the model with adapter_dim > 0, e.g. model={'name': 'mf', "
                    "'adapter_dim': 8})"
                    if group == "adapters"
                    else ""
                )
                raise ValueError(
                    f"scope {group!r} selects no parameter of {type(model).__name__}{hint}; "
                    f"its non-empty groups are {[g for g, n in groups.items() if n]}"
                )
        wanted = {name for group in (*scope, "feedback") for name in groups[group]}
    wanted -= {name for group in freeze for name in groups[group]}
    if not wanted - set(groups["feedback"]):
        raise ValueError(
            f"scope {list(scope)} without {list(freeze)} leaves nothing of "
            f"{type(model).__name__} to train"
        )
    named = [(n, p) for n, p in model.named_parameters() if n in wanted]
    feedback = set(groups["feedback"])
    return ParameterScope(
        names=tuple(n for n, _ in named),
        params=tuple(p for _, p in named),
        sparse=sparse_tables(model) & wanted,
        penalised=tuple(n for n, _ in named if n not in feedback),
    )

"""One registry for everything built from a name and parameters (scenarios, strategies, models,
explorations, agents), as an experiment spec lists them.

A :class:`Registry` maps names to builders (functions or classes). A builder's keyword
parameters, read from its signature, are the entry's parameters; building with an unknown name
or parameter fails with the valid ones listed, and :meth:`Registry.describe` lists every entry
with its parameters and the first line of its docstring (``driftrec list``). Registering is one
decorator, so a user's own scenario, strategy or model joins the tables (and the tests
parametrised over them) from their own code.

Example:
    >>> greetings = Registry("greeting")
    >>> @greetings.register()
    ... def hello(name: str = "world") -> str:
    ...     '''Say hello.'''
    ...     return f"hello {name}"
    >>> greetings.build("hello", name="driftrec")
    'hello driftrec'
    >>> greetings.build("hello", nmae="x")
    Traceback (most recent call last):
    ...
    TypeError: unknown parameter(s) ['nmae'] for greeting 'hello'; its parameters are ['name']
    >>> greetings.parameters("hello")
    {'name': 'world'}
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered builder, as :meth:`Registry.describe` lists it."""

    name: str
    parameters: dict[str, Any]
    summary: str


class Registry(Generic[T]):
    """Names -> builders of ``T``.

    Args:
        kind: what an entry is, for messages (``"scenario"``).
        plural: the plural, for messages (default ``kind + "s"``).
        skip: leading positional parameters every builder takes from the caller rather than
            from configuration (a model's ``sizes``); they are not listed as parameters.
        sort_names: error messages list the valid names sorted (default) or, if False, in
            registration order (when that order means something, e.g. baselines first).
    """

    def __init__(
        self, kind: str, *, plural: str | None = None, skip: int = 0, sort_names: bool = True
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.skip = skip
        self.sort_names = sort_names
        self._builders: dict[str, Callable[..., T]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every register and unregister (another registry that
        mirrors this one's names keeps up: the agents mirror the strategy presets)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def register(
        self, name: str | None = None, *, replace: bool = False
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """A decorator registering a builder under ``name`` (default: its ``__name__``).
        Registering a taken name is an error unless ``replace``."""

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            key = name or builder.__name__
            if not isinstance(key, str) or not key:
                raise ValueError(f"a {self.kind} name must be a non-empty string, got {key!r}")
            if key in self._builders and not replace:
                raise ValueError(
                    f"{self.kind} {key!r} is already registered; pass replace=True to override"
                )
            self._builders[key] = builder
            self._changed()
            return builder

        return decorate

    def unregister(self, name: str) -> None:
        """Remove entry ``name`` (for tests that register a toy entry)."""
        self.check_name(name)
        del self._builders[name]
        self._changed()

    # ------------------------------------------------------------------ lookup

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._builders))

    def __len__(self) -> int:
        return len(self._builders)

    def __getitem__(self, name: str) -> Callable[..., T]:
        self.check_name(name)
        return self._builders[name]

    def names(self) -> list[str]:
        """Every name, in registration order."""
        return list(self._builders)

    def check_name(self, name: object) -> str:
        """``name`` if registered, else a ``ValueError`` listing the valid names."""
        if not isinstance(name, str) or name not in self._builders:
            names = sorted(self._builders) if self.sort_names else self.names()
            # The closest name, as validation.did_you_mean words it (this module is a leaf).
            close = difflib.get_close_matches(name, names, n=1) if isinstance(name, str) else []
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            valid = f"valid {self.plural} are {names}"
            raise ValueError(f"unknown {self.kind} {name!r}; {valid}{guess}")
        return name

    def parameters(self, name: str) -> dict[str, Any]:
        """The keyword parameters of entry ``name`` and their defaults (``inspect.Parameter.
        empty`` where there is none), read from the builder's signature."""
        builder = self[name]
        target = builder.__init__ if inspect.isclass(builder) else builder
        params = list(inspect.signature(target).parameters.values())
        if inspect.isclass(builder):
            params = params[1:]  # self
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = [p for p in params[self.skip :] if p.kind in kinds]
        return {p.name: p.default for p in params}

    def check_parameters(self, name: str, params: dict[str, Any]) -> None:
        """A ``TypeError`` listing the valid parameters if ``params`` has an unknown one."""
        valid = self.parameters(name)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {unknown} for {self.kind} {name!r}; its parameters are "
                f"{sorted(valid) or 'none'}"
            )

    def build(self, name: str, /, *args: Any, **params: Any) -> T:
        """Build entry ``name``: ``builder(*args, **params)`` (``args`` are the skipped leading
        parameters), after checking the name and the parameter names."""
        self.check_parameters(self.check_name(name), params)
        return self._builders[name](*args, **params)

    def summary(self, name: str) -> str:
        """The first sentence of the builder's docstring, on one line."""
        doc = inspect.getdoc(self[name]) or ""
        paragraph = " ".join(doc.strip().split("\n\n")[0].split())
        # The first ". " that ends a sentence (not "et al. ", "e.g. ", "i.e. ").
        match = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\. (?=[A-Z(])", paragraph)
        return paragraph if match is None else paragraph[: match.start() + 1]

    def describe(self) -> list[Entry]:
        """Every entry with its parameters and summary, in registration order."""
        return [Entry(n, self.parameters(n), self.summary(n)) for n in self._builders]

"""A named registry of factories: backbones and face detectors are added by registering one function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from agegender.errors import ConfigError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make ``factory`` available as ``name``; a name can be taken only once."""

        def deco(factory: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> F:
        """The factory for ``name``; an unknown name is an error that lists the known ones."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}") from None

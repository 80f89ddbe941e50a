"""A small name -> spec registry shared by tasks, models, formats and simulators."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from core.errors import GPSError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to specs; unknown names raise :class:`GPSError` listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, spec: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = spec
        return spec

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise GPSError(f"unknown {self.kind} {name!r}",
                           expected=f"one of {', '.join(sorted(self._items)) or '(none registered)'}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def items(self):
        return self._items.items()

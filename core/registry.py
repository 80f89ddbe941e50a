"""A small name -> spec registry shared by tasks, models, formats and simulators."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from core.errors import GPSError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to specs; unknown names raise :class:`GPSError` listing the known ones.

    ``loader`` (optional) is called once before the first lookup: registries whose entries live in packages that are
    imported on demand (the task packages) fill themselves lazily, so importing the registry stays cheap.
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loader = loader

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def register(self, name: str, spec: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = spec
        return spec

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise GPSError(f"unknown {self.kind} {name!r}",
                           expected=f"one of {', '.join(sorted(self._items)) or '(none registered)'}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._items))

    def names(self) -> list[str]:
        self._load()
        return list(self._items)

    def items(self):
        self._load()
        return list(self._items.items())

"""A tiny named registry used for every interchangeable stage (trackers, engines, TTS, converters, ...).

Choices are defined once here and feed the CLI, the API and the UI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    description: str
    available: Callable[[], bool]


class Registry(Generic[T]):
    """Maps a name to a factory. ``available`` says whether the stage can run on this machine now."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str, available: Callable[[], bool] = lambda: True):
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, description, available)
            return factory

        return decorator

    def names(self) -> list[str]:
        return list(self._entries)

    def available_names(self) -> list[str]:
        return [n for n, e in self._entries.items() if e.available()]

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self._entries) or "none"
            raise InputError(f"unknown {self.kind} {name!r}; choose one of: {choices}") from None

    def create(self, name: str, *args, **kwargs) -> T:
        return self.entry(name).factory(*args, **kwargs)

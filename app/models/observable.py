"""A minimal observer: models announce changes through these, widgets and controllers listen."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Event(Generic[T]):
    """Calls every connected handler with the payload, in connection order (same thread)."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[T], None]] = []

    def connect(self, handler: Callable[[T], None]) -> None:
        if handler not in self._handlers:
            self._handlers.append(handler)

    def disconnect(self, handler: Callable[[T], None]) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def emit(self, value: T) -> None:
        for handler in list(self._handlers):
            handler(value)

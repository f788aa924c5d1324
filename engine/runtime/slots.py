"""Depth-1 hand-off between threads: the newest item wins, nothing queues up.

A producer `put`s; a consumer `take`s (waits for and removes the newest) or `peek`s (reads it
and leaves it). An item not taken before the next `put` is dropped and counted: when a stage is
slow, frames are dropped, never delayed, and memory stays bounded.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """One slot holding the newest item (or nothing). Safe for any number of threads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._dropped = 0

    def put(self, item: T) -> None:
        """Store `item`, replacing (and dropping) one not taken yet."""
        with self._cond:
            if self._item is not None:
                self._dropped += 1
            self._item = item
            self._cond.notify_all()

    def take(self, timeout: float | None = 0.0) -> T | None:
        """Remove and return the newest item, waiting up to `timeout` s (None: forever)."""
        with self._cond:
            if self._item is None and timeout != 0.0:
                self._cond.wait_for(lambda: self._item is not None, timeout)
            item, self._item = self._item, None
            return item

    def peek(self) -> T | None:
        """The newest item, left in place (None when empty)."""
        with self._cond:
            return self._item

    def clear(self) -> None:
        with self._cond:
            self._item = None

    @property
    def dropped(self) -> int:
        """Items replaced before anyone took them."""
        with self._cond:
            return self._dropped

"""The portrait gallery: bundled portraits plus the user's own (removable), one animated.

A portrait is asked for with `request`; it becomes `selected` only once the engine has loaded
it (`loaded`), and a refused one (`refused`) leaves the selection as it was. The user's own
portraits join the gallery when they load, so the gallery holds only usable portraits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.models.observable import Event


def same_path(a: str, b: str) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


@dataclass(frozen=True)
class PortraitEntry:
    """path: the image file. name: what the gallery shows. bundled: shipped (not removable)."""

    path: str
    name: str
    bundled: bool


def entry_for(path: str, bundled: bool) -> PortraitEntry:
    stem = Path(path).stem.replace("_", " ").replace("-", " ").strip()
    return PortraitEntry(path=path, name=stem.title() if bundled else stem, bundled=bundled)


class GalleryModel:
    """entries_changed: the list changed. selection_changed: the animated portrait (or the
    pending request) changed; views re-sync their highlight from `selected`."""

    def __init__(self, bundled: list[str], user: list[str] | None = None) -> None:
        self._entries = [entry_for(p, True) for p in bundled]
        for path in user or []:
            if self.find(path) is None:
                self._entries.append(entry_for(path, False))
        self.selected: str | None = None
        self.requested: str | None = None
        self.entries_changed: Event[tuple[PortraitEntry, ...]] = Event()
        self.selection_changed: Event[str | None] = Event()
        self.requested_changed: Event[str | None] = Event()

    @property
    def entries(self) -> tuple[PortraitEntry, ...]:
        return tuple(self._entries)

    def user_paths(self) -> list[str]:
        return [e.path for e in self._entries if not e.bundled]

    def find(self, path: str) -> PortraitEntry | None:
        return next((e for e in self._entries if same_path(e.path, path)), None)

    def request(self, path: str) -> None:
        """Ask for `path` to be animated (the engine answers with `loaded` or `refused`)."""
        self.requested = path
        self.requested_changed.emit(path)

    def loaded(self, path: str) -> None:
        """The engine animates `path` now; a user's new portrait joins the gallery."""
        entry = self.find(path)
        if entry is None:
            entry = entry_for(path, bundled=False)
            self._entries.append(entry)
            self.entries_changed.emit(self.entries)
        self.selected = entry.path
        if self.requested is not None and same_path(self.requested, path):
            self.requested = None
        self.selection_changed.emit(self.selected)

    def refused(self, path: str) -> None:
        """The engine could not use `path`; the animated portrait stays."""
        if self.requested is not None and same_path(self.requested, path):
            self.requested = None
        self.selection_changed.emit(self.selected)

    def deselect(self) -> None:
        """None of the gallery's portraits is animated now (a personalized profile is)."""
        if self.selected is not None:
            self.selected = None
            self.selection_changed.emit(None)

    def remove(self, path: str) -> bool:
        """Remove a user's portrait (bundled ones stay). False when nothing was removed."""
        entry = self.find(path)
        if entry is None or entry.bundled:
            return False
        self._entries.remove(entry)
        self.entries_changed.emit(self.entries)
        return True

    def neighbour(self, step: int) -> str | None:
        """The entry `step` places after the selected one (wrapping), for next/previous keys."""
        if not self._entries:
            return None
        paths = [e.path for e in self._entries]
        current = self.find(self.selected) if self.selected else None
        index = paths.index(current.path) if current else -1
        return paths[(index + step) % len(paths)]

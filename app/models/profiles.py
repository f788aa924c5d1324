"""The personalized profiles in the window: the list, and which one the avatar is.

A profile is asked for with `request`; it becomes `active` only once the engine has loaded it
(`loaded`); a refused one leaves things as they were. Loading a portrait instead clears
`active` (`deactivate`). The list itself comes from the engine's profile library (`set_entries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.models.gallery import same_path
from app.models.observable import Event

if TYPE_CHECKING:
    from engine.api import ProfileInfo


@dataclass(frozen=True)
class ProfileEntry:
    """folder: the profile's folder (its identity). name: its display name. source: its
    source image. detail: one line about how it was made."""

    folder: str
    name: str
    source: str
    detail: str


def entry_for(info: ProfileInfo) -> ProfileEntry:
    made = info.created[:10]
    trained = f"{info.steps} steps in {info.seconds:.0f} s" if info.steps else "not fine-tuned"
    detail = f"{made} · {trained} · {info.tier} tier"
    return ProfileEntry(str(info.folder), info.name, str(info.source), detail)


class ProfilesModel:
    """entries_changed: the list changed. selection_changed: the active profile (or the
    pending request) changed; views re-sync their highlight from `active` and `requested`."""

    def __init__(self) -> None:
        self._entries: tuple[ProfileEntry, ...] = ()
        self.listed = False  # the library has answered at least once
        self.active: str | None = None
        self.requested: str | None = None
        self.entries_changed: Event[tuple[ProfileEntry, ...]] = Event()
        self.selection_changed: Event[str | None] = Event()
        self.requested_changed: Event[str | None] = Event()

    @property
    def entries(self) -> tuple[ProfileEntry, ...]:
        return self._entries

    def find(self, folder: str) -> ProfileEntry | None:
        return next((e for e in self._entries if same_path(e.folder, folder)), None)

    def active_entry(self) -> ProfileEntry | None:
        return self.find(self.active) if self.active else None

    def set_entries(self, infos: tuple[ProfileInfo, ...]) -> None:
        entries = tuple(entry_for(i) for i in infos)
        self.listed = True
        if entries != self._entries:
            self._entries = entries
            self.entries_changed.emit(entries)

    def request(self, folder: str) -> None:
        """Ask for a profile to animate the avatar (answered by `loaded` or `refused`)."""
        self.requested = folder
        self.requested_changed.emit(folder)

    def loaded(self, folder: str) -> None:
        self.active = folder
        if self.requested is not None and same_path(self.requested, folder):
            self.requested = None
        self.selection_changed.emit(self.active)

    def refused(self, folder: str) -> None:
        if self.requested is not None and same_path(self.requested, folder):
            self.requested = None
        self.selection_changed.emit(self.active)

    def deactivate(self) -> None:
        """A portrait animates the avatar now, not a profile."""
        if self.active is not None:
            self.active = None
            self.selection_changed.emit(None)

"""What the two preview panes show: the driving frame (optionally with its landmarks) and the
avatar, each with a note when there is nothing live to show."""

from __future__ import annotations

from app.models.observable import Event
from engine.api import LiveFrame


class PreviewModel:
    """frame: the newest live result. webcam_note/avatar_note: shown over the panes (camera
    lost, portrait loading); empty when all is well. avatar_name: the name shown over the
    avatar when it is a personalized profile ("" = the portrait's own name, from the frame)."""

    def __init__(self, show_landmarks: bool = False) -> None:
        self.frame: LiveFrame | None = None
        self.show_landmarks = show_landmarks
        self.webcam_note = "Starting the camera…"
        self.avatar_note = "Loading the portrait…"
        self.avatar_name = ""
        self.frame_changed: Event[LiveFrame] = Event()
        self.overlay_changed: Event[bool] = Event()
        self.notes_changed: Event[tuple[str, str]] = Event()
        self.name_changed: Event[str] = Event()

    def show(self, frame: LiveFrame) -> None:
        """A new live result (ignored when it is the one shown already)."""
        if self.frame is not None and frame.sequence == self.frame.sequence:
            return
        self.frame = frame
        self.frame_changed.emit(frame)

    def set_show_landmarks(self, show: bool) -> None:
        if show != self.show_landmarks:
            self.show_landmarks = show
            self.overlay_changed.emit(show)

    def toggle_landmarks(self) -> None:
        self.set_show_landmarks(not self.show_landmarks)

    def set_notes(self, webcam: str | None = None, avatar: str | None = None) -> None:
        notes = (
            self.webcam_note if webcam is None else webcam,
            self.avatar_note if avatar is None else avatar,
        )
        if notes != (self.webcam_note, self.avatar_note):
            self.webcam_note, self.avatar_note = notes
            self.notes_changed.emit(notes)

    def set_avatar_name(self, name: str) -> None:
        if name != self.avatar_name:
            self.avatar_name = name
            self.name_changed.emit(name)

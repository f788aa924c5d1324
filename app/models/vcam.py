"""The virtual camera panel: size, whether frames are being sent, and what happened."""

from __future__ import annotations

from app.models.observable import Event
from engine.api import VIRTUAL_CAMERA_SIZES, VirtualCameraSettings


class VirtualCameraModel:
    """running: frames are being sent. busy: a start/stop was asked and not answered yet.
    `toggled` carries the settings to start with, or None to stop; `changed` the new state."""

    def __init__(self, size: tuple[int, int] = VIRTUAL_CAMERA_SIZES[0]) -> None:
        self.size = size if size in VIRTUAL_CAMERA_SIZES else VIRTUAL_CAMERA_SIZES[0]
        self.running = False
        self.busy = False
        self.message = "Off. Start it, then pick “Visage” as the camera in your video-call app."
        self.toggled: Event[VirtualCameraSettings | None] = Event()
        self.changed: Event[VirtualCameraModel] = Event()

    def settings(self) -> VirtualCameraSettings:
        return VirtualCameraSettings(width=self.size[0], height=self.size[1])

    def toggle(self) -> None:
        """Start when off, stop when on (ignored while an answer is pending)."""
        if self.busy:
            return
        self.busy = True
        self.changed.emit(self)
        self.toggled.emit(None if self.running else self.settings())

    def set_size(self, size: tuple[int, int]) -> None:
        """A new size; a running camera restarts at it."""
        if size == self.size or size not in VIRTUAL_CAMERA_SIZES:
            return
        self.size = size
        self.changed.emit(self)
        if self.running and not self.busy:
            self.busy = True
            self.toggled.emit(self.settings())

    def update(self, running: bool, message: str) -> None:
        """The engine's answer."""
        self.running, self.busy, self.message = running, False, message
        self.changed.emit(self)

"""The driving source: which camera (or the sample clip), its resolution, mirror, and state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.models.observable import Event
from engine.api import CameraInfo, SourceSpec, sample_driving_clip

RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
ChoiceKind = Literal["auto", "camera", "file"]


@dataclass(frozen=True)
class SourceChoice:
    """kind "auto": the webcam if there is one, else the sample clip; "camera": OpenCV index
    `camera`; "file": the video at `path` played in a loop (the sample clip by default)."""

    kind: ChoiceKind = "auto"
    camera: int | None = None
    path: str | None = None

    def label(self) -> str:
        if self.kind == "auto":
            return "Automatic (webcam, else sample clip)"
        if self.kind == "camera":
            return f"Camera {self.camera}"
        return "Sample clip" if self.is_sample() else f"Video {self.path}"

    def is_sample(self) -> bool:
        return self.kind == "file" and self.path == str(sample_driving_clip())


SAMPLE = SourceChoice("file", path=str(sample_driving_clip()))


class CameraModel:
    """choice/resolution/mirror: what the user asked for (`source_changed` carries the spec to
    switch to). cameras: what is plugged in. active/lost/note: what actually drives now."""

    def __init__(
        self,
        choice: SourceChoice | None = None,
        resolution: tuple[int, int] = RESOLUTIONS[0],
        mirror: bool = True,
    ) -> None:
        self.choice = choice or SourceChoice()
        self.resolution = resolution
        self.mirror = mirror
        self.cameras: tuple[CameraInfo, ...] = ()
        self.active = ""
        self.active_camera: int | None = None
        self.lost = False
        self.note = ""
        self.cameras_changed: Event[tuple[CameraInfo, ...]] = Event()
        self.source_changed: Event[SourceSpec] = Event()
        self.state_changed: Event[str] = Event()

    def spec(self) -> SourceSpec:
        kind = self.choice.kind
        camera = self.choice.camera
        if kind == "auto" and camera is None:
            camera = self.active_camera
        width, height = self.resolution
        return SourceSpec(kind, camera, self.choice.path, width, height, self.mirror)

    def choices(self) -> list[SourceChoice]:
        """What the picker offers: automatic, each camera plugged in, the sample clip (and the
        current choice if it is none of these, e.g. a camera just unplugged)."""
        options = [SourceChoice()]
        options += [SourceChoice("camera", camera=c.index) for c in self.cameras]
        options.append(SAMPLE)
        if self.choice not in options:
            options.append(self.choice)
        return options

    def camera_label(self, choice: SourceChoice) -> str:
        if choice.kind == "camera":
            info = next((c for c in self.cameras if c.index == choice.camera), None)
            if info is not None:
                return info.label
            return f"Camera {choice.camera} (not connected)"
        return choice.label()

    def choose(self, choice: SourceChoice) -> None:
        if choice != self.choice:
            self.choice = choice
            self.source_changed.emit(self.spec())

    def set_resolution(self, resolution: tuple[int, int]) -> None:
        if resolution != self.resolution:
            self.resolution = resolution
            self.source_changed.emit(self.spec())

    def set_mirror(self, mirror: bool) -> None:
        if mirror != self.mirror:
            self.mirror = mirror
            self.source_changed.emit(self.spec())

    def set_cameras(self, cameras: tuple[CameraInfo, ...]) -> None:
        if cameras != self.cameras:
            self.cameras = cameras
            self.cameras_changed.emit(cameras)

    def source_active(self, description: str, camera: int | None, note: str) -> None:
        self.active, self.active_camera, self.lost, self.note = description, camera, False, note
        self.state_changed.emit(self.status())

    def source_lost(self, message: str) -> None:
        self.lost, self.note = True, message
        self.state_changed.emit(self.status())

    def playing_file(self) -> bool:
        """A video file drives (the sample clip when there is no webcam), not a camera."""
        return bool(self.active) and self.active_camera is None and not self.lost

    def playing_sample(self) -> bool:
        return self.playing_file() and (self.choice.kind == "auto" or self.choice.is_sample())

    def status(self) -> str:
        if self.lost:
            return self.note
        if not self.active:
            return "Starting the camera…"
        return f"{self.active}. {self.note}".strip() if self.note else self.active

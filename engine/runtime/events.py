"""What the live runner tells its owner: rare events (typed, frozen) and the newest frame.

Events are delivered by calling the owner's callback from an engine thread; the desktop app
turns each into a queued Qt signal. Frames are not events: the owner pulls `Runner.latest()`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Literal

from engine.capture.cameras import CameraInfo
from engine.types import FloatArray, ImageArray, OutputFrame

SourceKind = Literal["auto", "camera", "file"]


@dataclass(frozen=True)
class SourceSpec:
    """What drives the avatar.

    kind: "camera" (OpenCV index `camera`), "file" (video `path`, played in a loop at its own
        rate) or "auto": camera `camera` if given and working, else the first camera found,
        else the bundled sample clip (switching to a camera when one is plugged in).
    width, height: requested camera resolution. mirror: flip a camera's frames left-right (a
        selfie view); video files play as they were made.
    """

    kind: SourceKind = "auto"
    camera: int | None = None
    path: str | None = None
    width: int = 640
    height: int = 480
    mirror: bool = True

    def __post_init__(self) -> None:
        if self.kind == "camera" and (self.camera is None or self.camera < 0):
            raise ValueError("a camera source needs a camera index >= 0")
        if self.kind == "file" and not self.path:
            raise ValueError("a file source needs a path")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"camera resolution out of range: {self.width}x{self.height}")


@dataclass(frozen=True)
class LiveFrame:
    """The newest result of the live loop.

    driving: (H, W, 3) uint8 RGB driving frame as processed (mirrored if asked).
    landmarks: (478, 3) float32 driver landmarks in `driving` pixels, None when no face.
    output: the avatar frame (output.image, (h, w, 3) uint8 RGB) with its timings.
    portrait: name of the portrait animated. sequence: counts results from 1.
    latency_ms: from the driving frame's arrival to the avatar being ready.
    fps: avatar frames per second over the last second or so.
    """

    driving: ImageArray
    landmarks: FloatArray | None
    output: OutputFrame
    portrait: str
    sequence: int
    latency_ms: float
    fps: float

    @property
    def avatar(self) -> ImageArray:
        return self.output.image


@dataclass(frozen=True)
class SourceChanged:
    """Frames now come from `description`. kind: "camera" or "file"; note: why (e.g. no
    webcam, so the sample clip plays)."""

    description: str
    kind: SourceKind
    camera: int | None
    note: str = ""


@dataclass(frozen=True)
class SourceLost:
    """The source stopped delivering (camera unplugged or busy); the last avatar frame stays
    and the source is retried every `retry_s` seconds."""

    description: str
    message: str
    retry_s: float


@dataclass(frozen=True)
class CamerasChanged:
    cameras: tuple[CameraInfo, ...]


@dataclass(frozen=True)
class PortraitLoaded:
    """`name` is animated now. notes: worth telling the user (several faces, downscaling).
    profile: a personalized profile (`path` is its folder, `name` its display name)."""

    path: str
    name: str
    notes: tuple[str, ...]
    profile: bool = False


@dataclass(frozen=True)
class PortraitRefused:
    """`path` was not loaded (the reason is the engine's message); the current one stays.
    profile: `path` is a personalized profile's folder."""

    path: str
    reason: str
    profile: bool = False


@dataclass(frozen=True)
class ComputeChanged:
    """device: e.g. "cpu (CPU)". compute: what renders ("geometric path", "cpu-tier networks:
    torch.compile on cpu ..."). note: a reason worth showing (networks still preparing, or
    unavailable and why)."""

    device: str
    compute: str
    note: str = ""


@dataclass(frozen=True)
class CalibrationChanged:
    """calibrating: collecting the neutral face now; calibrated: a neutral face is set."""

    calibrating: bool
    calibrated: bool


@dataclass(frozen=True)
class VirtualCameraChanged:
    """running: frames are being sent. message: what happened, including what to install when
    no virtual camera exists. failed: it could not start, or stopped on an error. size:
    (width, height) sent. device: the backend and device it sends to."""

    running: bool
    message: str
    failed: bool = False
    size: tuple[int, int] | None = None
    device: str = ""


@dataclass(frozen=True)
class EngineFault:
    """An unexpected error caught at a worker loop boundary; the loop carries on.

    where: which loop. message: one line for the user, with the cause. details: the traceback.
    repeats: how many more times it happened since it was last reported.
    """

    where: str
    message: str
    details: str
    repeats: int = 0

    @staticmethod
    def of(where: str, err: BaseException, repeats: int = 0) -> EngineFault:
        cause = f"{type(err).__name__}: {err}"
        details = "".join(traceback.format_exception(err))
        message = f"{where[:1].upper()}{where[1:]} error: {cause}. Visage carried on."
        return EngineFault(where, message, details, repeats)


RunnerEvent = (
    SourceChanged
    | SourceLost
    | CamerasChanged
    | PortraitLoaded
    | PortraitRefused
    | ComputeChanged
    | CalibrationChanged
    | VirtualCameraChanged
    | EngineFault
)

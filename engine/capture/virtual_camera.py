"""The virtual camera: avatar frames out to video-call apps through pyvirtualcam.

`VirtualCameraSink` opens a camera (default 1280x720 at 30 fps, RGB; 640x480 offered too), named
"Visage" where the backend allows (on Linux: the v4l2loopback device created with
card_label=Visage), and sends at a steady rate from its own thread, repeating the newest avatar
frame (laid out by `FrameLayout`: whole, centred, the portrait's background filling the rest).
Where no backend exists, the error says exactly what to install on this OS (`install_hint`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.capture.cameras import SYSFS_VIDEO, VIRTUAL_CAMERA_LABEL
from engine.capture.frame_layout import FrameLayout
from engine.errors import VirtualCameraError
from engine.runtime.slots import LatestSlot
from engine.types import ImageArray

log = logging.getLogger(__name__)

SIZES = ((1280, 720), (640, 480))  # offered in the app, the first is the default
IDLE_GREY = 24  # what is sent before the first avatar frame


def install_hint(platform: str | None = None) -> str:
    """How to get a virtual-camera backend that pyvirtualcam can drive, for this OS."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return (
            "Install v4l2loopback and load it with a device named Visage: "
            "`sudo apt install v4l2loopback-dkms` then "
            "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Visage`."
        )
    if platform == "darwin":
        return (
            "Install OBS Studio 30 or newer and start its virtual camera once "
            "(Start Virtual Camera)."
        )
    return "Install OBS Studio 30 or newer (it provides the virtual camera driver on Windows)."


def probe_virtual_camera() -> tuple[bool, str]:
    """(available, description): opens and closes a small camera through pyvirtualcam."""
    try:
        import pyvirtualcam
    except ImportError as err:  # pragma: no cover - pyvirtualcam is a dependency
        return False, f"pyvirtualcam is not installed ({err})"
    try:
        with pyvirtualcam.Camera(width=320, height=240, fps=30) as cam:
            return True, f"{cam.backend} ({cam.device})"
    except (RuntimeError, ValueError, OSError) as err:
        return False, f"no virtual camera: {str(err).rstrip('.')}. {install_hint()}"


def visage_device(sysfs: Path = SYSFS_VIDEO) -> str | None:
    """Linux: the v4l2loopback device named "Visage" (/dev/videoN), None when there is none."""
    if not sysfs.is_dir():
        return None
    for node in sorted(sysfs.iterdir()):
        try:
            name = (node / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if name == VIRTUAL_CAMERA_LABEL:
            return f"/dev/{node.name}"
    return None


@dataclass(frozen=True)
class VirtualCameraSettings:
    """width, height, fps: what is sent. backend: a pyvirtualcam backend name (None: any that
    works). device: the device to use (None: the one named "Visage" where the backend allows,
    else the backend's first)."""

    width: int = SIZES[0][0]
    height: int = SIZES[0][1]
    fps: float = 30.0
    backend: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"virtual camera size out of range: {self.width}x{self.height}")
        if not 1.0 <= self.fps <= 120.0:
            raise ValueError(f"virtual camera fps must be within [1, 120], got {self.fps}")


def _open_camera(settings: VirtualCameraSettings) -> Any:
    import pyvirtualcam

    device = settings.device
    if device is None and settings.backend in (None, "v4l2loopback"):
        device = visage_device()
    try:
        return pyvirtualcam.Camera(
            settings.width,
            settings.height,
            settings.fps,
            fmt=pyvirtualcam.PixelFormat.RGB,
            device=device,
            backend=settings.backend,
        )
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        cause = " ".join(str(err).split()).rstrip(".") or type(err).__name__
        raise VirtualCameraError(
            f"No virtual camera could be opened ({cause}). {install_hint()}"
        ) from err


class VirtualCameraSink:
    """Sends avatar frames to a virtual camera from its own thread. `offer` from any thread.

    on_error: called (from the sender thread) with a message when sending fails; the sink has
    stopped by then.
    """

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._on_error = on_error
        self._latest: LatestSlot[tuple[ImageArray, Hashable]] = LatestSlot()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self.settings: VirtualCameraSettings | None = None
        self.description = ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def frames_sent(self) -> int:
        with self._lock:
            return self._sent

    def start(self, settings: VirtualCameraSettings) -> str:
        """Open the camera and start sending; returns what it sends to. Raises
        VirtualCameraError (with what to install) when no virtual camera can be opened."""
        self.stop()
        cam = _open_camera(settings)
        name = f"{cam.backend} {cam.device}"
        if sys.platform.startswith("linux") and settings.device is None and visage_device() is None:
            name += " (not named Visage: load v4l2loopback with card_label=Visage)"
        self.settings = settings
        self.description = f"{name}, {settings.width}x{settings.height} at {settings.fps:g} fps"
        with self._lock:
            self._sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(cam, settings, self._stop),
            name="visage-virtual-camera",
            daemon=True,
        )
        self._thread.start()
        log.info("virtual camera started: %s", self.description)
        return self.description

    def offer(self, image: ImageArray, portrait: Hashable) -> None:
        """The newest avatar frame ((h, w, 3) uint8 RGB) of portrait `portrait`."""
        if self.running:
            self._latest.put((image, portrait))

    def stop(self) -> None:
        """Stop sending and close the camera. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5.0)
            log.info("virtual camera stopped")
        self._latest.clear()

    def _run(self, cam: Any, settings: VirtualCameraSettings, stop: threading.Event) -> None:
        layout = FrameLayout((settings.width, settings.height))
        frame = np.full((settings.height, settings.width, 3), IDLE_GREY, np.uint8)
        period = 1.0 / settings.fps
        due = time.monotonic()
        try:
            while not stop.is_set():
                item = self._latest.take()
                if item is not None:
                    frame = layout.compose(*item)
                cam.send(frame)
                with self._lock:
                    self._sent += 1
                due += period
                wait = due - time.monotonic()
                if wait > 0:
                    stop.wait(wait)
                elif wait < -period:
                    due = time.monotonic()  # fell behind: restart the schedule, no burst
        except Exception as err:  # the sender loop's boundary: report and stop
            log.exception("virtual camera failed")
            message = f"The virtual camera stopped: {type(err).__name__}: {err}"
            if self._on_error is not None:
                self._on_error(message)
        finally:
            cam.close()

"""Real parts for testing the live path without a webcam or a virtual-camera driver.

- `Socket` + `FileCamera`: a "camera" that plays a real video through OpenCV at its own rate
  and can be unplugged and plugged back in (reads fail, reopening fails, listing drops it).
- `RecordingBackend`: a pyvirtualcam backend (registered with pyvirtualcam.register_backend)
  that records what pyvirtualcam's own Camera sends: timestamps, format and the last frames.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from engine.capture.cameras import CameraInfo
from engine.capture.playback import LoopingVideo
from engine.errors import VideoSourceError
from engine.types import Frame

RECORDING = "recording"


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Socket:
    """Where the test camera is plugged in."""

    def __init__(self) -> None:
        self.plugged = True
        self.opened = 0


class FileCamera:
    """A camera at `index` showing `path` in a loop, for as long as its socket is plugged."""

    def __init__(self, path: Path, socket: Socket) -> None:
        self._video = LoopingVideo(path)
        self._socket = socket

    def read(self) -> Frame | None:
        if not self._socket.plugged:
            time.sleep(0.01)
            return None
        return self._video.read()

    def close(self) -> None:
        self._video.close()


def camera_parts(path: Path, socket: Socket, index: int = 0) -> dict[str, Any]:
    """Runner keyword arguments that put a FileCamera at `index` behind `socket`."""

    def opener(i: int, width: int, height: int) -> FileCamera:
        if i != index or not socket.plugged:
            raise VideoSourceError(f"No camera could be opened at index {i}.")
        socket.opened += 1
        return FileCamera(path, socket)

    def lister(probe: bool, in_use: frozenset[int]) -> tuple[CameraInfo, ...]:
        if not socket.plugged:
            return ()
        return (CameraInfo(index, "Test camera", f"/dev/video{index}"),)

    return {"camera_opener": opener, "camera_lister": lister}


def no_cameras(probe: bool, in_use: frozenset[int]) -> tuple[CameraInfo, ...]:
    return ()


class RecordingBackend:
    """A pyvirtualcam backend keeping what it was sent (the newest instance is `last`)."""

    last: RecordingBackend | None = None
    keep = 8

    def __init__(
        self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any
    ) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "recorder0"
        self.times: list[float] = []
        self.frames: collections.deque[np.ndarray] = collections.deque(maxlen=self.keep)
        self.closed = False
        self._lock = threading.Lock()
        RecordingBackend.last = self

    def send(self, frame: np.ndarray) -> None:
        with self._lock:
            self.times.append(time.monotonic())
            self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int:
        return self.fourcc

    @property
    def is_rgb(self) -> bool:
        return self.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)

    def snapshot(self) -> tuple[list[float], list[np.ndarray]]:
        with self._lock:
            return list(self.times), list(self.frames)


def register_recording_backend() -> None:
    RecordingBackend.last = None
    pyvirtualcam.register_backend(RECORDING, RecordingBackend)


def unregister_recording_backend() -> None:
    from pyvirtualcam import camera

    camera.BACKENDS.pop(RECORDING, None)


def slow_pipeline(monkeypatch: Any, seconds: float, half: str = "begin") -> None:
    """Every Pipeline.begin (or `half="finish"`: Pipeline.finish) takes `seconds` longer (a
    slow engine), for this test only. monkeypatch: pytest's fixture."""
    from engine.runtime import pipeline as pipeline_module

    original = getattr(pipeline_module.Pipeline, half)

    def slow(self: Any, *args: Any) -> Any:
        time.sleep(seconds)
        return original(self, *args)

    monkeypatch.setattr(pipeline_module.Pipeline, half, slow)

"""The capture thread: reads the driving source and puts each frame in a depth-1 slot.

It owns the source: opening (a camera, a video file in a loop, or in "auto" mode the first
working camera else the bundled sample clip), switching between frames when asked, mirroring,
hot-plug rescans, and a vanished camera (reported, then reopened every `retry_s` seconds while
the rest of the app keeps showing the last avatar frame).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.capture.cameras import CameraInfo, can_list_cheaply, list_cameras, open_camera
from engine.capture.playback import LoopingVideo
from engine.errors import VideoSourceError, VisageError
from engine.runtime.events import (
    CamerasChanged,
    EngineFault,
    RunnerEvent,
    SourceChanged,
    SourceKind,
    SourceLost,
    SourceSpec,
)
from engine.runtime.slots import LatestSlot
from engine.types import Frame, ImageArray

log = logging.getLogger(__name__)

FIRST_FRAME_S = 2.0  # an opened camera must deliver within this long to count as working
READ_RETRY_S = 0.03  # pause after a failed camera read


@dataclass(frozen=True)
class Captured:
    """frame: the driving frame as processed (mirrored if asked). arrived_s: time.monotonic()
    when it was read (the start of the end-to-end latency)."""

    frame: Frame
    arrived_s: float


class FrameReader(Protocol):
    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


CameraOpener = Callable[[int, int, int], FrameReader]  # (index, width, height) -> reader
CameraLister = Callable[[bool, frozenset[int]], tuple[CameraInfo, ...]]  # (probe, in use)
FrameTap = Callable[[ImageArray, float], None]  # (image, arrival time): sees every frame


@dataclass
class _Active:
    reader: FrameReader
    description: str
    kind: SourceKind
    camera: int | None
    pending: Frame | None  # the first frame, read while checking that the source works


def _describe(spec: SourceSpec) -> str:
    if spec.kind == "file":
        return f"video {Path(spec.path or '').name}"
    return f"camera {spec.camera}" if spec.camera is not None else "the camera"


class CaptureLoop:
    """Runs in its own thread after `start()`; `request` and `rescan` may be called anywhere.

    sample: the clip played in "auto" mode when no camera works.
    lost_after: consecutive failed reads that mean the camera is gone.
    tap: called on the capture thread with every frame delivered (keep it quick).
    """

    def __init__(
        self,
        out: LatestSlot[Captured],
        emit: Callable[[RunnerEvent], None],
        sample: Path,
        *,
        camera_opener: CameraOpener = open_camera,
        camera_lister: CameraLister = list_cameras,
        rescan_s: float = 2.0,
        retry_s: float = 1.0,
        lost_after: int = 15,
        tap: FrameTap | None = None,
    ) -> None:
        self._out, self._emit, self._sample = out, emit, sample
        self._tap = tap
        self._open_camera, self._list = camera_opener, camera_lister
        self.rescan_s, self.retry_s, self.lost_after = rescan_s, retry_s, lost_after
        self._requests: LatestSlot[SourceSpec] = LatestSlot()
        self._spec = SourceSpec()
        self._active: _Active | None = None
        self._lost: SourceSpec | None = None  # what to reopen while the source is gone
        self._next_retry = 0.0
        self._next_rescan = 0.0
        self._failures = 0
        self._cameras: tuple[CameraInfo, ...] = ()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control (any thread) ------------------------------------------------------------------
    def start(self, spec: SourceSpec) -> None:
        self._spec = spec  # so that a first camera scan does not override it
        self._requests.put(spec)
        self._thread = threading.Thread(target=self._run, name="visage-capture", daemon=True)
        self._thread.start()
        if not can_list_cheaply():
            self.rescan()

    def request(self, spec: SourceSpec) -> None:
        """Switch to `spec` before the next frame (the newest request wins)."""
        self._requests.put(spec)

    def rescan(self) -> None:
        """Probe for cameras now (off Linux this opens devices: done on a helper thread)."""
        active = self._active
        in_use = frozenset(() if active is None or active.camera is None else (active.camera,))
        worker = threading.Thread(
            target=self._probe, args=(in_use,), name="visage-camera-probe", daemon=True
        )
        worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def cameras(self) -> tuple[CameraInfo, ...]:
        with self._lock:
            return self._cameras

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as err:  # the loop boundary: report, drop the source, retry
                log.exception("capture loop error")
                self._emit(EngineFault.of("camera reader", err))
                self._drop_source(lost=self._spec)
                self._stop.wait(self.retry_s)
        self._close_active()

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_rescan and can_list_cheaply():
            self._next_rescan = now + self.rescan_s
            self._update_cameras(self._list(False, frozenset()))
        spec = self._requests.take()
        if spec is not None:
            self._switch(spec)
        if self._active is None:
            if self._lost is not None and now >= self._next_retry:
                self._reopen()
            else:
                self._stop.wait(0.05)
            return
        frame = self._active.pending or self._active.reader.read()
        self._active.pending = None
        if frame is None:
            self._failed_read()
            return
        self._failures = 0
        if self._spec.mirror and self._active.kind == "camera":  # a selfie view; files as made
            image = np.ascontiguousarray(frame.image[:, ::-1])
            frame = Frame(image=image, index=frame.index, timestamp_s=frame.timestamp_s)
        arrived = time.monotonic()
        if self._tap is not None:
            self._tap(frame.image, arrived)
        self._out.put(Captured(frame=frame, arrived_s=arrived))

    def _switch(self, spec: SourceSpec) -> None:
        same_source = dataclasses.replace(spec, mirror=self._spec.mirror) == self._spec
        self._spec = spec
        if same_source and self._active is not None:
            return  # only the mirror changed
        self._drop_source(lost=None)
        try:
            self._active = self._open(spec)
        except VisageError as err:
            self._report_lost(spec, _describe(spec), str(err))
            return
        self._announce(note=self._active_note(spec))

    def _open(self, spec: SourceSpec) -> _Active:
        if spec.kind == "file":
            assert spec.path is not None
            return self._open_file(Path(spec.path))
        if spec.kind == "camera":
            assert spec.camera is not None
            return self._open_camera_checked(spec.camera, spec)
        candidates = [spec.camera] if spec.camera is not None else []
        candidates += [c.index for c in self.cameras]
        if not self.cameras and not can_list_cheaply():
            candidates.append(0)
        for index in dict.fromkeys(candidates):
            try:
                return self._open_camera_checked(index, spec)
            except VisageError as err:
                log.info("camera %d does not work: %s", index, err)
        return self._open_file(self._sample)

    def _open_file(self, path: Path) -> _Active:
        video = LoopingVideo(path)
        return _Active(video, f"video {video.path.name} (looping)", "file", None, None)

    def _open_camera_checked(self, index: int, spec: SourceSpec) -> _Active:
        """Open camera `index` and wait for its first frame; raises VisageError if none comes."""
        reader = self._open_camera(index, spec.width, spec.height)
        deadline = time.monotonic() + FIRST_FRAME_S
        while time.monotonic() < deadline and not self._stop.is_set():
            frame = reader.read()
            if frame is not None:
                name = next((c.name for c in self.cameras if c.index == index), "camera")
                return _Active(reader, f"{name} (camera {index})", "camera", index, frame)
            time.sleep(READ_RETRY_S)
        reader.close()
        raise VideoSourceError(
            f"Camera {index} opened but delivered no frames for {FIRST_FRAME_S:.0f} s (another "
            "application may be using it)."
        )

    def _active_note(self, spec: SourceSpec) -> str:
        if spec.kind == "auto" and self._active is not None and self._active.kind == "file":
            return "No webcam found: the bundled sample clip plays as the camera."
        return ""

    def _announce(self, note: str) -> None:
        active = self._active
        assert active is not None
        log.info("driving source: %s %s", active.description, note)
        self._emit(SourceChanged(active.description, active.kind, active.camera, note))

    def _failed_read(self) -> None:
        self._failures += 1
        if self._failures < self.lost_after:
            time.sleep(READ_RETRY_S)
            return
        active = self._active
        assert active is not None
        lost = self._spec
        if active.camera is not None:
            lost = dataclasses.replace(self._spec, kind="camera", camera=active.camera)
        self._drop_source(lost=lost)
        message = (
            f"{active.description} stopped delivering frames (unplugged, or taken by another "
            f"application). Showing the last avatar frame; retrying every {self.retry_s:g} s."
        )
        self._report_lost(lost, active.description, message)

    def _report_lost(self, lost: SourceSpec, description: str, message: str) -> None:
        self._lost = lost
        self._next_retry = time.monotonic() + self.retry_s
        log.warning("%s", message)
        self._emit(SourceLost(description, message, self.retry_s))

    def _reopen(self) -> None:
        lost = self._lost
        assert lost is not None
        try:
            self._active = self._open(lost)
        except VisageError as err:
            log.debug("still no source: %s", err)
            self._next_retry = time.monotonic() + self.retry_s
            return
        self._lost = None
        self._failures = 0
        self._announce(note=f"{self._active.description} is back.")

    def _drop_source(self, lost: SourceSpec | None) -> None:
        self._close_active()
        self._lost = lost
        self._failures = 0

    def _close_active(self) -> None:
        if self._active is not None:
            self._active.reader.close()
            self._active = None

    # -- cameras -------------------------------------------------------------------------------
    def _probe(self, in_use: frozenset[int]) -> None:
        try:
            self._update_cameras(self._list(True, in_use))
        except Exception as err:  # a helper thread's boundary
            log.exception("camera probe failed")
            self._emit(EngineFault.of("camera scan", err))

    def _update_cameras(self, cameras: tuple[CameraInfo, ...]) -> None:
        with self._lock:
            if cameras == self._cameras:
                return
            added = {c.index for c in cameras} - {c.index for c in self._cameras}
            self._cameras = cameras
        log.info("cameras: %s", ", ".join(c.label for c in cameras) or "none")
        self._emit(CamerasChanged(cameras))
        active = self._active
        playing_sample = active is not None and active.kind == "file"
        if added and self._spec.kind == "auto" and playing_sample and self._requests.peek() is None:
            self._requests.put(dataclasses.replace(self._spec, camera=min(added)))

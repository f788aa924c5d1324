"""The live runner: camera -> avatar -> preview and virtual camera, on threads.

    capture thread ──Captured──> processing thread ──begun frame──> finishing thread ──LiveFrame──>
         (slot)  │                     │               (one in flight)       │  owner (`latest()`)
                 │    portrait worker ─┘ (prepared pipelines, slot)          └─> virtual camera
                 └──> recorder (personalization: frames while armed; live checks from processing)

The processing thread begins a frame (landmarks, flow, warp net: `Pipeline.begin`) while the
finishing thread finishes the one before (fusion, composite, paste: `Pipeline.finish`); with
the networks on the CPU each gets half the cores (engine.runtime.affinity).

Every hop is a depth-1 slot (engine.runtime.slots): the newest item wins, so when a stage is
slow frames are dropped, never delayed. Controls arrive as frozen snapshots in a one-slot
mailbox. Commands (portrait, camera, calibration, virtual camera) never run on the caller's
thread: they are handed to the thread that owns what they change and run between frames.
Rare events reach the owner through one callback, called from engine threads (`events.py`).
Errors are caught at each loop's boundary, reported with their cause, and the loop carries on.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.capture.cameras import CameraInfo, list_cameras, open_camera
from engine.capture.virtual_camera import VirtualCameraSettings, VirtualCameraSink
from engine.errors import VirtualCameraError
from engine.paths import sample_driving_clip
from engine.runtime.capture_loop import CameraLister, CameraOpener, Captured, CaptureLoop
from engine.runtime.events import (
    CalibrationChanged,
    ComputeChanged,
    EngineFault,
    LiveFrame,
    PortraitLoaded,
    RunnerEvent,
    SourceSpec,
    VirtualCameraChanged,
)
from engine.runtime.finisher import Finisher, split_cores
from engine.runtime.portrait_loader import LoaderOptions, PortraitLoader, PortraitRequest, Prepared
from engine.runtime.recorder import Recorder, Recording, RecordingStatus
from engine.runtime.slots import LatestSlot
from engine.types import Controls, FloatArray

if TYPE_CHECKING:
    from engine.runtime.pipeline import BegunFrame, Pipeline

log = logging.getLogger(__name__)

FAULT_REPEAT_S = 2.0  # the same error within this long is counted, not reported again
FPS_WINDOW = 30


@dataclass(frozen=True)
class RunnerOptions:
    """loader: how portraits are prepared (networks, tier, backend, output size).
    sample: the clip played when there is no webcam (default: the bundled sample).
    rescan_s: hot-plug rescan period. retry_s: how often a vanished source is retried."""

    loader: LoaderOptions = field(default_factory=LoaderOptions)
    sample: Path | None = None
    rescan_s: float = 2.0
    retry_s: float = 1.0


@dataclass(frozen=True)
class _StopCamera:
    """A request to stop the virtual camera."""


class Runner:
    """Owns the live threads. All public methods return at once and are safe from any thread.

    on_event: called with each RunnerEvent, from engine threads (keep it short; the app
    re-posts it to the GUI thread). camera_opener/camera_lister/sink: replaceable parts.
    """

    def __init__(
        self,
        on_event: Callable[[RunnerEvent], None],
        options: RunnerOptions | None = None,
        *,
        camera_opener: CameraOpener = open_camera,
        camera_lister: CameraLister = list_cameras,
        sink: VirtualCameraSink | None = None,
    ) -> None:
        self.options = options or RunnerOptions()
        self._on_event = on_event
        self._frames: LatestSlot[Captured] = LatestSlot()
        self._outputs: LatestSlot[LiveFrame] = LatestSlot()
        self._controls: LatestSlot[Controls] = LatestSlot()
        self._controls.put(Controls())
        self._pending: LatestSlot[Prepared] = LatestSlot()
        self._vcam_requests: LatestSlot[VirtualCameraSettings | _StopCamera] = LatestSlot()
        self._calibrate = threading.Event()
        self._stop = threading.Event()
        self.recorder = Recorder()
        self.capture = CaptureLoop(
            self._frames,
            self._emit,
            self.options.sample or sample_driving_clip(),
            camera_opener=camera_opener,
            camera_lister=camera_lister,
            rescan_s=self.options.rescan_s,
            retry_s=self.options.retry_s,
            tap=self.recorder.offer,
        )
        self.loader = PortraitLoader(self.options.loader, self._pending.put, self._emit)
        self.sink = sink or VirtualCameraSink(on_error=self._virtual_camera_failed)
        self._thread: threading.Thread | None = None
        self._finisher = Finisher(functools.partial(self._fault, "avatar engine"))
        self._cores_split = False
        # processing-thread state
        self._pipeline: Pipeline | None = None
        self._portrait = ""
        self._portrait_key = ""
        self._calibrating = False
        self._last_fault: tuple[str, float, int] | None = None
        self._fault_lock = threading.Lock()  # both loop threads report faults
        # finishing-thread state
        self._sequence = 0
        self._done_at: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)

    # -- commands (any thread) -----------------------------------------------------------------
    def start(self, source: SourceSpec, portrait: str | Path | PortraitRequest) -> None:
        """Start the threads: load `portrait` (an image, or a PortraitRequest such as a
        profile) and read `source`."""
        self.loader.start()
        self.loader.request(portrait)
        self.capture.start(source)
        self._finisher.start()
        self._thread = threading.Thread(target=self._run, name="visage-processing", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Stop every thread and release the camera, the virtual camera and the pipeline.
        False when the portrait worker is still inside a network compile (it cannot be
        interrupted; see PortraitLoader.stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        self._finisher.stop()
        self.capture.stop()
        self.sink.stop()
        ended = self.loader.stop()
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None
        pending = self._pending.take()
        if pending is not None:
            pending.pipeline.close()
        return ended

    def latest(self) -> LiveFrame | None:
        """The newest live result (None before the first)."""
        return self._outputs.peek()

    def set_controls(self, controls: Controls) -> None:
        self._controls.put(controls)

    def load_portrait(self, path: str | Path) -> None:
        """Prepare `path` and animate it once ready (PortraitLoaded or PortraitRefused)."""
        self.loader.request(path)

    def load_profile(self, folder: str | Path) -> None:
        """Animate a personalized profile: its source image with its own networks (answered
        like load_portrait, with `profile` set and `path` the folder)."""
        self.loader.request(PortraitRequest(str(folder), profile=True))

    def start_recording(self) -> None:
        """Start keeping the driving frames for personalization (see Recorder)."""
        self.recorder.start()

    def recording_status(self) -> RecordingStatus | None:
        """Frames and seconds recorded and the newest live check; None when not recording."""
        return self.recorder.status()

    def stop_recording(self) -> Recording:
        """Stop recording and hand over the frames with their arrival times."""
        return self.recorder.stop()

    def switch_source(self, source: SourceSpec) -> None:
        self.capture.request(source)

    def rescan_cameras(self) -> None:
        self.capture.rescan()

    @property
    def cameras(self) -> tuple[CameraInfo, ...]:
        return self.capture.cameras

    def calibrate(self) -> None:
        """The next tracked frames become the driver's neutral face."""
        self._calibrate.set()

    def start_virtual_camera(self, settings: VirtualCameraSettings | None = None) -> None:
        self._vcam_requests.put(settings or VirtualCameraSettings())

    def stop_virtual_camera(self) -> None:
        self._vcam_requests.put(_StopCamera())

    # -- the processing thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as err:  # the loop boundary: report with the cause, carry on
                self._fault("avatar engine", err)

    def _step(self) -> None:
        self._adopt_pending()
        self._serve_virtual_camera()
        pipeline = self._pipeline
        if pipeline is not None and self._calibrate.is_set():
            self._calibrate.clear()
            pipeline.calibrate()
            self._calibrating = True
            self._emit(CalibrationChanged(calibrating=True, calibrated=False))
        captured = self._frames.take(timeout=0.1)
        if captured is None or pipeline is None:
            return
        begun = pipeline.begin(captured.frame, self._controls.peek() or Controls())
        landmarks = pipeline.last_landmarks
        if self.recorder.active:
            self.recorder.observe(captured.frame.image, landmarks)
        if self._calibrating and pipeline.calibrated:
            self._calibrating = False
            self._emit(CalibrationChanged(calibrating=False, calibrated=True))
        points = landmarks.points if landmarks is not None else None
        job = functools.partial(
            self._finish, pipeline, begun, captured, points, self._portrait, self._portrait_key
        )
        if not self._finisher.submit(job):
            log.debug("frame %d dropped: the finishing thread stayed busy", begun.index)

    def _finish(
        self,
        pipeline: Pipeline,
        begun: BegunFrame,
        captured: Captured,
        landmarks: FloatArray | None,
        portrait: str,
        key: str,
    ) -> None:
        """On the finishing thread: the rest of the frame, then hand it out."""
        out = pipeline.finish(begun)
        now = time.monotonic()
        self._done_at.append(now)
        self._sequence += 1
        span = self._done_at[-1] - self._done_at[0]
        live = LiveFrame(
            driving=captured.frame.image,
            landmarks=landmarks,
            output=out,
            portrait=portrait,
            sequence=self._sequence,
            latency_ms=(now - captured.arrived_s) * 1000.0,
            fps=(len(self._done_at) - 1) / span if span > 0 else 0.0,
        )
        self._outputs.put(live)
        self.sink.offer(out.image, key)

    def _adopt_pending(self) -> None:
        prepared = self._pending.take()
        if prepared is None:
            return
        neural = prepared.pipeline.neural
        if neural is not None and neural.device.type == "cpu" and not self._cores_split:
            self._cores_split = True
            split_cores(self._finisher)
        previous, self._pipeline = self._pipeline, prepared.pipeline
        if previous is not None:
            prepared.pipeline.adopt_driver(previous)
            previous.close()
        changed = prepared.path != self._portrait_key
        self._portrait, self._portrait_key = prepared.name, prepared.path
        log.info("animating %s with the %s", prepared.name, prepared.compute)
        if changed:
            self._emit(
                PortraitLoaded(prepared.path, prepared.name, prepared.notes, prepared.profile)
            )
        self._emit(ComputeChanged(prepared.device, prepared.compute, prepared.note))

    def _serve_virtual_camera(self) -> None:
        request = self._vcam_requests.take()
        if request is None:
            return
        if isinstance(request, _StopCamera):
            self.sink.stop()
            self._emit(VirtualCameraChanged(False, "Virtual camera stopped."))
            return
        try:
            description = self.sink.start(request)
        except VirtualCameraError as err:
            log.warning("%s", err)
            self._emit(VirtualCameraChanged(False, str(err), failed=True))
            return
        size = (request.width, request.height)
        message = f"Sending to {description}."
        self._emit(VirtualCameraChanged(True, message, size=size, device=description))

    def _virtual_camera_failed(self, message: str) -> None:
        self._emit(VirtualCameraChanged(False, message, failed=True))

    def _fault(self, where: str, err: Exception) -> None:
        """Report an error caught at a loop boundary; the same one again within
        FAULT_REPEAT_S is counted and folded into the next report."""
        key = f"{where}:{type(err).__name__}:{err}"
        now = time.monotonic()
        with self._fault_lock:
            last = self._last_fault
            if last is not None and last[0] == key and now - last[1] < FAULT_REPEAT_S:
                self._last_fault = (key, last[1], last[2] + 1)
                log.debug("%s error again: %s", where, err)
                return
            repeats = last[2] if last is not None and last[0] == key else 0
            self._last_fault = (key, now, 0)
        log.exception("%s error", where, exc_info=err)
        self._emit(EngineFault.of(where, err, repeats))

    def _emit(self, event: RunnerEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # the owner's callback must not take an engine thread down
            log.exception("event handler failed on %s", type(event).__name__)

"""The recording tap for personalization, fed by the live threads.

While armed, the capture thread hands every frame to `offer`: it keeps a copy scaled down to
MAX_SIDE on the long side (as `visage personalize` reads a video) with its arrival time, from
which the frame rate is measured; at most `max_fps` frames a second and `max_seconds` in all,
so memory stays bounded (45 s at 15 fps of 640×480 frames is about 620 MB). The processing
thread hands the newest frame and its tracked face to `observe`, which checks it (one face,
large enough, lit: engine.personalize.capture.assess_frame) a few times a second for the live
status line. Everything here is thread-safe; `status` and `stop` return at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.landmarks.mediapipe_tracker import detect_faces
from engine.personalize.capture import MAX_SIDE, FrameCheck, assess_frame, scaled
from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

MAX_SECONDS = 45.0
MAX_FPS = 15.0
CHECK_EVERY_S = 0.1  # live checks per second: enough for a status line
COUNT_EVERY_S = 1.0  # full face counts (the tracker follows one face; a count costs ~50 ms)
RATE_SLACK = 0.8  # keep a frame once 0.8 of the frame interval has passed (camera jitter)


@dataclass(frozen=True)
class Recording:
    """images: (H, W, 3) uint8 RGB frames, long side <= MAX_SIDE. times_s: their arrival
    times in seconds from the first (0.0, increasing)."""

    images: tuple[ImageArray, ...]
    times_s: tuple[float, ...]

    @property
    def fps(self) -> float:
        """The measured frame rate (0 with fewer than two frames)."""
        if len(self.times_s) < 2 or self.times_s[-1] <= 0:
            return 0.0
        return (len(self.times_s) - 1) / self.times_s[-1]

    @property
    def seconds(self) -> float:
        """Length as personalization counts it: frames / frame rate."""
        return len(self.images) / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class RecordingStatus:
    """frames: kept so far. seconds: from the first kept frame to the newest. check: the
    newest live check (None before the first). full: the bound was reached (later frames are
    not kept)."""

    frames: int
    seconds: float
    check: FrameCheck | None
    full: bool


class Recorder:
    """Idle until `start`; `stop` disarms it and hands over what was recorded.

    clock: time.monotonic (injectable for tests); times passed to `offer` use the same clock.
    """

    def __init__(
        self,
        max_seconds: float = MAX_SECONDS,
        max_fps: float = MAX_FPS,
        max_side: int = MAX_SIDE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_seconds, self.max_fps, self.max_side = max_seconds, max_fps, max_side
        self._clock = clock
        self._lock = threading.Lock()
        self._active = False
        self._images: list[ImageArray] = []
        self._times: list[float] = []
        self._full = False
        self._check: FrameCheck | None = None
        self._next_check = 0.0
        self._next_count = 0.0
        self._faces = 1

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        """Arm (again): forget any earlier recording and keep the frames from now on."""
        with self._lock:
            self._images, self._times = [], []
            self._full, self._check = False, None
            self._next_check = self._next_count = 0.0
            self._faces = 1
            self._active = True
        log.info("recording for personalization")

    def stop(self) -> Recording:
        """Disarm and return the recording (empty when none was made)."""
        with self._lock:
            self._active = False
            images, times = self._images, self._times
            self._images, self._times, self._check = [], [], None
        first = times[0] if times else 0.0
        recording = Recording(tuple(images), tuple(t - first for t in times))
        log.info("recorded %d frames (%.1f fps)", len(images), recording.fps)
        return recording

    def status(self) -> RecordingStatus | None:
        """Where the recording stands (None when not recording)."""
        with self._lock:
            if not self._active:
                return None
            seconds = self._times[-1] - self._times[0] if self._times else 0.0
            return RecordingStatus(len(self._images), seconds, self._check, self._full)

    # -- the capture thread --------------------------------------------------------------------
    def offer(self, image: ImageArray, arrived_s: float) -> None:
        """A captured frame (kept when armed, due by the frame-rate cap and within bounds)."""
        if not self._active:
            return
        with self._lock:
            if self._full or not self._due(arrived_s):
                return
        copy = scaled(image, self.max_side)  # outside the lock: the status stays responsive
        with self._lock:
            if not self._active:
                return
            self._images.append(copy)
            self._times.append(arrived_s)

    def _due(self, arrived_s: float) -> bool:
        if not self._times:
            return True
        if arrived_s - self._times[0] > self.max_seconds:
            self._full = True
            log.info("the recording reached %.0f s: later frames are not kept", self.max_seconds)
            return False
        return arrived_s - self._times[-1] >= RATE_SLACK / self.max_fps

    # -- the processing thread -----------------------------------------------------------------
    def observe(self, image: ImageArray, landmarks: Landmarks | None) -> None:
        """The newest frame and its tracked face: checked a few times a second while armed."""
        now = self._clock()
        if not self._active or now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        check = self._assess(image, landmarks, now)
        with self._lock:
            if self._active:
                self._check = check

    def _assess(self, image: ImageArray, landmarks: Landmarks | None, now: float) -> FrameCheck:
        if landmarks is None:
            return FrameCheck(0)
        if now >= self._next_count:
            self._next_count = now + COUNT_EVERY_S
            self._faces = max(1, len(detect_faces(image, max_faces=3)))
        check = assess_frame(image, [landmarks])
        if self._faces > 1:
            check = dataclasses.replace(check, faces=self._faces)
        return check

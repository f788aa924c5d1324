"""A video file played in a loop at its own frame rate, read like a camera.

Used when there is no webcam (the bundled sample clip) and for testing the live path with real
footage. The rate is the file's measured rate (`VideoFileSource.info.fps`, from ffmpeg and the
decoded timestamps), never OpenCV's CAP_PROP_FPS. Timestamps keep increasing across loops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.capture.video_source import VideoFileSource
from engine.errors import VideoSourceError
from engine.types import Frame

log = logging.getLogger(__name__)


class LoopingVideo:
    """`read()` blocks until the next frame is due, then returns it (looping at the end).

    clock/sleep: injectable for deterministic tests (default: time.monotonic, time.sleep).
    """

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._source = VideoFileSource(path)
        self.path = self._source.info.path
        self.fps = float(self._source.info.fps)
        self.size = (self._source.info.width, self._source.info.height)
        self._clock, self._sleep = clock, sleep
        self._frames: Iterator[Frame] = iter(self._source)
        self._due: float | None = None
        self._count = 0
        self.loops = 0
        log.info("playing %s in a loop at %.3f fps", self.path.name, self.fps)

    def read(self) -> Frame | None:
        """The next frame at its due time; timestamp_s is that time on `clock`."""
        now = self._clock()
        if self._due is None or now - self._due > 1.0 / self.fps:
            self._due = now  # first frame, or running late: restart the schedule (no burst)
        elif self._due > now:
            self._sleep(self._due - now)
        frame = next(self._frames, None)
        if frame is None:  # end of the file: play it again
            self.loops += 1
            self._frames = iter(self._source)
            frame = next(self._frames, None)
            if frame is None:
                raise VideoSourceError(f"{self.path.name} yields no frames on a second pass.")
        out = Frame(image=frame.image, index=self._count, timestamp_s=self._due)
        self._count += 1
        self._due += 1.0 / self.fps
        return out

    def close(self) -> None:
        self._source.close()

"""Driving-frame sources: video files and cameras, yielding `Frame`s (RGB uint8, C-contiguous).

Video metadata comes from the ffmpeg binary bundled with imageio-ffmpeg (`probe_video`), never
from OpenCV's CAP_PROP_FPS, which is known to report wrong rates. OpenCV only decodes.

    with open_source("clip.mp4") as source:      # or open_source("0") for camera 0
        for frame in source:
            ...  # frame.image: (H, W, 3) uint8 RGB
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

from engine.errors import VideoSourceError
from engine.types import Frame, ImageArray

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 30.0
# ffmpeg prints rates with two decimals (29.97, 23.98, 59.94): a printed value within this of an
# NTSC rate N*1000/1001 is that rate.
_PRINTED_RATE_TOLERANCE = 0.005
# Rates measured from frame timestamps are snapped to an integer or NTSC rate within this.
_MEASURED_RATE_TOLERANCE = 0.02
_MEASURE_FRAMES = 60
_MAX_FPS_DENOMINATOR = 1001
_monotonic = time.monotonic  # camera arrival clock (a module attribute so tests can drive it)


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as reported by ffmpeg.

    path: the resolved file path.
    width, height: size in pixels of the decoded (upright) frames.
    fps: exact frame rate, e.g. Fraction(30000, 1001) for 29.97.
    frame_count_hint: the container's frame count estimate; may be 0 (unknown) or slightly off.
    has_audio: whether the file has at least one audio stream.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count_hint: int
    has_audio: bool


@dataclass(frozen=True)
class _StreamReport:
    """One input's streams as parsed from `ffmpeg -i` stderr."""

    input_format: str
    video_size: tuple[int, int] | None  # (width, height), rotation applied; None: no video
    video_codec: str
    rate_text: str | None  # "29.97", "25", "1k"; None when ffmpeg printed no fps/tbr
    has_audio: bool
    duration_s: float | None


def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg.

    Raises VideoSourceError when the binary is missing (broken installation).
    """
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as err:  # ImportError, RuntimeError: binary not found
        raise VideoSourceError(
            f"The ffmpeg binary bundled with imageio-ffmpeg could not be found ({err}). "
            "Reinstall it with `pip install --force-reinstall imageio-ffmpeg==0.8.1`."
        ) from err


def _check_readable_file(path: Path, what: str) -> None:
    if not path.exists():
        raise VideoSourceError(
            f"{what} '{path}' does not exist. Check the path (relative paths are resolved "
            f"from '{Path.cwd()}')."
        )
    if path.is_dir():
        raise VideoSourceError(f"{what} '{path}' is a directory, not a file. Pass a video file.")
    if not path.is_file():
        raise VideoSourceError(f"{what} '{path}' is not a regular file. Pass a video file.")
    if not os.access(path, os.R_OK):
        raise VideoSourceError(f"{what} '{path}' is not readable. Check its permissions.")
    if path.stat().st_size == 0:
        raise VideoSourceError(
            f"{what} '{path}' is empty (0 bytes). It was probably not fully copied or "
            "downloaded; copy it again or choose another file."
        )


def _run_ffmpeg_probe(path: Path, what: str) -> str:
    """Run `ffmpeg -hide_banner -i PATH` and return its stderr (ffmpeg exits 1 by design)."""
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-i", f"file:{path}"]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise VideoSourceError(
            f"Reading the header of {what.lower()} '{path}' took more than "
            f"{_PROBE_TIMEOUT_S:.0f} s. The file may be on a slow or stalled drive; copy it "
            "to a local disk and try again."
        ) from err
    except OSError as err:
        raise VideoSourceError(
            f"Could not run ffmpeg to read '{path}' ({err}). Reinstall imageio-ffmpeg."
        ) from err
    return result.stderr.decode("utf-8", errors="replace")


_INPUT_RE = re.compile(r"^Input #0, (?P<format>.+?), from ", re.MULTILINE)
_STREAM_RE = re.compile(
    r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<details>.*)$"
)
_SIZE_RE = re.compile(r"(?<![\w.])([1-9]\d{0,5})x([1-9]\d{0,5})(?![\w.])")
_FPS_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?k?) fps\b")
_TBR_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?k?) tbr\b")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


def _parse_ffmpeg_streams(stderr: str) -> _StreamReport | None:
    """Parse `ffmpeg -i` stderr; None when ffmpeg could not open the input at all.

    The first video stream that is not an attached picture (cover art) is the video stream.
    """
    input_match = _INPUT_RE.search(stderr)
    if input_match is None:
        return None
    lines = stderr[input_match.end() :].splitlines()[1:]  # below the "Input #0 ..." line
    # Group each "Stream #0:N" line with the indented lines below it (metadata, side data).
    blocks: list[tuple[str, str, list[str]]] = []
    for line in lines:
        stream_match = _STREAM_RE.match(line)
        if stream_match is not None:
            blocks.append((stream_match["kind"], stream_match["details"], []))
        elif blocks and line.startswith(" "):
            blocks[-1][2].append(line)
        elif line and not line.startswith(" "):
            break  # end of the input description ("At least one output file ...")

    video_size: tuple[int, int] | None = None
    video_codec = ""
    rate_text: str | None = None
    for kind, details, extra in blocks:
        if kind != "Video" or "(attached pic)" in details:
            continue
        size_match = _SIZE_RE.search(details)
        if size_match is None:
            continue
        width, height = int(size_match[1]), int(size_match[2])
        rotation = _ROTATION_RE.search("\n".join(extra))
        if rotation is not None and round(abs(float(rotation[1]))) % 180 == 90:
            width, height = height, width  # decoded upright (OpenCV orientation auto is on)
        video_size = (width, height)
        video_codec = details.split(" ", 1)[0].rstrip(",")
        rate_match = _FPS_RE.search(details) or _TBR_RE.search(details)
        rate_text = rate_match[1] if rate_match is not None else None
        break

    duration_match = _DURATION_RE.search(stderr)
    duration_s = None
    if duration_match is not None:
        hours, minutes, seconds = duration_match.groups()
        duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)

    return _StreamReport(
        input_format=input_match["format"],
        video_size=video_size,
        video_codec=video_codec,
        rate_text=rate_text,
        has_audio=any(kind == "Audio" for kind, _, _ in blocks),
        duration_s=duration_s,
    )


def _rate_to_fraction(value: Fraction, tolerance: float) -> Fraction:
    """Exact frame rate for an approximate one: integer and NTSC (N*1000/1001) rates win.

    29.97 -> 30000/1001, 25 -> 25, 12.5 -> 25/2; others limit_denominator(1001).
    """
    integer = round(value)
    if integer > 0 and abs(value - integer) <= tolerance:
        return Fraction(integer)
    ntsc = Fraction(round(value * Fraction(1001, 1000)) * 1000, 1001)
    if ntsc > 0 and abs(value - ntsc) <= tolerance:
        return ntsc
    return value.limit_denominator(_MAX_FPS_DENOMINATOR)


def _parse_rate_text(text: str) -> Fraction:
    """ffmpeg's printed rate ("29.97", "25", "1k") -> exact Fraction."""
    multiplier = 1000 if text.endswith("k") else 1
    value = Fraction(text.rstrip("k")) * multiplier
    if value.denominator == 1:
        return value
    return _rate_to_fraction(value, _PRINTED_RATE_TOLERANCE)


def _open_capture(path: Path) -> Any:
    """cv2.VideoCapture on the FFMPEG backend (never the image-sequence one), upright frames."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if capture.isOpened():
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def _measure_fps(path: Path) -> Fraction | None:
    """Frame rate from the decoded timestamps (CAP_PROP_POS_MSEC) of the first frames.

    None when fewer than two frames with increasing timestamps could be decoded.
    """
    capture = _open_capture(path)
    try:
        if not capture.isOpened():
            return None
        stamps_ms: list[float] = []
        while len(stamps_ms) < _MEASURE_FRAMES:
            ok, _ = capture.read()
            if not ok:
                break
            stamps_ms.append(float(capture.get(cv2.CAP_PROP_POS_MSEC)))
    finally:
        capture.release()
    if len(stamps_ms) < 2 or stamps_ms[-1] <= stamps_ms[0]:
        return None
    rate = Fraction(len(stamps_ms) - 1) * 1000 / Fraction(stamps_ms[-1] - stamps_ms[0])
    return _rate_to_fraction(rate, _MEASURED_RATE_TOLERANCE)


def _container_frame_count(path: Path) -> int:
    capture = _open_capture(path)
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return int(count) if count > 0 else 0


def _probe_report(path: Path, what: str) -> _StreamReport:
    _check_readable_file(path, what)
    stderr = _run_ffmpeg_probe(path, what)
    report = _parse_ffmpeg_streams(stderr)
    if report is None:
        reason = _ffmpeg_reason(stderr)
        raise VideoSourceError(
            f"{what} '{path}' could not be opened: it is not a media file ffmpeg can read, or it "
            f"is corrupt or truncated (ffmpeg: {reason}). Re-export or download it again, or "
            "choose another file."
        )
    return report


def _ffmpeg_reason(stderr: str) -> str:
    """The most telling line of a failed ffmpeg run."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower() or "invalid" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def has_audio_stream(path: str | Path) -> bool:
    """Whether a media file (video or audio-only) has at least one audio stream.

    Raises VideoSourceError when the file is missing or unreadable.
    """
    resolved = Path(path).expanduser().resolve()
    return _probe_report(resolved, "Media file").has_audio


def probe_video(path: str | Path) -> VideoInfo:
    """Size, exact frame rate, frame-count hint and audio presence of a video file.

    Raises VideoSourceError for a missing path, a directory, an empty, corrupt or non-media file,
    a text file, or a file without a video stream.
    """
    resolved = Path(path).expanduser().resolve()
    report = _probe_report(resolved, "Video file")
    if report.input_format == "tty" or report.video_codec == "ansi":
        raise VideoSourceError(
            f"Video file '{resolved}' is a text file, not a video. Pass a video file such as "
            "an .mp4 or .mov."
        )
    if report.video_size is None:
        content = "only audio" if report.has_audio else "no audio or video"
        raise VideoSourceError(
            f"Video file '{resolved}' contains no video stream ({content}). Pass a file with "
            "video in it."
        )

    fps: Fraction | None = None
    if report.rate_text is not None:
        fps = _parse_rate_text(report.rate_text)
    if fps is None or fps <= 0:
        logger.info("ffmpeg reports no frame rate for %s; measuring it from timestamps", resolved)
        fps = _measure_fps(resolved)
    if fps is None or fps <= 0:
        raise VideoSourceError(
            f"The frame rate of video file '{resolved}' cannot be determined (no rate in the "
            "container and too few decodable frames to measure it). Re-encode it with a "
            f"constant rate, e.g. `ffmpeg -i '{resolved}' -r 30 fixed.mp4`."
        )

    frame_count = _container_frame_count(resolved)
    if frame_count == 0 and report.duration_s is not None:
        frame_count = round(report.duration_s * fps)
    width, height = report.video_size
    return VideoInfo(
        path=resolved,
        width=width,
        height=height,
        fps=fps,
        frame_count_hint=frame_count,
        has_audio=report.has_audio,
    )


def _to_rgb(image: Any) -> ImageArray:
    """OpenCV BGR (or gray / BGRA) image -> (H, W, 3) uint8 RGB, C-contiguous."""
    if image.ndim == 2:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


class VideoFileSource:
    """Frames of a video file, decoded with OpenCV, timed by the exact rate from `probe_video`.

    Iterating yields `Frame`s: image (H, W, 3) uint8 RGB, index from 0, timestamp_s = index / fps.
    Each new iteration starts again from the first frame; do not interleave two iterations.
    Raises VideoSourceError on open when the file is unusable or has no decodable frame.
    """

    def __init__(self, path: str | Path, max_frames: int | None = None) -> None:
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        self.info: VideoInfo = probe_video(path)
        self.max_frames = max_frames
        self._closed = False
        self._capture = self._open()
        first = self._read()
        if first is None:
            self._capture.release()
            raise VideoSourceError(
                f"Video file '{self.info.path}' contains no decodable video frames (its "
                f"{self.info.width}x{self.info.height} stream could not be decoded; the file "
                "may be truncated or use an unsupported codec). Re-export it as H.264 .mp4."
            )
        height, width = first.shape[:2]
        if (width, height) != (self.info.width, self.info.height):
            logger.warning(
                "%s: decoded frames are %dx%d, ffmpeg reported %dx%d; using the decoded size",
                self.info.path,
                width,
                height,
                self.info.width,
                self.info.height,
            )
            self.info = dataclasses.replace(self.info, width=width, height=height)
        self._pending_first: Any = first

    def _open(self) -> Any:
        capture = _open_capture(self.info.path)
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(
                f"Video file '{self.info.path}' could be probed but not opened for decoding "
                "(unsupported codec?). Re-export it as H.264 .mp4."
            )
        return capture

    def _read(self) -> Any:
        ok, image = self._capture.read()
        return image if ok and image is not None else None

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise RuntimeError(f"VideoFileSource for '{self.info.path}' is closed")
        if self._pending_first is not None:
            image, self._pending_first = self._pending_first, None
        else:  # a new pass: start again from the first frame
            self._capture.release()
            self._capture = self._open()
            image = self._read()
        index = 0
        while image is not None and (self.max_frames is None or index < self.max_frames):
            yield Frame(
                image=_to_rgb(image),
                index=index,
                timestamp_s=float(index / self.info.fps),
            )
            index += 1
            image = self._read()
        hint = self.info.frame_count_hint
        if image is None and self.max_frames is None and hint > 0 and index < 0.9 * hint:
            logger.warning(
                "%s: decoding stopped after %d frames, the container announced %d; the file "
                "may be truncated",
                self.info.path,
                index,
                hint,
            )

    def close(self) -> None:
        """Release the decoder. Idempotent."""
        if not self._closed:
            self._closed = True
            self._pending_first = None
            self._capture.release()

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class CameraSource:
    """Live frames from a camera (cv2.VideoCapture(index)); use from one thread.

    `read()` returns a `Frame` (image (H, W, 3) uint8 RGB, index counting delivered frames from
    0, timestamp_s = time.monotonic() at arrival) or None when the camera delivered nothing.
    Iterating yields frames until `max_frames` or `max_failed_reads` consecutive failed reads.
    `measured_fps` is the arrival rate over the last `fps_window` frames (CAP_PROP_FPS lies).
    """

    def __init__(
        self,
        index: int,
        width: int | None = None,
        height: int | None = None,
        *,
        max_frames: int | None = None,
        max_failed_reads: int = 30,
        retry_delay_s: float = 0.05,
        fps_window: int = 30,
    ) -> None:
        if index < 0:
            raise ValueError(f"camera index must be >= 0, got {index}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        if max_failed_reads < 1:
            raise ValueError(f"max_failed_reads must be >= 1, got {max_failed_reads}")
        if fps_window < 2:
            raise ValueError(f"fps_window must be >= 2, got {fps_window}")
        self.index = index
        self.max_frames = max_frames
        self.max_failed_reads = max_failed_reads
        self.retry_delay_s = retry_delay_s
        self._arrivals: collections.deque[float] = collections.deque(maxlen=fps_window)
        self._frames_read = 0
        self._closed = False
        self._capture: Any = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            self._capture.release()
            raise VideoSourceError(
                f"No camera could be opened at index {index}. Check that the camera is "
                "connected, that no other application (video call, browser tab) is using it, "
                "and try another index (0 is usually the built-in camera), or pass a video "
                "file instead."
            )
        if width is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        actual = (
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if (width is not None and actual[0] != width) or (
            height is not None and actual[1] != height
        ):
            logger.warning(
                "camera %d: requested %sx%s, the camera delivers %dx%d",
                index,
                width,
                height,
                *actual,
            )
        logger.info("camera %d opened at %dx%d", index, *actual)

    @property
    def frames_read(self) -> int:
        """Frames delivered so far."""
        return self._frames_read

    @property
    def measured_fps(self) -> float | None:
        """Frames per second over the recent arrivals; None until two frames arrived."""
        if len(self._arrivals) < 2:
            return None
        span = self._arrivals[-1] - self._arrivals[0]
        return (len(self._arrivals) - 1) / span if span > 0 else None

    def read(self) -> Frame | None:
        """The next frame, or None when the camera returned none (busy, unplugged)."""
        if self._closed:
            raise RuntimeError(f"CameraSource {self.index} is closed")
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        now = _monotonic()
        self._arrivals.append(now)
        frame = Frame(image=_to_rgb(image), index=self._frames_read, timestamp_s=now)
        self._frames_read += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        delivered = 0
        failures = 0
        while self.max_frames is None or delivered < self.max_frames:
            frame = self.read()
            if frame is None:
                failures += 1
                if failures >= self.max_failed_reads:
                    if self._frames_read == 0:
                        raise VideoSourceError(
                            f"Camera {self.index} opened but delivered no frames. Another "
                            "application may be using it, or it needs a moment after "
                            "plugging in; close other video apps and try again, or pass a "
                            "video file instead."
                        )
                    logger.warning(
                        "camera %d: %d consecutive reads failed; stopping (unplugged?)",
                        self.index,
                        failures,
                    )
                    return
                time.sleep(self.retry_delay_s)
                continue
            failures = 0
            delivered += 1
            yield frame

    def close(self) -> None:
        """Release the camera. Idempotent."""
        if not self._closed:
            self._closed = True
            self._capture.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_source(spec: str, max_frames: int | None = None) -> VideoFileSource | CameraSource:
    """A camera when `spec` is all digits ("0" -> camera 0), else the video file at that path."""
    spec = spec.strip()
    if not spec:
        raise VideoSourceError(
            "No video source given. Pass a camera index such as 0 or a video file path."
        )
    if spec.isascii() and spec.isdigit():
        return CameraSource(int(spec), max_frames=max_frames)
    return VideoFileSource(spec, max_frames=max_frames)

"""Atomic H.264 video writer: RGB frames piped to the ffmpeg binary bundled with imageio-ffmpeg.

    with VideoWriter(out, size=(w, h), fps=info.fps, audio_from=info.path) as writer:
        for image in images:          # (h, w, 3) uint8 RGB
            writer.write(image)
    # `out` exists only now, complete; on an exception nothing is left behind.

Encoding: libx264, yuv420p (BT.601 matrix, limited range, tagged so players and OpenCV agree),
one output frame per written frame (`-fps_mode passthrough`, no duplication or dropping).
yuv420p needs even sizes: an odd width or height is padded by one pixel of edge replication
(the right column / bottom row is repeated), so the file is `output_size`, at most 1 px larger.

Audio: when `audio_from` has an audio stream, its first one is re-encoded to AAC and trimmed to
the video's duration (frames_written / fps) in a second, stream-copy pass over the finished
video; the video frames are never cut. Without an audio stream the output is silent.

Atomicity: ffmpeg writes hidden temporary files next to `path` (".NAME.TOKEN.partial.EXT");
`close()` renames the finished one over `path`. On an exception inside the `with` block, a
failed ffmpeg run, or `abort()`, the temporary files are removed and `path` is left untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import uuid
import weakref
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

import numpy as np

from engine.capture.video_source import ffmpeg_executable, has_audio_stream
from engine.errors import VideoSourceError, VideoWriteError

logger = logging.getLogger(__name__)

#: Containers that hold H.264 video and AAC audio.
SUPPORTED_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
_FASTSTART_SUFFIXES = (".mp4", ".m4v", ".mov")
_STDERR_TAIL_CHARS = 2000
_AUDIO_BITRATE = "192k"
# BT.601 limited range is what swscale (and OpenCV's reader) use by default; tag it explicitly.
_COLOR_ARGS = [
    "-vf",
    "scale=out_color_matrix=bt601:out_range=tv",
    "-colorspace",
    "smpte170m",
    "-color_range",
    "tv",
]


def _remove_quietly(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            logger.warning("could not remove temporary file %s: %s", path, err)


def _stop_and_clean(process: subprocess.Popen[bytes], paths: list[Path]) -> None:
    """Kill the encoder if it still runs and delete the temporary files (finalizer-safe)."""
    if process.poll() is None:
        process.kill()
    if process.stdin is not None:
        with contextlib.suppress(OSError):  # the pipe is already broken; nothing to flush
            process.stdin.close()
    process.wait()
    _remove_quietly(paths)


def _ffmpeg() -> str:
    try:
        return ffmpeg_executable()
    except VideoSourceError as err:
        raise VideoWriteError(str(err)) from err


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0)
    text = stream.read().decode("utf-8", errors="replace").strip()
    if len(text) > _STDERR_TAIL_CHARS:
        text = "..." + text[-_STDERR_TAIL_CHARS:]
    return text or "(ffmpeg printed nothing)"


class VideoWriter:
    """Writes (H, W, 3) uint8 RGB frames of one fixed size to an H.264 file, atomically.

    path: output file (.mp4, .m4v, .mov or .mkv); its directory must exist.
    size: (width, height) of the images passed to `write`.
    fps: exact frame rate, e.g. Fraction(30000, 1001); frame i is shown at i / fps.
    audio_from: a media file whose first audio stream is carried over (trimmed); None: silent.
    crf: x264 constant rate factor, 0 (lossless) to 51; 18 is visually lossless.
    preset: x264 speed preset ("ultrafast" ... "veryslow").
    Raises VideoWriteError for an unusable path, audio source or ffmpeg failure.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: Fraction | int,
        audio_from: str | Path | None = None,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            raise ValueError(f"size must be positive (width, height), got {size}")
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be within [0, 51], got {crf}")
        self.path = Path(path).expanduser().resolve()
        self.size = (width, height)
        self.fps = fps
        self.output_size = (width + width % 2, height + height % 2)
        self._check_output_path()
        self._audio_from = self._audio_source(audio_from)

        token = uuid.uuid4().hex[:8]
        stem = f".{self.path.name}.{token}"
        suffix = self.path.suffix
        self._partial = self.path.with_name(f"{stem}.partial{suffix}")
        self._video_only = (
            self.path.with_name(f"{stem}.video{suffix}") if self._audio_from else self._partial
        )
        self._temporaries = sorted({self._partial, self._video_only})
        self._frames_written = 0
        self._closed = False
        command = self._encode_command(crf, preset)
        # ffmpeg's stderr goes to a file (a pipe could fill up and block the encoder); it lives
        # as long as the writer, so no `with`.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
            )
        except OSError as err:
            self._stderr.close()
            raise VideoWriteError(
                f"Could not start ffmpeg to write '{self.path}' ({err}). Reinstall imageio-ffmpeg."
            ) from err
        self._finalizer = weakref.finalize(
            self, _stop_and_clean, self._process, list(self._temporaries)
        )
        logger.debug(
            "writing %s: %dx%d (encoded %dx%d) at %s fps, audio from %s",
            self.path,
            width,
            height,
            *self.output_size,
            fps,
            self._audio_from,
        )

    def _check_output_path(self) -> None:
        if self.path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise VideoWriteError(
                f"Cannot write '{self.path}': the extension '{self.path.suffix}' is not "
                f"supported. Use one of {', '.join(SUPPORTED_SUFFIXES)} (.mp4 recommended)."
            )
        directory = self.path.parent
        if not directory.is_dir():
            raise VideoWriteError(
                f"Cannot write '{self.path}': the output directory '{directory}' does not "
                "exist. Create it first or choose another output path."
            )
        if not os.access(directory, os.W_OK):
            raise VideoWriteError(
                f"Cannot write '{self.path}': the output directory '{directory}' is not "
                "writable. Check its permissions or choose another output path."
            )
        if self.path.is_dir():
            raise VideoWriteError(
                f"Cannot write '{self.path}': a directory of that name exists. Choose a file "
                "name such as out.mp4."
            )

    def _audio_source(self, audio_from: str | Path | None) -> Path | None:
        if audio_from is None:
            return None
        source = Path(audio_from).expanduser().resolve()
        try:
            has_audio = has_audio_stream(source)
        except VideoSourceError as err:
            raise VideoWriteError(
                f"Cannot carry audio into '{self.path}': {err} Or write without audio."
            ) from err
        if not has_audio:
            logger.info("%s has no audio stream; %s will be silent", source, self.path)
            return None
        return source

    def _encode_command(self, crf: int, preset: str) -> list[str]:
        width, height = self.output_size
        command = [
            _ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostats",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-framerate",
            f"{self.fps.numerator}/{self.fps.denominator}",
            "-i",
            "-",
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            *_COLOR_ARGS,
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv420p",
        ]
        if self._audio_from is None and self.path.suffix.lower() in _FASTSTART_SUFFIXES:
            command += ["-movflags", "+faststart"]
        return [*command, "-y", f"file:{self._video_only}"]

    def _mux_command(self) -> list[str]:
        assert self._audio_from is not None
        duration_s = Fraction(self._frames_written) / self.fps
        command = [
            _ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            f"file:{self._video_only}",
            "-i",
            f"file:{self._audio_from}",
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-af",
            f"atrim=end={float(duration_s):.6f}",
            "-c:a",
            "aac",
            "-b:a",
            _AUDIO_BITRATE,
        ]
        if self.path.suffix.lower() in _FASTSTART_SUFFIXES:
            command += ["-movflags", "+faststart"]
        return [*command, "-y", f"file:{self._partial}"]

    @property
    def frames_written(self) -> int:
        """Frames accepted by `write` so far."""
        return self._frames_written

    def write(self, image: Any) -> None:
        """Append one frame: (height, width, 3) uint8 RGB of exactly `size`.

        Raises ValueError for a wrong shape or dtype, VideoWriteError when ffmpeg has failed.
        """
        if self._closed:
            raise RuntimeError(f"VideoWriter for '{self.path}' is closed")
        width, height = self.size
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.shape != (height, width, 3)
        ):
            got = (
                f"shape {image.shape} dtype {image.dtype}"
                if isinstance(image, np.ndarray)
                else type(image).__name__
            )
            raise ValueError(
                f"VideoWriter for '{self.path}' expects (H, W, 3) = ({height}, {width}, 3) "
                f"uint8 RGB images, got {got}"
            )
        pad_w, pad_h = self.output_size[0] - width, self.output_size[1] - height
        if pad_w or pad_h:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        data = np.ascontiguousarray(image)
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data.data)
        except OSError as err:  # BrokenPipeError: ffmpeg exited
            self._process.wait()
            self._fail(f"ffmpeg stopped while encoding frame {self._frames_written} ({err})")
        self._frames_written += 1

    def _fail(self, what: str, stderr: str | None = None) -> NoReturn:
        """Abort (no output remains) and raise VideoWriteError with ffmpeg's stderr tail."""
        tail = stderr if stderr is not None else _tail(self._stderr)
        self.abort()
        message = (
            f"Writing '{self.path}' failed: {what}. No output file was created. Check free "
            "disk space and the output path."
        )
        raise VideoWriteError(f"{message} ffmpeg said:\n{tail}" if tail else message)

    def close(self) -> None:
        """Finish encoding, mux the audio, and move the file into place. Idempotent.

        Raises VideoWriteError when nothing was written or ffmpeg fails (no output is left).
        """
        if self._closed:
            return
        if self._frames_written == 0:
            self.abort()
            raise VideoWriteError(
                f"No frames were written to '{self.path}', so no video was created. Check "
                "that the input produced frames."
            )
        assert self._process.stdin is not None
        with contextlib.suppress(OSError):  # ffmpeg exited; its code and stderr explain why
            self._process.stdin.close()
        return_code = self._process.wait()
        if return_code != 0:
            self._fail(f"ffmpeg exited with code {return_code}")
        if self._audio_from is not None:
            self._mux_audio()
        try:
            os.replace(self._partial, self.path)
        except OSError as err:
            self._fail(f"the finished file could not be moved into place ({err})", stderr="")
        self._closed = True
        self._finalizer.detach()
        _remove_quietly(self._temporaries)  # the video-only pass, if any
        self._stderr.close()
        logger.info(
            "wrote %d frames (%.2f s) to %s",
            self._frames_written,
            self._frames_written / self.fps,
            self.path,
        )

    def _mux_audio(self) -> None:
        try:
            result = subprocess.run(
                self._mux_command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
        except OSError as err:
            self._fail(f"ffmpeg could not be started to add audio ({err})", stderr="")
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", errors="replace").strip()
            self._fail(
                f"adding the audio of '{self._audio_from}' failed (ffmpeg exit code "
                f"{result.returncode})",
                stderr=stderr[-_STDERR_TAIL_CHARS:],
            )

    def abort(self) -> None:
        """Stop encoding and delete the temporary files; `path` is left untouched. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()
        self._stderr.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

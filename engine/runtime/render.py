"""Headless rendering: each driving frame in, exactly one avatar frame out, at the driver's rate."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from engine.capture.video_source import CameraSource, VideoFileSource
from engine.capture.video_writer import VideoWriter
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Frame, OutputFrame

log = logging.getLogger(__name__)

CAMERA_RATE_FRAMES = 30  # frames used to measure a camera's real rate before encoding starts


@dataclass(frozen=True)
class RenderSummary:
    """frames: frames written. fps: the output rate. faces_lost: frames without a driver face."""

    out: Path
    frames: int
    fps: Fraction
    faces_lost: int


def _camera_rate(measured: float | None) -> Fraction:
    if not measured or measured <= 0:
        log.warning("camera rate could not be measured; writing at 30 fps")
        return Fraction(30)
    return Fraction(round(measured * 100), 100).limit_denominator(1001)


def render_video(
    pipeline: Pipeline,
    source: VideoFileSource | CameraSource,
    out: Path,
    controls: Controls | None = None,
    progress: bool = True,
    on_frame: Callable[[OutputFrame], None] | None = None,
) -> RenderSummary:
    """Drive `pipeline` with every frame of `source` and encode the avatar to `out`.

    A file's audio track is carried over. A camera's rate is measured over its first frames.
    """
    controls = controls or Controls()
    lost = 0
    frames: Iterator[Frame] = iter(source)
    if isinstance(source, VideoFileSource):
        fps = source.info.fps
        audio = source.info.path if source.info.has_audio else None
        total = source.info.frame_count_hint or None
        if source.max_frames is not None and total is not None:
            total = min(total, source.max_frames)
        head: list[OutputFrame] = []
    else:
        audio, total = None, None
        head = []
        for frame in frames:
            head.append(pipeline.process(frame, controls))
            if len(head) >= CAMERA_RATE_FRAMES:
                break
        fps = _camera_rate(source.measured_fps)
    h, w = pipeline.portrait.image.shape[:2]
    bar = tqdm(total=total, unit="frame", desc="render", disable=not progress, leave=False)
    with VideoWriter(out, size=(w, h), fps=fps, audio_from=audio) as writer:

        def emit(result: OutputFrame) -> None:
            nonlocal lost
            writer.write(result.image)
            lost += 0 if result.face_found else 1
            bar.update(1)
            if on_frame is not None:
                on_frame(result)

        for result in head:
            emit(result)
        for frame in frames:
            emit(pipeline.process(frame, controls))
        count = writer.frames_written
    bar.close()
    if lost:
        log.warning("no face in %d of %d driving frames (held, then eased to neutral)", lost, count)
    return RenderSummary(out=out, frames=count, fps=fps, faces_lost=lost)

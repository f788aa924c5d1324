"""`visage --self-test`: a few frames of the bundled sample clip through the real pipeline, checked.

It touches everything a first run needs (a bundled portrait, the sample clip, MediaPipe's graphs,
the shipped networks, ffmpeg for reading and encoding), so it proves an installation or a frozen
bundle (build.spec) works: frames come out at the right size, the driver's face is tracked, the
avatar moves and it shows the portrait, not the driving frame.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.capture.video_source import VideoFileSource, probe_video
from engine.landmarks.mediapipe_tracker import detect_faces
from engine.portrait import Portrait, prepare_portrait
from engine.runtime.neural import NeuralModels
from engine.runtime.pipeline import Pipeline
from engine.runtime.render import render_video
from engine.types import ImageArray, OutputFrame

log = logging.getLogger(__name__)

FRAMES = 30
SIZE = (512, 512)  # output (width, height)
MIN_FACE_SHARE = 0.8  # share of driving frames in which the driver's face must be tracked
MIN_MOTION = 1.0  # mean abs difference (0-255) across the head box between two avatar frames


@dataclass(frozen=True)
class SelfTestResult:
    """What the self-test measured.

    frames / encoded_frames: avatar frames rendered / found in the encoded video.
    size: (width, height) of the rendered frames; expected_size: what was asked for.
    faces_found: driving frames in which the driver's face was tracked.
    motion: largest mean abs difference over the head box between the first avatar frame and a
    later one. to_portrait / to_driver: mean abs difference between an avatar frame and the still
    portrait / the driving frame resized to the output size (averaged over the frames).
    avatar_face: whether MediaPipe finds a face in the middle avatar frame.
    engine_ms / wall_ms: median engine time per frame / wall time per frame from the first
    avatar frame to the last (decoding and encoding included, start-up not).
    backend, device: how the networks ran ("geometric path" without networks).
    """

    portrait: str
    clip: str
    frames: int
    encoded_frames: int
    size: tuple[int, int]
    expected_size: tuple[int, int]
    faces_found: int
    motion: float
    to_portrait: float
    to_driver: float
    avatar_face: bool
    engine_ms: float
    landmarks_ms: float
    networks_ms: float
    wall_ms: float
    backend: str
    device: str
    requested: int

    def problems(self) -> list[str]:
        """One line per failed check (empty: passed)."""
        out = []
        if self.frames != self.requested or self.encoded_frames != self.requested:
            out.append(
                f"expected {self.requested} frames, rendered {self.frames} "
                f"and encoded {self.encoded_frames}"
            )
        if self.size != self.expected_size:
            out.append(f"frames are {self.size[0]}x{self.size[1]}, expected {self.expected_size}")
        if self.faces_found < MIN_FACE_SHARE * self.requested:
            out.append(f"the driver's face was tracked in only {self.faces_found} frames")
        if self.motion < MIN_MOTION:
            out.append(f"the avatar does not move (largest change {self.motion:.2f})")
        if self.to_portrait >= self.to_driver:
            out.append(
                f"the output looks like the driving frames (distance {self.to_driver:.1f}) "
                f"more than the portrait ({self.to_portrait:.1f})"
            )
        if not self.avatar_face:
            out.append("no face found in the avatar")
        return out

    def report(self) -> list[str]:
        """The short human-readable report, one line per item."""
        w, h = self.size
        return [
            f"rendered {self.frames} frames {w}x{h} of {self.portrait} driven by {self.clip} "
            f"(encoded {self.encoded_frames})",
            f"networks: {self.backend}; device {self.device}",
            f"{self.engine_ms:.1f} ms/frame in the engine (median; landmarks "
            f"{self.landmarks_ms:.1f}, networks {self.networks_ms:.1f}), {self.wall_ms:.1f} "
            "ms/frame wall after the first frame (decoding and encoding included)",
            f"driver's face tracked in {self.faces_found}/{self.frames} frames; avatar motion "
            f"{self.motion:.1f}; distance to portrait {self.to_portrait:.1f} vs driver "
            f"{self.to_driver:.1f}; face in avatar: {'yes' if self.avatar_face else 'no'}",
        ]


def _mean_abs(a: ImageArray, b: ImageArray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _head_box(portrait: Portrait, image: ImageArray) -> ImageArray:
    box = portrait.box
    h, w = image.shape[:2]
    return image[
        max(box.y0, 0) : min(box.y0 + box.size, h), max(box.x0, 0) : min(box.x0 + box.size, w)
    ]


def _driving_frames(clip: Path, frames: int, size: tuple[int, int]) -> list[ImageArray]:
    with VideoFileSource(clip, max_frames=frames) as source:
        return [cv2.resize(f.image, size, interpolation=cv2.INTER_AREA) for f in source]


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _motion(portrait: Portrait, images: list[ImageArray]) -> float:
    if len(images) < 2:
        return 0.0
    first = _head_box(portrait, images[0])
    return max(_mean_abs(first, _head_box(portrait, i)) for i in images[1:])


def _distance(images: list[ImageArray], others: list[ImageArray]) -> float:
    """Mean over frame pairs of the mean abs difference (0 when there is nothing to compare)."""
    pairs = list(zip(images, others, strict=False))
    return float(np.mean([_mean_abs(a, b) for a, b in pairs])) if pairs else 0.0


def _shows_face(images: list[ImageArray]) -> bool:
    return bool(images) and len(detect_faces(images[len(images) // 2])) >= 1


def _backend(pipeline: Pipeline) -> str:
    if pipeline.neural is None:
        return "geometric path (no networks)"
    return f"{pipeline.neural.models.tier} tier, {pipeline.neural.backend_summary}"


@dataclass(frozen=True)
class _Rendered:
    outputs: list[OutputFrame]
    encoded: int  # frames found in the encoded file
    wall_ms: float  # per frame, first avatar frame to last


def _render(pipeline: Pipeline, clip: Path, frames: int) -> _Rendered:
    """The first `frames` frames of `clip` through `render_video`, encoded to a temporary file."""
    outputs: list[OutputFrame] = []
    stamps: list[float] = []

    def collect(frame: OutputFrame) -> None:
        stamps.append(time.perf_counter())
        outputs.append(frame)

    with tempfile.TemporaryDirectory(prefix="visage-self-test-") as tmp:
        out = Path(tmp) / "self_test.mp4"
        with VideoFileSource(clip, max_frames=frames) as source:
            render_video(pipeline, source, out, progress=False, on_frame=collect)
        encoded = probe_video(out).frame_count_hint
    wall = (stamps[-1] - stamps[0]) * 1000 / (len(stamps) - 1) if len(stamps) > 1 else 0.0
    return _Rendered(outputs, encoded, wall)


def run_self_test(
    portrait_path: Path,
    clip: Path,
    neural: NeuralModels | None,
    device: str = "cpu",
    backend: str = "auto",
    frames: int = FRAMES,
    size: tuple[int, int] = SIZE,
) -> SelfTestResult:
    """Render `frames` frames of `clip` driving `portrait_path` at `size` (W, H), encode them to a
    temporary file exactly as `visage render` does, and measure the result."""
    portrait = prepare_portrait(portrait_path, output_size=size)
    pipeline = Pipeline(portrait, neural=neural, device=device, backend=backend)
    try:
        rendered = _render(pipeline, clip, frames)
        backend_line = _backend(pipeline)
    finally:
        pipeline.close()
    images = [o.image for o in rendered.outputs]
    timings = [o.timings for o in rendered.outputs]
    return SelfTestResult(
        portrait=portrait_path.name,
        clip=clip.name,
        frames=len(images),
        encoded_frames=rendered.encoded,
        size=(images[0].shape[1], images[0].shape[0]) if images else (0, 0),
        expected_size=size,
        faces_found=sum(o.face_found for o in rendered.outputs),
        motion=_motion(portrait, images),
        to_portrait=_distance(images, [portrait.image] * len(images)),
        to_driver=_distance(images, _driving_frames(clip, frames, size)),
        avatar_face=_shows_face(images),
        engine_ms=_median([t.total_ms for t in timings]),
        landmarks_ms=_median([t.landmarks_ms for t in timings]),
        networks_ms=_median([t.warp_net_ms + t.fusion_ms + t.enhance_ms for t in timings]),
        wall_ms=rendered.wall_ms,
        backend=backend_line,
        device=device,
        requested=frames,
    )

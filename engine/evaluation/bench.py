"""`visage bench`: per-stage median milliseconds, end-to-end FPS and peak memory on a real clip."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.portrait import prepare_portrait
from engine.runtime.neural import NeuralModels
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Frame, StageTimings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    """Medians in ms per stage (decode included), FPS from the median total, sustained FPS from
    wall time, the 99th percentile of the frame time in ms (stalls), peak resident memory in MB."""

    label: str
    frames: int
    output_size: tuple[int, int]
    driving_size: tuple[int, int]
    decode_ms: float
    stages: StageTimings
    fps_median: float
    fps_sustained: float
    p99_ms: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def run_bench(
    portrait_path: Path,
    driving: Path,
    output_size: int = 512,
    driving_size: int = 256,
    frames: int = 300,
    warmup: int = 20,
    neural: NeuralModels | None = None,
    device: str = "cpu",
    backend: str = "auto",
    label: str = "geometric",
    open_source: Callable[[Path], AbstractContextManager[Iterable[Frame]]] = VideoFileSource,
) -> BenchResult:
    """Time `frames` frames after `warmup` (neural: None for the geometric path).
    open_source: how the driving clip is decoded (looped until `frames` are timed)."""
    portrait = prepare_portrait(portrait_path, output_size=(output_size, output_size))
    pipeline = Pipeline(portrait, neural=neural, device=device, backend=backend)
    if pipeline.neural is not None:
        label = f"{label}; {pipeline.neural.backend_summary}"
    controls = Controls()
    timings: list[StageTimings] = []
    decode: list[float] = []
    index = 0
    start = 0.0
    try:
        while len(timings) < frames:
            with open_source(driving) as source:
                it = iter(source)
                while len(timings) < frames:
                    t0 = time.perf_counter()
                    frame = next(it, None)
                    if frame is None:
                        break
                    image = frame.image
                    if image.shape[:2] != (driving_size, driving_size):
                        image = cv2.resize(
                            image, (driving_size, driving_size), interpolation=cv2.INTER_AREA
                        )
                    t1 = time.perf_counter()
                    out = pipeline.process(Frame(image, index, index / 30.0), controls)
                    index += 1
                    if index == warmup:
                        start = time.perf_counter()
                    if index > warmup:
                        decode.append((t1 - t0) * 1000)
                        timings.append(out.timings)
        wall = time.perf_counter() - start
    finally:
        pipeline.close()
    med = {
        f.name: float(np.median([getattr(t, f.name) for t in timings]))
        for f in fields(StageTimings)
    }
    decode_ms = float(np.median(decode))
    total = med["total_ms"] + decode_ms
    return BenchResult(
        label=label,
        frames=len(timings),
        output_size=(output_size, output_size),
        driving_size=(driving_size, driving_size),
        decode_ms=decode_ms,
        stages=StageTimings(**med),
        fps_median=1000.0 / total,
        fps_sustained=len(timings) / wall,
        p99_ms=float(
            np.percentile([t.total_ms + d for t, d in zip(timings, decode, strict=True)], 99)
        ),
        peak_rss_mb=peak_rss_mb(),
    )


def format_bench(result: BenchResult, portrait: str, driving: str) -> str:
    s = result.stages
    rows = [
        ("decode + resize", result.decode_ms),
        ("landmarks (MediaPipe + smoothing)", s.landmarks_ms),
        ("motion (pose + expression)", s.motion_ms),
        ("flow (retarget + mesh raster)", s.flow_ms),
        ("warp net", s.warp_net_ms),
        ("ID-fusion net", s.fusion_ms),
        ("temporal enhancer", s.enhance_ms),
        ("full-res remap (+ mouth fill or net residual)", s.warp_ms),
        ("paste-back", s.paste_ms),
        ("end to end", s.total_ms + result.decode_ms),
    ]
    lines = [
        f"## {result.label}",
        "",
        f"portrait {portrait} -> {result.output_size[0]}x{result.output_size[1]}, "
        f"driving {driving} at {result.driving_size[0]}x{result.driving_size[1]}, "
        f"{result.frames} frames",
        "",
        "| stage | median ms |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in rows]
    lines += [
        "",
        f"end-to-end FPS (1000 / median frame time): {result.fps_median:.1f}",
        f"sustained FPS (frames / wall time): {result.fps_sustained:.1f}",
        f"slowest frames (99th percentile of the frame time): {result.p99_ms:.1f} ms",
        f"peak memory (max RSS): {result.peak_rss_mb:.0f} MB",
    ]
    return "\n".join(lines)

"""`visage bench`: per-stage median milliseconds, end-to-end FPS and peak memory on a real clip."""

from __future__ import annotations

import functools
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.portrait import prepare_portrait
from engine.runtime.finisher import Finisher, split_cores
from engine.runtime.neural import NeuralModels
from engine.runtime.pipeline import BegunFrame, Pipeline
from engine.types import Controls, Frame, StageTimings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    """The app's two-thread frame loop (engine.runtime.finisher) timed on a clip.

    stages: per-stage medians in ms; stages.total_ms is a frame's work on both threads.
    decode_ms: median decode + resize. interval_ms: median time between finished frames, and
    fps_median = 1000 / interval_ms. fps_sustained: frames / wall time. p99_ms: the 99th
    percentile of the time between finished frames (stalls). latency_ms: median time from a
    frame's begin to its finish. peak_rss_mb: peak resident memory. pinned: both threads ran
    with their torch threads pinned (engine.runtime.affinity)."""

    label: str
    frames: int
    output_size: tuple[int, int]
    driving_size: tuple[int, int]
    decode_ms: float
    stages: StageTimings
    interval_ms: float
    fps_median: float
    fps_sustained: float
    p99_ms: float
    latency_ms: float
    peak_rss_mb: float
    pinned: bool = False


@dataclass(frozen=True)
class _Timed:
    """One finished frame: its stage timings, decode ms, begin start and finish end (s)."""

    timings: StageTimings
    decode_ms: float
    began_s: float
    done_s: float


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
    split_cores: bool = True,
) -> BenchResult:
    """Time `frames` frames after `warmup` (neural: None for the geometric path).
    open_source: how the driving clip is decoded (looped until `frames` are timed).
    split_cores: when the networks run on the CPU, give each thread half the cores, pinned,
    as the app does (engine.runtime.affinity)."""
    portrait = prepare_portrait(portrait_path, output_size=(output_size, output_size))
    pipeline = Pipeline(portrait, neural=neural, device=device, backend=backend)
    if pipeline.neural is not None:
        label = f"{label}; {pipeline.neural.backend_summary}"
    split = split_cores and pipeline.neural is not None and device == "cpu"
    try:
        # A fresh thread, like the app's processing thread: its cores are set before its
        # first torch work.
        with ThreadPoolExecutor(1, thread_name_prefix="visage-bench") as pool:
            loop = pool.submit(
                _time_frames, pipeline, driving, driving_size, frames + warmup, open_source, split
            )
            timed, pinned = loop.result()
    finally:
        pipeline.close()
    timed = timed[warmup:]
    med = {
        f.name: float(np.median([getattr(t.timings, f.name) for t in timed]))
        for f in fields(StageTimings)
    }
    done = np.array([t.done_s for t in timed])
    intervals = np.diff(done) * 1000
    interval = float(np.median(intervals))
    return BenchResult(
        label=label,
        frames=len(timed),
        output_size=(output_size, output_size),
        driving_size=(driving_size, driving_size),
        decode_ms=float(np.median([t.decode_ms for t in timed])),
        stages=StageTimings(**med),
        interval_ms=interval,
        fps_median=1000.0 / interval,
        fps_sustained=(len(timed) - 1) / float(done[-1] - done[0]),
        p99_ms=float(np.percentile(intervals, 99)),
        latency_ms=float(np.median([(t.done_s - t.began_s) * 1000 for t in timed])),
        peak_rss_mb=peak_rss_mb(),
        pinned=pinned,
    )


def _time_frames(
    pipeline: Pipeline,
    driving: Path,
    driving_size: int,
    frames: int,
    open_source: Callable[[Path], AbstractContextManager[Iterable[Frame]]],
    split: bool,
) -> tuple[list[_Timed], bool]:
    """The frame loop: this thread decodes and begins frames, a Finisher finishes them.
    Returns every frame in order, and whether both threads' torch threads were pinned."""
    errors: list[Exception] = []
    finisher = Finisher(errors.append, name="visage-bench-finishing")
    finisher.start()
    pinnings = split_cores(finisher) if split else []
    controls = Controls()
    timed: list[_Timed] = []

    def finish(begun: BegunFrame, decode_ms: float, began: float) -> None:
        out = pipeline.finish(begun)
        timed.append(_Timed(out.timings, decode_ms, began, time.perf_counter()))

    index = 0
    try:
        while index < frames and not errors:
            with open_source(driving) as source:
                frames_in = iter(source)
                while index < frames and not errors:
                    t0 = time.perf_counter()
                    frame = next(frames_in, None)
                    if frame is None:
                        break
                    image = frame.image
                    if image.shape[:2] != (driving_size, driving_size):
                        image = cv2.resize(
                            image, (driving_size, driving_size), interpolation=cv2.INTER_AREA
                        )
                    t1 = time.perf_counter()
                    begun = pipeline.begin(Frame(image, index, index / 30.0), controls)
                    job = functools.partial(finish, begun, (t1 - t0) * 1000, t1)
                    _hand_over(finisher, job)
                    index += 1
        finisher.wait_idle()
    finally:
        finisher.stop()
    if errors:
        raise errors[0]
    return timed, len(pinnings) == 2 and all(p is not None for p in pinnings)


def _hand_over(finisher: Finisher, job: Callable[[], object]) -> None:
    """Submit `job`, waiting as long as the finishing thread needs (the bench drops nothing)."""
    while not finisher.submit(job, timeout=60.0):
        log.warning("the finishing thread has been busy for a minute")


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
    threads = "half the cores each, pinned" if result.pinned else "unpinned"
    lines += [
        "",
        "end to end: one frame's work on the loop's two threads (begin | finish, "
        f"{threads}); they overlap, so frames come faster than that:",
        f"FPS (1000 / median time between frames): {result.fps_median:.1f} "
        f"({result.interval_ms:.1f} ms)",
        f"sustained FPS (frames / wall time): {result.fps_sustained:.1f}",
        f"slowest frames (99th percentile of the time between frames): {result.p99_ms:.1f} ms",
        f"latency (median, a frame's begin to its finish): {result.latency_ms:.1f} ms",
        f"peak memory (max RSS): {result.peak_rss_mb:.0f} MB",
    ]
    return "\n".join(lines)

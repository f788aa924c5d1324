"""One frame through the engine.

landmarks -> smoothing -> motion -> retarget -> flow -> warp -> paste.

The stages are wired here and nowhere else. `Pipeline.process` is for driving frames,
`Pipeline.render_motion` for a Motion that did not come from a camera (tests, sample making).
Both come in two halves, `begin` and `finish` (`begin_render`, `finish_render`), which touch
disjoint state: the live loop runs them on two threads, one frame apart
(engine.runtime.finisher).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.config import EngineConfig
from engine.errors import ConfigError
from engine.geometry.deform import mesh_backward_map
from engine.geometry.mesh import warp_mesh
from engine.geometry.mouth import paint_mouth_interior
from engine.geometry.paste import clip_region, feather_mask, paste
from engine.geometry.warp import region_map, remap
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.smoothing import LandmarkSmoother
from engine.landmarks.topology import inter_ocular, load_topology
from engine.models.tiers import CROP
from engine.motion.decompose import MotionEstimator
from engine.motion.presence import PresenceGate
from engine.motion.retarget import retarget
from engine.portrait import Portrait
from engine.runtime.neural import NeuralModels, NeuralRenderer, NeuralWarp
from engine.types import Controls, Frame, ImageArray, Landmarks, Motion, OutputFrame, StageTimings

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BegunRender:
    """A motion between the two halves of rendering. target: (478, 3) target landmarks in
    image coordinates. grid_map: (G, G, 2) geometric backward map in grid pixels (G: the
    portrait's grid). neural: the warp net's result (None: the geometric path). flow_ms: wall
    time of the retarget and flow."""

    target: F64
    grid_map: npt.NDArray[np.float32]
    neural: NeuralWarp | None
    flow_ms: float


@dataclass(frozen=True)
class BegunFrame:
    """A driving frame after `Pipeline.begin`: its index, whether a face was found, the motion
    weight used, the first stages' wall times (begin_ms: all of `begin`), and the render to
    finish."""

    index: int
    face_found: bool
    presence: float
    landmarks_ms: float
    motion_ms: float
    begin_ms: float
    render: BegunRender


@dataclass(frozen=True)
class Rendered:
    """image: (H, W, 3) uint8 output. target: (478, 3) target landmarks in image coordinates.
    *_ms: per-stage wall times (warp_ms: the full-resolution warp, without the networks)."""

    image: ImageArray
    target: F64
    flow_ms: float
    warp_ms: float
    paste_ms: float
    warp_net_ms: float = 0.0
    fusion_ms: float = 0.0
    enhance_ms: float = 0.0


class Pipeline:
    """Animates one portrait from a stream of driving frames. Not thread-safe: one owner thread."""

    def __init__(
        self,
        portrait: Portrait,
        config: EngineConfig | None = None,
        neural: NeuralModels | None = None,
        device: str = "cpu",
        backend: str = "auto",
    ) -> None:
        """neural: the networks to run (None: the geometric path). device/backend: where and
        how they run (engine.runtime.compile picks and reports the backend)."""
        self.portrait = portrait
        self.config = config or EngineConfig()
        self._topo = load_topology()
        self._mesh = warp_mesh()
        self._canonical_extent = self._topo.canonical_extent()
        self._tracker: FaceTracker | None = None
        self._smoother = LandmarkSmoother()
        self._motion = MotionEstimator(self._topo, auto_frames=self.config.neutral_frames)
        self._gate = PresenceGate(self.config.hold_s, self.config.ease_out_s, self.config.ease_in_s)
        box = portrait.box
        h, w = portrait.image.shape[:2]
        self._region = clip_region(box.x0, box.y0, box.size, w, h)
        self._mask = feather_mask(box.size, max(1, round(self.config.feather * box.size)))
        self.last_landmarks: Landmarks | None = None
        self.neural: NeuralRenderer | None = None
        if neural is not None:
            if self.config.grid != CROP:
                raise ConfigError(f"the networks need grid={CROP}, got {self.config.grid}")
            self.neural = NeuralRenderer(portrait, neural, self._region, device, backend)

    # -- driving ------------------------------------------------------------------------------
    def calibrate(self) -> None:
        """The next tracked frames become the driver's neutral face."""
        self._motion.calibrate()

    def set_neutral(self, landmarks: Landmarks) -> None:
        self._motion.set_neutral(landmarks)

    def neutral_from(self, frame: Frame, repeats: int = 3) -> Landmarks | None:
        """Set the neutral face from one still frame; returns its landmarks (None: no face).

        MediaPipe's first answer comes from its detector and the next ones from its tracker,
        which differ by a few pixels: the frame is tracked `repeats` times so that the neutral
        is measured the way the following frames will be.
        """
        tracker = self._face_tracker()
        landmarks = None
        for _ in range(repeats):
            landmarks = tracker.track(frame.image)
        if landmarks is not None:
            self._smoother.reset()
            self._motion.set_neutral(landmarks)
        return landmarks

    @property
    def calibrated(self) -> bool:
        return self._motion.calibrated

    def adopt_driver(self, previous: Pipeline) -> None:
        """Continue the driver's stream of `previous` (another portrait, or the same portrait
        with networks): its face tracker, smoothing, neutral face and presence state move here,
        so a portrait switch neither restarts MediaPipe nor loses the calibration. `previous`
        must not process frames afterwards (close it)."""
        self._tracker, previous._tracker = previous._tracker, None
        self._smoother = previous._smoother
        self._motion = previous._motion
        self._gate = previous._gate
        self.last_landmarks = previous.last_landmarks

    def _face_tracker(self) -> FaceTracker:
        """The stream tracker, created on first use (MediaPipe is slow to start)."""
        if self._tracker is None:
            self._tracker = FaceTracker()
        return self._tracker

    def track(self, frame: Frame, smoothing: float) -> Landmarks | None:
        """Smoothed driver landmarks for one frame, or None when no face is visible."""
        raw = self._face_tracker().track(frame.image)
        if raw is None:
            self._smoother.reset()
            return None
        self._smoother.set_strength(smoothing)
        pts = self._smoother(raw.points, inter_ocular(raw.points), frame.timestamp_s)
        return Landmarks(points=pts, image_size=raw.image_size)

    def drive(self, landmarks: Landmarks | None, timestamp_s: float) -> Motion:
        """The motion to render for one frame's smoothed driver landmarks (None: no face
        found): relative to the neutral face, through the presence gate."""
        self.last_landmarks = landmarks
        motion = self._motion.estimate(landmarks) if landmarks is not None else None
        return self._gate.update(motion, timestamp_s)

    def process(self, frame: Frame, controls: Controls) -> OutputFrame:
        """One driving frame to one avatar frame: `finish(begin(frame, controls))`."""
        return self.finish(self.begin(frame, controls))

    def begin(self, frame: Frame, controls: Controls) -> BegunFrame:
        """The first half of `process`: landmarks, motion, flow (and the warp net). The frame
        loop may run it for the next frame while another thread finishes this one; frames
        must reach `finish` in the order they began."""
        t0 = time.perf_counter()
        landmarks = self.track(frame, controls.smoothing)
        t1 = time.perf_counter()
        gated = self.drive(landmarks, frame.timestamp_s)
        t2 = time.perf_counter()
        render = self.begin_render(gated, controls)
        return BegunFrame(
            index=frame.index,
            face_found=landmarks is not None,
            presence=gated.presence,
            landmarks_ms=(t1 - t0) * 1000,
            motion_ms=(t2 - t1) * 1000,
            begin_ms=(time.perf_counter() - t0) * 1000,
            render=render,
        )

    def finish(self, begun: BegunFrame) -> OutputFrame:
        """The second half of `process`: fusion (and enhancer), full-resolution warp, paste.
        Touches nothing that `begin` uses, so the two may run on different threads."""
        t0 = time.perf_counter()
        out = self.finish_render(begun.render)
        finish_ms = (time.perf_counter() - t0) * 1000
        timings = StageTimings(
            landmarks_ms=begun.landmarks_ms,
            motion_ms=begun.motion_ms,
            flow_ms=out.flow_ms,
            warp_ms=out.warp_ms,
            warp_net_ms=out.warp_net_ms,
            fusion_ms=out.fusion_ms,
            enhance_ms=out.enhance_ms,
            paste_ms=out.paste_ms,
            total_ms=begun.begin_ms + finish_ms,
        )
        return OutputFrame(
            image=out.image,
            index=begun.index,
            face_found=begun.face_found,
            presence=begun.presence,
            timings=timings,
        )

    # -- rendering ----------------------------------------------------------------------------
    def target_landmarks(self, motion: Motion, controls: Controls) -> F64:
        """(478, 3) target landmarks in output-image coordinates."""
        return retarget(self.portrait.face, self._canonical_extent, motion, controls)

    def render_motion(self, motion: Motion, controls: Controls) -> Rendered:
        """The avatar frame for one motion: `finish_render(begin_render(motion, controls))`."""
        return self.finish_render(self.begin_render(motion, controls))

    def begin_render(self, motion: Motion, controls: Controls) -> BegunRender:
        """Target landmarks and the geometric flow, and on the neural path the warp net."""
        p = self.portrait
        t0 = time.perf_counter()
        target = self.target_landmarks(motion, controls)
        target_grid = np.concatenate([p.box.to_grid(target[:, :2], p.grid), target[:, 2:]], 1)
        grid_map = mesh_backward_map(
            p.source_grid, p.follow, target_grid, self._mesh, self._topo, p.grid
        )
        flow_ms = (time.perf_counter() - t0) * 1000
        neural = None
        if self.neural is not None:
            neural = self.neural.begin(grid_map, target_grid, painted=self.config.mouth_fill)
        return BegunRender(target, grid_map, neural, flow_ms)

    def finish_render(self, begun: BegunRender) -> Rendered:
        """The full-resolution region (the networks' fusion and composite, or the geometric
        remap and mouth fill) pasted into the portrait."""
        p = self.portrait
        t1 = time.perf_counter()
        paint = None
        if self.config.mouth_fill:
            paint = functools.partial(self._fill_mouth, target=begun.target)
        nets = (0.0, 0.0, 0.0)
        if begun.neural is not None:
            assert self.neural is not None
            frame = self.neural.finish(begun.neural, paint)
            warped = frame.region
            nets = (frame.warp_ms, frame.fusion_ms, frame.enhance_ms)
        else:
            box = p.box
            map_x, map_y = region_map(begun.grid_map, box.x0, box.y0, box.size, self._region)
            warped = remap(p.image, map_x, map_y)
            if paint is not None:
                paint(warped)
        t2 = time.perf_counter()
        image = p.image.copy()
        paste(image, warped, self._region, (p.box.x0, p.box.y0), self._mask)
        t3 = time.perf_counter()
        return Rendered(
            image=image,
            target=begun.target,
            flow_ms=begun.flow_ms,
            warp_ms=(t2 - t1) * 1000 - nets[1] - nets[2],
            paste_ms=(t3 - t2) * 1000,
            warp_net_ms=nets[0],
            fusion_ms=nets[1],
            enhance_ms=nets[2],
        )

    def _fill_mouth(self, warped: ImageArray, *, target: F64) -> None:
        loop = self._topo.lips_inner
        offset = np.array(self._region[:2], dtype=np.float64)
        src_loop = self.portrait.landmarks.points[loop, :2].astype(np.float64) - offset
        paint_mouth_interior(warped, src_loop, target[loop, :2] - offset, self.portrait.mouth_color)

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

"""Checks on the ~30 s recording that personalization learns from.

Recorded frames are first scaled down (`scaled`, the long side at most MAX_SIDE). Per frame
(`assess_frame`, also the app's live guidance): exactly one face, large enough, lit well
enough; the head's yaw and pitch. Over the recording (`check_recording`): long enough,
the face seen in most frames, and enough pose, mouth and eye movement to learn from. Every
rejection says what to do about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.landmarks.topology import eye_opening, inter_ocular, load_topology, mouth_opening
from engine.motion.head import fit_head_pose
from engine.types import ImageArray, Landmarks

# What the recording guides the user through, in order, with seconds for each.
GUIDANCE: tuple[tuple[str, float], ...] = (
    ("Look straight at the camera, face relaxed", 4.0),
    ("Turn your head slowly to the left", 3.0),
    ("Now slowly to the right", 3.0),
    ("Look up, then down", 4.0),
    ("Talk: count out loud from one to ten", 7.0),
    ("Smile, then relax", 3.0),
    ("Blink a few times", 3.0),
    ("Look straight at the camera again", 3.0),
)
RECORD_SECONDS = sum(s for _, s in GUIDANCE)

MAX_SIDE = 720  # recorded frames are scaled down to this long side (memory; crops are 256²)
MIN_IOD_FRACTION = 0.06  # inter-ocular distance / image width: smaller is too far away
MIN_BRIGHTNESS = 50.0  # mean face luma (0-255)
MAX_BRIGHTNESS = 225.0
MIN_SECONDS = 10.0
MIN_FACE_FRACTION = 0.8
MIN_YAW_RANGE = 12.0  # degrees (5th to 95th percentile)
MIN_PITCH_RANGE = 6.0
MIN_MOUTH_RANGE = 0.12  # mouth opening / IOD
MIN_EYE_RANGE = 0.08  # lid gap / eye width


def scaled(image: ImageArray, max_side: int = MAX_SIDE) -> ImageArray:
    """A copy of `image` with its long side at most `max_side` (area-averaged)."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image.copy()
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


@dataclass(frozen=True)
class FrameCheck:
    """One frame. faces: faces found. The rest describe the largest face (NaN without one):
    size: IOD / image width; brightness: mean luma of the face box; yaw/pitch in degrees;
    mouth / eyes: opening ratios (engine.landmarks.topology)."""

    faces: int
    size: float = math.nan
    brightness: float = math.nan
    yaw: float = math.nan
    pitch: float = math.nan
    mouth: float = math.nan
    eyes: float = math.nan

    @property
    def problems(self) -> tuple[str, ...]:
        """What is wrong with this frame, as instructions (empty: fine)."""
        if self.faces == 0:
            return ("No face in view: sit in front of the camera.",)
        out = []
        if self.faces > 1:
            out.append("More than one face in view: only you should be in the picture.")
        if self.size < MIN_IOD_FRACTION:
            out.append("Your face is small in the picture: move closer to the camera.")
        if self.brightness < MIN_BRIGHTNESS:
            out.append("Too dark: face a window or a lamp.")
        elif self.brightness > MAX_BRIGHTNESS:
            out.append("Too bright: move away from the light behind the camera.")
        return tuple(out)


def head_angles(points: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of the head whose (478, 3) landmarks are given."""
    rot = fit_head_pose(points.astype(np.float64), load_topology()).rotation
    forward = rot[:, 2]  # the canonical face's depth axis, in the image
    yaw = math.degrees(math.atan2(forward[0], forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    return yaw, pitch


def assess_frame(image: ImageArray, faces: Sequence[Landmarks]) -> FrameCheck:
    """Check one (H, W, 3) uint8 frame given the faces found in it (largest first)."""
    if not faces:
        return FrameCheck(0)
    pts = faces[0].points
    h, w = image.shape[:2]
    x0, y0 = np.floor(pts[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts[:, :2].max(axis=0)).astype(int)
    box = image[max(0, y0) : max(0, min(h, y1)), max(0, x0) : max(0, min(w, x1))]
    luma = float((box @ np.array([0.299, 0.587, 0.114])).mean()) if box.size else math.nan
    yaw, pitch = head_angles(pts)
    return FrameCheck(
        faces=len(faces),
        size=inter_ocular(pts) / w,
        brightness=luma,
        yaw=yaw,
        pitch=pitch,
        mouth=mouth_opening(pts),
        eyes=eye_opening(pts),
    )


@dataclass(frozen=True)
class RecordingReport:
    """ok: usable. reasons: why not (instructions). usable: indices of the frames to learn from
    (exactly one face, no frame problems). The ranges are over the usable frames."""

    ok: bool
    reasons: tuple[str, ...]
    usable: tuple[int, ...]
    seconds: float
    yaw_range: float
    pitch_range: float
    mouth_range: float
    eye_range: float


def spread(values: Sequence[float]) -> float:
    """Robust range: 95th minus 5th percentile (0 for fewer than 2 values)."""
    if len(values) < 2:
        return 0.0
    lo, hi = np.percentile(values, [5, 95])
    return float(hi - lo)


@dataclass(frozen=True)
class Coverage:
    """How far the head turned (yaw) and nodded (pitch), in degrees, and how much the mouth and
    eyes moved, over a recording's good frames (robust ranges, see `spread`)."""

    yaw: float
    pitch: float
    mouth: float
    eyes: float

    @property
    def missing(self) -> tuple[str, ...]:
        """What to do for the movements still short of the minimum (empty: all covered)."""
        out = []
        if self.yaw < MIN_YAW_RANGE:
            out.append("Turn your head further to the left and to the right.")
        if self.pitch < MIN_PITCH_RANGE:
            out.append("Look further up and down.")
        if self.mouth < MIN_MOUTH_RANGE:
            out.append("Talk or smile during the recording so that your mouth moves.")
        if self.eyes < MIN_EYE_RANGE:
            out.append("Blink a few times during the recording.")
        return tuple(out)

    @property
    def text(self) -> str:
        """One line for a live display, e.g. "side to side 8/12° · up and down 6/6° ✓ · ..."."""

        def mark(ok: bool) -> str:
            return " ✓" if ok else ""

        return (
            f"side to side {self.yaw:.0f}/{MIN_YAW_RANGE:.0f}°{mark(self.yaw >= MIN_YAW_RANGE)}"
            f" · up and down {self.pitch:.0f}/{MIN_PITCH_RANGE:.0f}°"
            f"{mark(self.pitch >= MIN_PITCH_RANGE)}"
            f" · mouth{mark(self.mouth >= MIN_MOUTH_RANGE)} · blinks"
            f"{mark(self.eyes >= MIN_EYE_RANGE)}"
        )


def coverage(checks: Sequence[FrameCheck]) -> Coverage:
    """The movement covered by the frames with one clear face among `checks`."""
    good = [c for c in checks if c.faces == 1 and not c.problems]
    return Coverage(
        yaw=spread([c.yaw for c in good]),
        pitch=spread([c.pitch for c in good]),
        mouth=spread([c.mouth for c in good]),
        eyes=spread([c.eyes for c in good]),
    )


def check_recording(checks: Sequence[FrameCheck], fps: float) -> RecordingReport:
    """Judge a whole recording from its frames' checks."""
    seconds = len(checks) / fps if fps > 0 else 0.0
    usable = tuple(i for i, c in enumerate(checks) if c.faces == 1 and not c.problems)
    covered = coverage(checks)
    reasons: list[str] = []
    if seconds < MIN_SECONDS:
        reasons.append(
            f"The recording is {seconds:.1f} s long; record at least {MIN_SECONDS:.0f} s "
            f"(about {RECORD_SECONDS:.0f} s is best)."
        )
    if checks and len(usable) < MIN_FACE_FRACTION * len(checks):
        counts: dict[str, int] = {}
        for c in checks:
            for p in c.problems[:1]:
                counts[p] = counts.get(p, 0) + 1
        worst = max(counts, key=lambda k: counts[k]) if counts else ""
        reasons.append(
            f"Only {len(usable)} of {len(checks)} frames show one clear face. {worst}".strip()
        )
    if usable:
        reasons.extend(covered.missing)
    return RecordingReport(
        ok=not reasons,
        reasons=tuple(reasons),
        usable=usable,
        seconds=seconds,
        yaw_range=covered.yaw,
        pitch_range=covered.pitch,
        mouth_range=covered.mouth,
        eye_range=covered.eyes,
    )

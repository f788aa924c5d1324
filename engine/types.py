"""Frozen dataclasses passed between stages. Arrays are numpy; shapes are documented per field.

Conventions: images are RGB uint8, shape (H, W, 3), C-contiguous. Landmark coordinates are
pixels of the image they were detected in: x right, y down, z towards the viewer scaled like x
(MediaPipe's convention: z is relative depth, same units as x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    """One driving frame.

    image: (H, W, 3) uint8 RGB.
    index: 0-based position in its stream.
    timestamp_s: presentation time in seconds (file: from the container; camera: monotonic clock).
    """

    image: ImageArray
    index: int
    timestamp_s: float


@dataclass(frozen=True)
class Landmarks:
    """Dense face landmarks of one face.

    points: (478, 3) float32 pixel coordinates (x, y, z); 468 mesh points then 10 iris points.
    image_size: (width, height) of the image they were detected in.
    """

    points: FloatArray
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        if self.points.shape != (478, 3):
            raise ValueError(f"Landmarks.points must be (478, 3), got {self.points.shape}")


@dataclass(frozen=True)
class HeadPose:
    """A similarity transform from the canonical face to image space: p = scale * R @ c + t.

    rotation: (3, 3) float64 orthonormal, det +1.
    translation: (3,) float64 pixels.
    scale: float, pixels per canonical unit.
    """

    rotation: npt.NDArray[np.float64]
    translation: npt.NDArray[np.float64]
    scale: float


@dataclass(frozen=True)
class Motion:
    """The driver's motion relative to the driver's own neutral face.

    rotation: (3, 3) relative head rotation R_driver @ R_neutral^T.
    translation: (3,) head translation in units of the driver's neutral face scale.
    scale_ratio: driver scale / neutral scale (moving closer to the camera > 1).
    expression: (478, 3) float32 displacement in canonical units, already normalized to the
        canonical face's proportions (so the driver's face shape does not leak).
    presence: 1.0 while tracking; falls to 0.0 when the face is lost (ease back to neutral).
    """

    rotation: npt.NDArray[np.float64]
    translation: npt.NDArray[np.float64]
    scale_ratio: float
    expression: FloatArray
    presence: float = 1.0

    @staticmethod
    def neutral() -> Motion:
        return Motion(
            rotation=np.eye(3),
            translation=np.zeros(3),
            scale_ratio=1.0,
            expression=np.zeros((478, 3), np.float32),
            presence=0.0,
        )


@dataclass(frozen=True)
class Controls:
    """User controls, sent as immutable snapshots.

    expression_strength: 0 = no expression, 1 = as the driver, up to 2 = exaggerated.
    pose_strength: 0 = portrait keeps its pose, 1 = follows the driver's head, up to 2.
    smoothing: 0 = raw landmarks, 1 = heavy smoothing (One-Euro min cutoff from 8 Hz to 0.5 Hz).
    """

    expression_strength: float = 1.0
    pose_strength: float = 1.0
    smoothing: float = 0.5

    def __post_init__(self) -> None:
        for name in ("expression_strength", "pose_strength"):
            value = getattr(self, name)
            if not 0.0 <= value <= 2.0:
                raise ValueError(f"{name} must be within [0, 2], got {value}")
        if not 0.0 <= self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be within [0, 1], got {self.smoothing}")


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent in each stage for one frame (0 where a stage did not run).

    warp_ms: the full-resolution remap (+ mouth fill, or the neural composite).
    warp_net_ms, fusion_ms, enhance_ms: the networks (neural path only).
    """

    landmarks_ms: float = 0.0
    motion_ms: float = 0.0
    flow_ms: float = 0.0
    warp_ms: float = 0.0
    warp_net_ms: float = 0.0
    fusion_ms: float = 0.0
    enhance_ms: float = 0.0
    paste_ms: float = 0.0
    total_ms: float = 0.0

    @staticmethod
    def stage_names() -> tuple[str, ...]:
        return (
            "landmarks_ms",
            "motion_ms",
            "flow_ms",
            "warp_ms",
            "warp_net_ms",
            "fusion_ms",
            "enhance_ms",
            "paste_ms",
            "total_ms",
        )


@dataclass(frozen=True)
class OutputFrame:
    """One rendered avatar frame.

    image: (H, W, 3) uint8 RGB at the output size.
    index: index of the driving frame it answers.
    face_found: whether the driver's face was tracked in that frame.
    presence: the motion weight used (1 tracking, falling to 0 when the face is lost).
    timings: per-stage milliseconds.
    """

    image: ImageArray
    index: int
    face_found: bool
    presence: float
    timings: StageTimings = field(default_factory=StageTimings)

"""Driver landmarks -> Motion: head pose and expression relative to the driver's own neutral.

The neutral face comes from an explicit calibration (`calibrate`, `set_neutral`) or, until then,
from the first good frames (averaged over `auto_frames`).
"""

from __future__ import annotations

import logging

import numpy as np

from engine.landmarks.topology import FaceTopology, face_extent
from engine.motion.head import FaceShape
from engine.motion.procrustes import fit_similarity
from engine.types import HeadPose, Landmarks, Motion

log = logging.getLogger(__name__)


def _mean_pose(poses: list[HeadPose]) -> HeadPose:
    """Average of similarity transforms (rotation projected back onto SO(3))."""
    u, _, vt = np.linalg.svd(np.mean([p.rotation for p in poses], axis=0))
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        u[:, -1] *= -1
        rot = u @ vt
    return HeadPose(
        rotation=rot,
        translation=np.mean([p.translation for p in poses], axis=0),
        scale=float(np.mean([p.scale for p in poses])),
    )


def _mean_shape(shapes: list[FaceShape], topo: FaceTopology) -> FaceShape:
    canon = np.mean([s.shape for s in shapes], axis=0)
    # Re-fit so the neutral is itself a rigid-free shape (its stable points match the canonical).
    scale, rot, t = fit_similarity(topo.canonical[topo.stable], canon[topo.stable])
    canon = ((canon - t) @ rot) / scale
    return FaceShape(
        pose=_mean_pose([s.pose for s in shapes]),
        shape=canon,
        extent=face_extent(canon, topo.oval),
    )


class MotionEstimator:
    """Keeps the driver's neutral face and turns landmarks into Motion."""

    def __init__(self, topo: FaceTopology, auto_frames: int = 5) -> None:
        self._topo = topo
        self._canonical_extent = topo.canonical_extent()
        self._auto_frames = auto_frames
        self._pending: list[FaceShape] = []
        self._collecting = True
        self._neutral: FaceShape | None = None

    @property
    def calibrated(self) -> bool:
        """True once a neutral face is fully established."""
        return self._neutral is not None and not self._collecting

    def calibrate(self) -> None:
        """Take the next good frames as the driver's neutral face."""
        self._pending = []
        self._collecting = True
        log.info(
            "calibrating: the next %d tracked frames become the neutral face", self._auto_frames
        )

    def set_neutral(self, landmarks: Landmarks) -> None:
        """Use exactly this face as the neutral (e.g. frame 0 in self-reenactment)."""
        self._neutral = FaceShape.of(landmarks.points, self._topo)
        self._pending = []
        self._collecting = False

    def estimate(self, landmarks: Landmarks) -> Motion:
        face = FaceShape.of(landmarks.points, self._topo)
        if self._collecting:
            self._pending.append(face)
            self._neutral = _mean_shape(self._pending, self._topo)
            if len(self._pending) >= self._auto_frames:
                self._collecting = False
                log.info("neutral face set from %d frames", len(self._pending))
        neutral = self._neutral
        assert neutral is not None
        # Expression in canonical units, rescaled from the driver's proportions to the canonical
        # face's (a long-faced driver's mouth opening is not a stretch of the portrait).
        ratio = self._canonical_extent / neutral.extent
        expression = ((face.shape - neutral.shape) * ratio).astype(np.float32)
        rotation = face.pose.rotation @ neutral.pose.rotation.T
        translation = (face.pose.translation - neutral.pose.translation) / neutral.pose.scale
        return Motion(
            rotation=rotation,
            translation=translation,
            scale_ratio=face.pose.scale / neutral.pose.scale,
            expression=expression,
            presence=1.0,
        )

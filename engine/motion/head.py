"""Head pose (a rigid fit to the canonical face) and the canonical-space shape of a face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.landmarks.topology import FaceTopology, face_extent
from engine.motion.procrustes import fit_similarity
from engine.types import HeadPose

F64 = npt.NDArray[np.float64]


def fit_head_pose(points: npt.NDArray[np.floating], topo: FaceTopology) -> HeadPose:
    """Similarity from the canonical face to `points` ((478, 3) pixels) on the stable points."""
    scale, rot, t = fit_similarity(topo.canonical[topo.stable], points[topo.stable])
    return HeadPose(rotation=rot, translation=t, scale=scale)


def to_canonical(points: npt.NDArray[np.floating], pose: HeadPose) -> F64:
    """(478, 3) image points -> canonical space (the pose removed)."""
    return ((np.asarray(points, np.float64) - pose.translation) @ pose.rotation) / pose.scale


def from_canonical(points: F64, pose: HeadPose) -> F64:
    """(N, 3) canonical points -> image space under `pose`."""
    return pose.scale * points @ pose.rotation.T + pose.translation


@dataclass(frozen=True)
class FaceShape:
    """A face split into pose and canonical shape.

    pose: canonical -> image similarity. shape: (478, 3) canonical coordinates.
    extent: (3,) canonical width, height, depth scale of the face outline.
    """

    pose: HeadPose
    shape: F64
    extent: F64

    @staticmethod
    def of(points: npt.NDArray[np.floating], topo: FaceTopology) -> FaceShape:
        pose = fit_head_pose(points, topo)
        shape = to_canonical(points, pose)
        return FaceShape(pose=pose, shape=shape, extent=face_extent(shape, topo.oval))

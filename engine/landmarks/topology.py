"""Face-mesh topology and the canonical face, loaded from the shipped face_model.npz.

Built by tools/build_face_model.py (see its docstring). Indices refer to MediaPipe's 478 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from engine.paths import face_model_path

I32 = npt.NDArray[np.int32]

# MediaPipe indices used by metrics and retargeting.
IRIS_CENTER_A = 473  # centre of the iris inside eye loop `eye_a` (MediaPipe's "left")
IRIS_CENTER_B = 468  # centre of the iris inside eye loop `eye_b` (MediaPipe's "right")
MOUTH_UPPER_INNER = 13
MOUTH_LOWER_INNER = 14
MOUTH_CORNERS = (78, 308)
# (upper lid, lower lid, corner, corner) per eye.
EYE_A_LIDS = (386, 374, 362, 263)
EYE_B_LIDS = (159, 145, 33, 133)


@dataclass(frozen=True)
class FaceTopology:
    """canonical: (478, 3) float32 mean face, unit inter-ocular distance, x right, y down.
    stable: (K,) indices that barely move with expression (rigid-fit anchors).
    triangles: (T, 3) mesh faces; holes at the eyes and the mouth.
    lips_inner, lips_outer: (20,) ordered loops. eye_a, eye_b: (16,) ordered loops.
    oval: (36,) ordered loop of the face outline (the mesh's outer boundary).
    """

    canonical: npt.NDArray[np.float32]
    stable: I32
    triangles: I32
    lips_inner: I32
    lips_outer: I32
    eye_a: I32
    eye_b: I32
    oval: I32

    def canonical_extent(self) -> npt.NDArray[np.float64]:
        return face_extent(self.canonical.astype(np.float64), self.oval)


def face_extent(points: npt.NDArray[np.float64], oval: I32) -> npt.NDArray[np.float64]:
    """(3,) width, height and a depth scale (their mean) of a face in canonical space."""
    o = points[oval]
    w = float(np.ptp(o[:, 0]))
    h = float(np.ptp(o[:, 1]))
    return np.array([w, h, 0.5 * (w + h)])


@lru_cache(maxsize=1)
def load_topology() -> FaceTopology:
    with np.load(face_model_path()) as d:
        return FaceTopology(
            canonical=d["canonical"].astype(np.float32),
            stable=d["stable"].astype(np.int32),
            triangles=d["triangles"].astype(np.int32),
            lips_inner=d["lips_inner"].astype(np.int32),
            lips_outer=d["lips_outer"].astype(np.int32),
            eye_a=d["eye_a"].astype(np.int32),
            eye_b=d["eye_b"].astype(np.int32),
            oval=d["oval"].astype(np.int32),
        )


def eye_centers(points: npt.NDArray[np.floating]) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the two eye loops, (2,) or (3,) each depending on the points' width."""
    topo = load_topology()
    return points[topo.eye_a].mean(axis=0), points[topo.eye_b].mean(axis=0)


def inter_ocular(points: npt.NDArray[np.floating]) -> float:
    """Distance between the eye centres in the image plane (pixels)."""
    a, b = eye_centers(points[:, :2])
    return float(np.linalg.norm(a - b))


def mouth_opening(points: npt.NDArray[np.floating]) -> float:
    """Inner-lip gap divided by the inter-ocular distance."""
    gap = np.linalg.norm(points[MOUTH_UPPER_INNER, :2] - points[MOUTH_LOWER_INNER, :2])
    return float(gap) / max(inter_ocular(points), 1e-6)


def eye_opening(points: npt.NDArray[np.floating]) -> float:
    """Mean over both eyes of lid gap / eye width."""
    ratios = []
    for upper, lower, c1, c2 in (EYE_A_LIDS, EYE_B_LIDS):
        gap = np.linalg.norm(points[upper, :2] - points[lower, :2])
        width = np.linalg.norm(points[c1, :2] - points[c2, :2])
        ratios.append(float(gap) / max(float(width), 1e-6))
    return float(np.mean(ratios))

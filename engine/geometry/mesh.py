"""The warp mesh: face landmarks + a mouth-centre point + rings of support points around the face.

Vertex layout (V = 478 + 1 + 3 * 36):
  0..477      MediaPipe landmarks
  478         centre of the inner-lip loop (fan centre that fills the mouth opening)
  479..       three rings of 36 support points (hair, neck, background), from the face outline
              out to the border of the crop square, one per face-outline vertex.
Triangles come in two groups: `back` (support strips, eye and mouth fills; drawn first) and
`face` (the MediaPipe tessellation; drawn back to front by depth so the near side wins).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from engine.landmarks.topology import IRIS_CENTER_A, IRIS_CENTER_B, FaceTopology, load_topology

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

MOUTH_CENTER = 478
RING_START = 479
RING_FRACTIONS = (0.15, 0.45, 1.0)  # along each ray: 0 = face outline, 1 = crop border
# How much each ring follows the head's rigid motion (top of the head, bottom/neck), before
# the person mask: background support points never move.
RING_FOLLOW_TOP = (1.0, 0.85, 0.0)
RING_FOLLOW_BOTTOM = (0.3, 0.05, 0.0)


@dataclass(frozen=True)
class WarpMesh:
    """back: (Tb, 3) triangles drawn first in this order. face: (Tf, 3) depth-sorted per frame."""

    back: I32
    face: I32
    num_vertices: int
    ring_count: int


def _fan(center: int, loop: I32) -> list[tuple[int, int, int]]:
    return [(center, int(loop[i]), int(loop[(i + 1) % len(loop)])) for i in range(len(loop))]


@lru_cache(maxsize=1)
def warp_mesh() -> WarpMesh:
    topo = load_topology()
    n = len(topo.oval)
    rings = [topo.oval] + [
        np.arange(RING_START + k * n, RING_START + (k + 1) * n, dtype=np.int32)
        for k in range(len(RING_FRACTIONS))
    ]
    strips: list[tuple[int, int, int]] = []
    for inner, outer in itertools.pairwise(rings):
        for i in range(n):
            j = (i + 1) % n
            strips += [(inner[i], inner[j], outer[i]), (inner[j], outer[j], outer[i])]
    fills = (
        _fan(MOUTH_CENTER, topo.lips_inner)
        + _fan(IRIS_CENTER_A, topo.eye_a)
        + _fan(IRIS_CENTER_B, topo.eye_b)
    )
    back = np.array(strips + fills, dtype=np.int32)
    return WarpMesh(
        back=back,
        face=topo.triangles,
        num_vertices=RING_START + n * len(RING_FRACTIONS),
        ring_count=len(RING_FRACTIONS),
    )


def _ray_to_square(center: F64, direction: F64, size: float) -> F64:
    """Distance along unit `direction` from `center` to the border of the square [0, size]^2."""
    lo, hi = -0.5, size - 0.5
    dist = np.full(len(direction), np.inf)
    for axis in (0, 1):
        d = direction[:, axis]
        with np.errstate(divide="ignore"):
            t_hi = (hi - center[axis]) / d
            t_lo = (lo - center[axis]) / d
        t = np.where(d > 0, t_hi, np.where(d < 0, t_lo, np.inf))
        dist = np.minimum(dist, t)
    return dist


def support_rings(
    face_xy: F64, size: float, topo: FaceTopology, person: npt.NDArray[np.float32] | None = None
) -> tuple[F64, F64]:
    """Support points for a face in a square crop of side `size` (pixel-centre coordinates).

    face_xy: (478, 2) landmarks in crop coordinates.
    person: optional (size, size) person mask over the crop; support points on the background
        get no head-follow weight (the background stays still while the head and hair move).
    Returns (points (R*36, 2), follow (R*36,) head-follow weight of each point).
    """
    oval = face_xy[topo.oval]  # (36, 2)
    center = face_xy[topo.stable].mean(axis=0)
    offset = oval - center
    reach = np.linalg.norm(offset, axis=1, keepdims=True)
    direction = offset / np.maximum(reach, 1e-6)
    border = _ray_to_square(center, direction, size)[:, None]
    border = np.maximum(border, reach[:, 0:1] + 1.0)  # outline outside the crop: keep order
    down = np.clip(direction[:, 1], 0.0, 1.0)  # 1 straight below the face (the neck)
    points, follow = [], []
    for frac, top, bottom in zip(RING_FRACTIONS, RING_FOLLOW_TOP, RING_FOLLOW_BOTTOM, strict=True):
        points.append(center + direction * (reach + frac * (border - reach)))
        follow.append(top + (bottom - top) * down)
    pts, weights = np.concatenate(points), np.concatenate(follow)
    if person is not None:
        ij = np.clip(np.round(pts).astype(int), 0, int(size) - 1)
        weights = weights * person[ij[:, 1], ij[:, 0]]
    return pts, weights


def mesh_source(
    face_xy: F64, size: int, topo: FaceTopology, person: npt.NDArray[np.float32] | None = None
) -> tuple[F64, F64]:
    """All warp-mesh vertices of a source face and the support points' follow weights.

    face_xy: (478, 2) landmarks in the square crop of side `size`.
    Returns (vertices (V, 2): face points, mouth centre, support rings; follow (R*36,)).
    """
    mouth = face_xy[topo.lips_inner].mean(axis=0, keepdims=True)
    rings, follow = support_rings(face_xy, size, topo, person)
    vertices = np.concatenate([face_xy, mouth, rings])
    assert len(vertices) == MOUTH_CENTER + 1 + len(rings)
    return vertices, follow

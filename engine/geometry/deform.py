"""Target positions of every warp-mesh vertex for one frame, in flow-grid coordinates."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from engine.geometry.flow import backward_map
from engine.geometry.mesh import MOUTH_CENTER, RING_START, WarpMesh
from engine.geometry.mouth import follow_jaw
from engine.landmarks.topology import IRIS_CENTER_A, IRIS_CENTER_B, FaceTopology

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


def fit_affine_2d(src: F64, dst: F64) -> F64:
    """Least-squares (2, 3) affine with dst ~ A @ [x, y, 1]. src, dst: (N, 2)."""
    design = np.concatenate([src, np.ones((len(src), 1))], axis=1)  # (N, 3)
    sol, *_ = np.linalg.lstsq(design, dst, rcond=None)  # (3, 2)
    return sol.T


def _keep_iris_inside(points: F64, iris: int, loop: I32) -> None:
    """Pull an iris centre that left its eye opening (a blink) back inside, in place."""
    poly = points[loop].astype(np.float32)
    centre = poly.mean(axis=0)
    p = points[iris]
    if cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), False) >= 0:
        return
    for t in (0.75, 0.5, 0.25, 0.0):
        q = centre + t * (p - centre)
        if cv2.pointPolygonTest(poly, (float(q[0]), float(q[1])), False) >= 0:
            points[iris] = q
            return
    points[iris] = centre


def target_grid_vertices(
    source_grid: F64, follow: F64, target_face: F64, topo: FaceTopology
) -> F64:
    """All warp-mesh vertices for a target face.

    source_grid: (V, 2) the portrait's vertices. follow: (R*36,) support head-follow weights.
    target_face: (478, 2) target landmarks in grid coordinates.
    Returns (V, 2): face points, mouth centre, and support rings moved by the head's rigid motion
    (a 2-D affine fit on the stable points) times their follow weight.
    """
    face = target_face.copy()
    _keep_iris_inside(face, IRIS_CENTER_A, topo.eye_a)
    _keep_iris_inside(face, IRIS_CENTER_B, topo.eye_b)
    mouth = face[topo.lips_inner].mean(axis=0, keepdims=True)
    affine = fit_affine_2d(source_grid[topo.stable], face[topo.stable])
    ring_src = source_grid[RING_START:]
    moved = ring_src @ affine[:, :2].T + affine[:, 2]
    rings = ring_src + follow[:, None] * (moved - ring_src)
    out = np.concatenate([face, mouth, rings])
    assert out.shape == source_grid.shape and len(face) == MOUTH_CENTER
    return out


def draw_order(mesh: WarpMesh, depth: F64) -> I32:
    """Triangles in painting order: `back` as is, then face triangles far to near.

    depth: (478,) target z per landmark (larger = farther from the viewer).
    """
    tri_depth = depth[mesh.face].mean(axis=1)
    return np.concatenate([mesh.back, mesh.face[np.argsort(-tri_depth, kind="stable")]])


def mesh_backward_map(
    source: F64,
    follow: F64,
    target: npt.NDArray[np.floating],
    mesh: WarpMesh,
    topo: FaceTopology,
    size: int,
) -> npt.NDArray[np.float32]:
    """The geometric warp of one frame: (size, size, 2) float32 source pixel per target pixel.
    Inside the mouth opening, teeth follow the lips instead of the mesh's fan (`follow_jaw`).

    source: (V, 2) warp-mesh vertices of the portrait (engine.geometry.mesh.mesh_source).
    follow: (R*36,) support follow weights. target: (478, 3) target landmarks, same square.
    """
    dst = target_grid_vertices(source, follow, target[:, :2].astype(np.float64), topo)
    tris = draw_order(mesh, target[:, 2].astype(np.float64))
    out = backward_map(source, dst, tris, size)
    follow_jaw(out, source[topo.lips_inner], dst[topo.lips_inner])
    return out

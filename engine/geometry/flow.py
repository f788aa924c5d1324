"""Dense backward flow from a triangle mesh: for every target pixel, where to sample the source.

Each target triangle is filled with its index (painter's order), then every covered pixel maps
through that triangle's affine target->source transform. Uncovered pixels map to themselves.
Pixels of sliver triangles are kept inside their source triangle (`_clamp_slivers`).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

_SUBPIXEL_BITS = 4
# A triangle whose target->source affine stretches more than this (Frobenius norm of its linear
# part; about 1.4 for a rigid motion) is a sliver in the target: see _clamp_slivers.
STEEP = 2.0


def triangle_affines(src: F64, dst: F64, tris: I32) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Affine maps dst->src per triangle.

    src, dst: (V, 2) vertices. tris: (T, 3).
    Returns (A (T, 2, 3) with src = A @ [x, y, 1], valid (T,) False for degenerate triangles).
    """
    x, y = dst[tris, 0], dst[tris, 1]  # (T, 3) each: the target corners
    # The inverse of D = [[x0 x1 x2], [y0 y1 y2], [1 1 1]] in closed form (its adjugate / det).
    adj = np.stack(
        [
            np.stack(
                [y[:, 1] - y[:, 2], x[:, 2] - x[:, 1], x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]], 1
            ),
            np.stack(
                [y[:, 2] - y[:, 0], x[:, 0] - x[:, 2], x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]], 1
            ),
            np.stack(
                [y[:, 0] - y[:, 1], x[:, 1] - x[:, 0], x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]], 1
            ),
        ],
        axis=1,
    )  # (T, 3, 3)
    det = adj[:, 0, 2] + adj[:, 1, 2] + adj[:, 2, 2]  # twice the signed area
    valid = np.abs(det) > 1e-6
    inv = adj / np.where(valid, det, 1.0)[:, None, None]
    # A @ D = S (the source corners as columns), so A = S @ inv(D).
    affine = np.transpose(src[tris], (0, 2, 1)) @ inv  # (T, 2, 3)
    return affine, valid


def rasterize_ids(dst: F64, tris: I32, size: int) -> I32:
    """(size, size) int32 image of triangle indices (-1 = none); later triangles paint over."""
    ids = np.full((size, size), -1, dtype=np.int32)
    pts = np.round(dst[tris] * (1 << _SUBPIXEL_BITS)).astype(np.int32)  # (T, 3, 2) fixed point
    for k in range(len(tris)):
        cv2.fillConvexPoly(ids, pts[k], k, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return ids


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[F32, F32]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def backward_map(src: F64, dst: F64, tris: I32, size: int) -> F32:
    """Backward map (size, size, 2) float32: target pixel (y, x) samples the source at map[y, x].

    src, dst: (V, 2) vertex positions in the same square of side `size` (pixel centres).
    tris: (T, 3) triangles in drawing order.
    """
    affine, valid = triangle_affines(src, dst, tris)
    ids = rasterize_ids(dst, tris[valid], size)
    # Row 0 of the table is the identity, for pixels no triangle covers (ids == -1).
    table = np.empty((int(valid.sum()) + 1, 6), dtype=np.float32)
    table[0] = (1, 0, 0, 0, 1, 0)
    table[1:] = affine[valid].reshape(-1, 6)
    coef = np.take(table, ids + 1, axis=0)  # (size, size, 6)
    xs, ys = _grid(size)
    out = np.empty((size, size, 2), dtype=np.float32)
    out[..., 0] = coef[..., 0] * xs + coef[..., 1] * ys + coef[..., 2]
    out[..., 1] = coef[..., 3] * xs + coef[..., 4] * ys + coef[..., 5]
    _clamp_slivers(out, ids, src, dst, tris[valid], affine[valid])
    return out


def _clamp_slivers(out: F32, ids: I32, src: F64, dst: F64, tris: I32, affine: F64) -> None:
    """Make the pixels of steep (sliver) triangles sample inside their source triangle, in place.

    fillConvexPoly owns every pixel an edge touches, so a triangle thinner than a pixel (the
    face mesh has several around the nostrils, and head turns fold more) owns pixels whose
    centres lie off it. Its affine, steep across the sliver, sends them far across the source:
    a bright fleck beside a nostril. Their barycentric coordinates are clamped to the triangle.
    Other triangles' edge pixels stay extrapolated: by at most about a pixel.
    out: (S, S, 2) map; ids: (S, S) indices into tris (-1: none); affine: (T, 2, 3) per tris.
    """
    steep = np.sqrt((affine[:, :, :2] ** 2).sum(axis=(1, 2))) > STEEP
    if not steep.any():
        return
    py, px = np.nonzero(np.take(np.concatenate([[False], steep]), ids + 1))
    if len(py) == 0:
        return
    k = tris[ids[py, px]]  # (N, 3) vertex indices
    corners = np.concatenate([dst[k], np.ones((len(k), 3, 1))], axis=2)  # (N, 3, 3) rows [x y 1]
    pixel = np.stack([px, py, np.ones_like(px)], axis=1).astype(np.float64)  # (N, 3)
    bary = np.einsum("ni,nij->nj", pixel, np.linalg.inv(corners))  # pixel = bary @ corners
    bary = np.clip(bary, 0.0, None)
    bary /= bary.sum(axis=1, keepdims=True)  # they summed to 1, so one stays positive
    out[py, px] = np.einsum("nj,njk->nk", bary, src[k])

"""Mesh, dense flow, warps and paste-back: exact numbers on synthetic inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.geometry.deform import draw_order, fit_affine_2d
from engine.geometry.flow import backward_map
from engine.geometry.mesh import RING_START, support_rings, warp_mesh
from engine.geometry.paste import clip_region, feather_mask, paste
from engine.geometry.warp import grid_sample_warp, map_to_grid, region_map, remap
from engine.landmarks.topology import load_topology

TOPO = load_topology()
MESH = warp_mesh()
G = 128


def _vertices() -> np.ndarray:
    face = TOPO.canonical[:, :2].astype(np.float64) * 22 + G / 2
    rings, _ = support_rings(face, G, TOPO)
    mouth = face[TOPO.lips_inner].mean(axis=0, keepdims=True)
    return np.concatenate([face, mouth, rings])


def _tris() -> np.ndarray:
    return np.concatenate([MESH.back, MESH.face])


def test_mesh_topology_closes_the_face() -> None:
    assert MESH.num_vertices == len(_vertices()) == RING_START + 3 * 36
    # The tessellation's holes are exactly the eyes and the inner lips; fills cover them.
    edges: dict[tuple[int, int], int] = {}
    for a, b, c in TOPO.triangles:
        for e in ((a, b), (b, c), (a, c)):
            key = (min(e), max(e))
            edges[key] = edges.get(key, 0) + 1
    boundary = {v for e, n in edges.items() if n == 1 for v in e}
    holes = set(TOPO.oval) | set(TOPO.eye_a) | set(TOPO.eye_b) | set(TOPO.lips_inner)
    assert boundary == holes
    assert max(edges.values()) == 2  # a manifold mesh: no spurious triangles


def test_identity_flow_is_exact() -> None:
    v = _vertices()
    m = backward_map(v, v, _tris(), G)
    ys, xs = np.mgrid[0:G, 0:G]
    np.testing.assert_allclose(m[..., 0], xs, atol=1e-4)
    np.testing.assert_allclose(m[..., 1], ys, atol=1e-4)


def test_affine_motion_is_inverted_exactly_where_covered() -> None:
    v = _vertices()
    a = np.array([[1.05, 0.08, -3.0], [-0.06, 0.97, 2.0]])
    moved = v @ a[:, :2].T + a[:, 2]
    m = backward_map(v, moved, _tris(), G)
    ys, xs = np.mgrid[0:G, 0:G].astype(np.float64)
    full = np.vstack([a, [0, 0, 1]])
    inv = np.linalg.inv(full)
    ex = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    ey = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    # Covered pixels: those that the moved mesh reaches (away from the crop border).
    inner = (slice(20, G - 20), slice(20, G - 20))
    np.testing.assert_allclose(m[..., 0][inner], ex[inner], atol=1e-3)
    np.testing.assert_allclose(m[..., 1][inner], ey[inner], atol=1e-3)


def test_a_sliver_triangle_samples_only_inside_its_source_triangle() -> None:
    """A triangle thinner than a pixel in the target owns the pixels its edges touch; their
    centres lie off it, and its steep affine would send them far across the source (a bright
    fleck beside a nostril on a head turn). They must sample inside its source triangle."""
    src = np.array([[0, 0], [40, 0], [40, 40], [0, 40], [20, 50], [30, 50], [25, 60]], np.float64)
    dst = src.copy()
    dst[4:] = [[10.0, 10.0], [20.0, 10.2], [15.0, 10.25]]  # 0.15 px across, on the square
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]], np.int32)
    m = backward_map(src, dst, tris, 48)
    ys, xs = np.mgrid[0:48, 0:48]
    sliver = np.hypot(m[..., 0] - xs, m[..., 1] - ys) > 1  # painted by the sliver
    assert sliver.sum() >= 5 and (ys[sliver] >= 9).all() and (ys[sliver] <= 11).all()
    corners = src[4:].astype(np.float32)
    for x, y in m[sliver]:
        assert cv2.pointPolygonTest(corners, (float(x), float(y)), True) >= -1e-3
    # The square's own pixels keep their exact (identity) map.
    inside = ~sliver & (xs <= 40) & (ys <= 40)
    np.testing.assert_allclose(m[inside], np.stack([xs, ys], -1)[inside], atol=1e-4)


def test_fit_affine_2d_recovers_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 2))
    a = np.array([[0.9, 0.2, 4.0], [-0.1, 1.1, -2.0]])
    np.testing.assert_allclose(fit_affine_2d(src, src @ a[:, :2].T + a[:, 2]), a, atol=1e-9)


def test_draw_order_paints_far_triangles_first() -> None:
    depth = np.random.default_rng(1).normal(size=478)
    order = draw_order(MESH, depth)
    face_part = order[len(MESH.back) :]
    d = depth[face_part].mean(axis=1)
    assert np.all(np.diff(d) <= 1e-12)
    np.testing.assert_array_equal(order[: len(MESH.back)], MESH.back)


def test_support_rings_move_outward_and_respect_the_person_mask() -> None:
    face = TOPO.canonical[:, :2].astype(np.float64) * 22 + G / 2
    pts, follow = support_rings(face, G, TOPO)
    centre = face[TOPO.stable].mean(axis=0)
    r = np.linalg.norm(pts - centre, axis=1).reshape(3, 36)
    assert np.all(np.diff(r, axis=0) > 0)
    assert np.all(pts >= -0.5 - 1e-9) and np.all(pts <= G - 0.5 + 1e-9)
    assert np.all(follow[-36:] == 0.0) and follow[:36].max() == pytest.approx(1.0)
    background = np.zeros((G, G), np.float32)
    _, still = support_rings(face, G, TOPO, background)
    assert np.all(still == 0.0)


def test_region_map_and_remap_identity_reproduce_the_image() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, size=(200, 300, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:G, 0:G].astype(np.float32)
    grid_map = np.stack([xs, ys], axis=-1)
    box = (50, -20, 160)  # x0, y0, size: partly outside the image
    region = clip_region(*box, 300, 200)
    mx, my = region_map(grid_map, *box, region)
    x0, y0, x1, y1 = region
    out = remap(image, mx, my)
    np.testing.assert_array_equal(out[5:-5, 5:-5], image[y0:y1, x0:x1][5:-5, 5:-5])


def test_grid_sample_matches_opencv_remap() -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, size=(64, 80, 3)).astype(np.float32)
    # Smooth content: OpenCV interpolates with 1/32-pixel fixed-point weights, torch in float.
    image = np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 3 - 250, 0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:48, 0:56].astype(np.float32)
    map_xy = np.stack([xs * 1.2 + 3 + np.sin(ys / 5), ys * 1.1 + 2 + np.cos(xs / 7)], axis=-1)
    ref = remap(image, np.ascontiguousarray(map_xy[..., 0]), np.ascontiguousarray(map_xy[..., 1]))
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    grid = torch.from_numpy(map_to_grid(map_xy, 64, 80))[None]
    out = grid_sample_warp(t, grid)[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref.astype(np.float32)).max() <= 1.0
    with pytest.raises(ValueError):
        grid_sample_warp(t[0], grid)


def test_paste_keeps_the_box_edge_and_replaces_the_centre() -> None:
    canvas = np.zeros((100, 100, 3), np.uint8)
    region = clip_region(10, 10, 60, 100, 100)
    mask = feather_mask(60, 8)
    paste(canvas, np.full((60, 60, 3), 200, np.uint8), region, (10, 10), mask)
    assert canvas[10, 10:70].max() == 0 and canvas[10:70, 10].max() == 0
    assert np.all(canvas[25:55, 25:55] == 200)
    assert np.all(canvas[:10] == 0) and np.all(canvas[70:] == 0)

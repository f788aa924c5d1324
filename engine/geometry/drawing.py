"""Landmark maps: what the networks see of a face's shape (a fixed-colour wireframe + regions).

Channels of `landmark_maps` (all float32 in [0, 1], drawn on black):
  0-2  wireframe: each facial part a 1-px anti-aliased polyline in its own fixed RGB colour
       (oval, brows, eyes, irises, nose, outer and inner lips)
  3    mouth interior (the inner-lip polygon, filled)
  4    eye openings (both eye polygons, filled)
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from engine.landmarks.topology import load_topology

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

MAP_CHANNELS = 5
MOUTH_CHANNEL = 3
EYES_CHANNEL = 4

# MediaPipe Face Mesh indices of parts the topology file does not hold.
_BROW_A = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
_BROW_B = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
_NOSE_BRIDGE = (168, 6, 197, 195, 5, 4, 1)
_NOSE_BASE = (98, 97, 2, 326, 327)
_IRIS_A = (474, 475, 476, 477)
_IRIS_B = (469, 470, 471, 472)
_SHIFT = 4  # fixed-point bits for sub-pixel drawing


@lru_cache(maxsize=1)
def _parts() -> tuple[tuple[I32, bool, tuple[float, float, float]], ...]:
    """(indices, closed, colour) per drawn part; colours are fixed forever (the nets learn them)."""
    t = load_topology()

    def idx(seq: tuple[int, ...] | I32) -> I32:
        return np.asarray(seq, dtype=np.int32)

    return (
        (t.oval, True, (1.0, 1.0, 1.0)),
        (idx(_BROW_A), True, (1.0, 0.5, 0.0)),
        (idx(_BROW_B), True, (0.0, 0.5, 1.0)),
        (t.eye_a, True, (1.0, 0.0, 0.0)),
        (t.eye_b, True, (0.0, 0.0, 1.0)),
        (idx(_IRIS_A), True, (1.0, 1.0, 0.0)),
        (idx(_IRIS_B), True, (0.0, 1.0, 1.0)),
        (idx(_NOSE_BRIDGE), False, (0.0, 1.0, 0.0)),
        (idx(_NOSE_BASE), False, (0.5, 1.0, 0.5)),
        (t.lips_outer, True, (1.0, 0.0, 1.0)),
        (t.lips_inner, True, (0.5, 0.0, 1.0)),
    )


def landmark_maps(points: npt.NDArray[np.floating], size: int) -> F32:
    """Draw one face into (size, size, 5) float32 maps.

    points: (478, >=2) landmarks in the map's pixel coordinates (pixel centres).
    """
    if points.ndim != 2 or points.shape[0] != 478 or points.shape[1] < 2:
        raise ValueError(f"points must be (478, 2|3), got {points.shape}")
    fixed = np.round(points[:, :2] * (1 << _SHIFT)).astype(np.int32)  # (478, 2)
    wire = np.zeros((size, size, 3), np.uint8)
    for indices, closed, colour in _parts():
        col = tuple(int(255 * c) for c in colour)
        cv2.polylines(wire, [fixed[indices]], closed, col, 1, cv2.LINE_AA, _SHIFT)
    topo = load_topology()
    mouth = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mouth, [fixed[topo.lips_inner]], 255, cv2.LINE_AA, _SHIFT)
    eyes = np.zeros((size, size), np.uint8)
    cv2.fillPoly(eyes, [fixed[topo.eye_a], fixed[topo.eye_b]], 255, cv2.LINE_AA, _SHIFT)
    out = np.empty((size, size, MAP_CHANNELS), np.float32)
    out[..., :3] = wire
    out[..., MOUTH_CHANNEL] = mouth
    out[..., EYES_CHANNEL] = eyes
    out *= 1.0 / 255.0
    return out

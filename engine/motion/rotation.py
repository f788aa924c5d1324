"""Small rotation helpers (axis-angle maps) for scaling a head rotation by a strength."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def log_rotation(rot: F64) -> F64:
    """(3, 3) rotation -> (3,) rotation vector (axis * angle, radians)."""
    cos = np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    skew = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    if angle < 1e-8:
        return 0.5 * skew
    if np.pi - angle < 1e-4:  # near 180 degrees: axis from the symmetric part
        axis = np.sqrt(np.clip((np.diag(rot) + 1.0) / 2.0, 0.0, None))
        axis *= np.sign(skew + (skew == 0))
        return axis / np.linalg.norm(axis) * angle
    return skew * (angle / (2.0 * np.sin(angle)))


def exp_rotation(vec: F64) -> F64:
    """(3,) rotation vector -> (3, 3) rotation (Rodrigues)."""
    angle = float(np.linalg.norm(vec))
    if angle < 1e-12:
        return np.eye(3)
    k = vec / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def scale_rotation(rot: F64, strength: float) -> F64:
    """rot ** strength: the same axis, the angle multiplied by `strength`."""
    if strength == 1.0:
        return rot
    return exp_rotation(log_rotation(rot) * strength)


def euler_degrees(rot: F64) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for display: y-axis, x-axis, z-axis rotations."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(pitch), float(roll)

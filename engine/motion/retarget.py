"""Apply the driver's Motion to the portrait's own face: pose and expression, with strengths.

The expression (canonical units, canonical proportions) is rescaled to the portrait's own face
proportions, added to the portrait's canonical shape, and the result is posed with the
portrait's pose composed with the driver's relative head motion.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.motion.head import FaceShape, from_canonical
from engine.motion.rotation import scale_rotation
from engine.types import Controls, HeadPose, Motion

F64 = npt.NDArray[np.float64]


def target_pose(portrait: FaceShape, motion: Motion, strength: float) -> HeadPose:
    """The portrait's pose moved by `strength` times the driver's relative head motion."""
    rot = scale_rotation(motion.rotation, strength) @ portrait.pose.rotation
    scale = portrait.pose.scale * float(motion.scale_ratio) ** strength
    shift = strength * np.asarray(motion.translation) * portrait.pose.scale
    return HeadPose(rotation=rot, translation=portrait.pose.translation + shift, scale=scale)


def retarget(portrait: FaceShape, canonical_extent: F64, motion: Motion, controls: Controls) -> F64:
    """Target landmarks (478, 3) in the portrait's image coordinates.

    canonical_extent: (3,) the canonical face's extent, the units `motion.expression` is in.
    """
    weight = float(np.clip(motion.presence, 0.0, 1.0))
    alpha = controls.expression_strength * weight
    beta = controls.pose_strength * weight
    ratio = portrait.extent / canonical_extent  # canonical proportions -> the portrait's
    shape = portrait.shape + alpha * motion.expression.astype(np.float64) * ratio
    return from_canonical(shape, target_pose(portrait, motion, beta))

"""Which recorded frame becomes the personalized avatar's source image: the most neutral one
(facing the camera as the user usually does, mouth closed, eyes open, sharp)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.personalize.capture import FrameCheck, assess_frame
from engine.types import ImageArray, Landmarks


def sharpness(image: ImageArray, landmarks: Landmarks) -> float:
    """Variance of the Laplacian over the face's box (higher: sharper)."""
    pts = landmarks.points[:, :2]
    h, w = image.shape[:2]
    x0, y0 = np.clip(np.floor(pts.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(pts.max(axis=0)).astype(int), 1, [w, h])
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()) if grey.size else 0.0


def pick_source(
    images: Sequence[ImageArray],
    landmarks: Sequence[Landmarks | None],
    checks: Sequence[FrameCheck],
    usable: Sequence[int],
) -> int:
    """Index of the most neutral usable frame. Scores: distance from the median head pose
    (degrees), mouth opening, eye opening relative to the user's widest, sharpness relative
    to the median."""
    if not usable:
        raise ValueError("no usable frame to pick a source from")
    good = [i for i in usable if landmarks[i] is not None]
    yaw = float(np.median([checks[i].yaw for i in good]))
    pitch = float(np.median([checks[i].pitch for i in good]))
    eyes_open = float(np.percentile([checks[i].eyes for i in good], 90)) or 1.0
    sharp = {i: sharpness(images[i], landmarks[i]) for i in good}  # type: ignore[arg-type]
    sharp_mid = float(np.median(list(sharp.values()))) or 1.0

    def score(i: int) -> float:
        c = checks[i]
        off_pose = abs(c.yaw - yaw) + abs(c.pitch - pitch)
        return (
            -off_pose / 5.0
            - 20.0 * c.mouth
            + 2.0 * min(c.eyes / eyes_open, 1.0)
            + min(sharp[i] / sharp_mid, 2.0)
        )

    return max(good, key=score)


def most_neutral(images: Sequence[ImageArray], landmarks: Sequence[Landmarks | None]) -> int:
    """Index of the most neutral frame with a face (as `pick_source` scores them): a driver's
    neutral face when no calibration exists (the evaluations and the cross-identity sources).
    Raises ValueError when no frame has a face."""
    checks = [
        assess_frame(img, [] if lm is None else [lm])
        for img, lm in zip(images, landmarks, strict=True)
    ]
    return pick_source(
        images, landmarks, checks, [i for i, lm in enumerate(landmarks) if lm is not None]
    )

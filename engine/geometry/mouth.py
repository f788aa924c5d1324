"""The inside of a mouth the portrait never opened: a dark cavity with a hint of upper teeth.

Geometry alone can only stretch the lips' own pixels into an opening, which smears them. Where
the target mouth opens wider than the portrait's, the revealed area is painted instead.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from engine.types import ImageArray

F64 = npt.NDArray[np.float64]


def polygon_area(poly: F64) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def reveal_amount(source_loop: F64, target_loop: F64) -> float:
    """Fraction (0..1) of the target inner-mouth area that the source mouth cannot supply."""
    a_t = polygon_area(target_loop)
    if a_t < 4.0:
        return 0.0
    return float(np.clip((a_t - polygon_area(source_loop)) / a_t, 0.0, 1.0))


def paint_mouth_interior(
    image: ImageArray, target_loop: F64, upper_lip: F64, lip_color: F64, amount: float
) -> None:
    """Blend a synthesized mouth interior into `image` (in place) inside `target_loop`.

    target_loop: (20, 2) inner-lip loop in image coordinates. upper_lip: (K, 2) the loop's upper
    half, left to right. amount: 0..1 from `reveal_amount`.
    """
    if amount <= 0.0:
        return
    h, w = image.shape[:2]
    x0, y0 = np.floor(target_loop.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(target_loop.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    local = (target_loop - (x0, y0)) * 4  # 2 bits of sub-pixel precision
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(mask, [np.round(local).astype(np.int32)], 1.0, cv2.LINE_AA, shift=2)
    opening = float(target_loop[:, 1].max() - target_loop[:, 1].min())
    blur = max(1, int(opening * 0.12)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (blur, blur), 0)
    # Cavity: the lip colour, much darker, darkest in the middle of the opening.
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    mid = 0.5 * (target_loop[:, 1].min() + target_loop[:, 1].max())
    depth = 1.0 - np.clip(np.abs(ys - mid) / max(opening / 2, 1.0), 0.0, 1.0)
    cavity = lip_color[None, None, :] * (0.22 - 0.12 * depth)[..., None]
    cavity = np.broadcast_to(cavity, (y1 - y0, x1 - x0, 3)).copy()
    # Upper teeth: a soft light band under the upper lip, only once the mouth is open enough.
    teeth = np.zeros_like(mask)
    band = np.round((upper_lip - (x0, y0)) * 4).astype(np.int32)
    thickness = max(1, int(opening * 0.16))
    cv2.polylines(teeth, [band], False, 1.0, thickness * 2, cv2.LINE_AA, shift=2)
    teeth = cv2.GaussianBlur(teeth, (blur, blur), 0) * mask * np.clip(opening / 16.0 - 0.4, 0, 0.8)
    # Teeth take the portrait's own light: a pale tint of the lip colour, never pure white.
    tooth_color = 0.45 * lip_color + 0.55 * np.array([225.0, 218.0, 205.0])
    cavity = cavity * (1 - teeth[..., None]) + tooth_color * teeth[..., None]
    a = (mask * amount)[..., None]
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(roi * (1 - a) + cavity * a, 0, 255).astype(np.uint8)

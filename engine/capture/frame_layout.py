"""Placing avatar frames on a fixed-size video frame (the virtual camera's 1280x720 or 640x480).

The avatar is scaled to fit inside the frame (whole, never stretched, never cropped) and
centred. The rest is filled with the same picture scaled to cover the frame, heavily blurred and
a little darkened, so that the portrait's own background continues to the frame's edges without
black bars and without pulling attention from the face. The backdrop is made once per portrait
(from its first frame; only the face moves after that) and reused.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import cv2
import numpy as np

from engine.types import ImageArray

BACKDROP_DIM = 0.7  # brightness of the blurred backdrop relative to the picture
BACKDROP_BLUR = 0.04  # Gaussian sigma of the backdrop, as a fraction of the frame width


@dataclass(frozen=True)
class Placement:
    """Where the avatar lands in the frame: top-left (x, y), size (width, height) in pixels."""

    x: int
    y: int
    width: int
    height: int


def fit_inside(src: tuple[int, int], dst: tuple[int, int]) -> Placement:
    """The largest (width, height) with the aspect of `src` inside `dst`, centred."""
    sw, sh = src
    dw, dh = dst
    scale = min(dw / sw, dh / sh)
    w, h = min(dw, max(1, round(sw * scale))), min(dh, max(1, round(sh * scale)))
    return Placement((dw - w) // 2, (dh - h) // 2, w, h)


def backdrop(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    """(H, W, 3) uint8: `image` scaled to cover `size` (W, H), centre-cropped, blurred, dimmed."""
    w, h = size
    ih, iw = image.shape[:2]
    scale = max(w / iw, h / ih)
    # Blur at 1/8 scale (the result is soft anyway): fast for any frame size.
    small_w, small_h = max(8, w // 8), max(8, h // 8)
    cover_w, cover_h = max(small_w, round(iw * scale / 8)), max(small_h, round(ih * scale / 8))
    small = cv2.resize(image, (cover_w, cover_h), interpolation=cv2.INTER_AREA)
    x0, y0 = (cover_w - small_w) // 2, (cover_h - small_h) // 2
    small = small[y0 : y0 + small_h, x0 : x0 + small_w]
    sigma = max(1.0, BACKDROP_BLUR * small_w)
    small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray((big.astype(np.float32) * BACKDROP_DIM).astype(np.uint8))


class FrameLayout:
    """Composes avatar frames into `size` (width, height) frames. One owner thread."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self._key: tuple[Hashable, tuple[int, ...]] | None = None
        self._backdrop: ImageArray | None = None
        self.placement: Placement | None = None

    def compose(self, image: ImageArray, portrait: Hashable) -> ImageArray:
        """(H, W, 3) uint8 RGB frame holding `image` ((h, w, 3) uint8 RGB) fitted and centred.
        `portrait` identifies the portrait: a new one gets a new backdrop."""
        key = (portrait, image.shape)
        if key != self._key or self._backdrop is None:
            self._key = key
            self._backdrop = backdrop(image, self.size)
            self.placement = fit_inside((image.shape[1], image.shape[0]), self.size)
        p = self.placement
        assert p is not None
        interp = cv2.INTER_AREA if p.height < image.shape[0] else cv2.INTER_LINEAR
        frame = self._backdrop.copy()
        frame[p.y : p.y + p.height, p.x : p.x + p.width] = cv2.resize(
            image, (p.width, p.height), interpolation=interp
        )
        return frame

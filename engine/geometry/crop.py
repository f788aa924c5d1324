"""Resampling the square head box to the networks' crop sizes (and landmarks with it)."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from engine.types import ImageArray


class Box(Protocol):
    """A square region: top-left (x0, y0), side `size` (engine.portrait.CropBox)."""

    @property
    def x0(self) -> int: ...
    @property
    def y0(self) -> int: ...
    @property
    def size(self) -> int: ...


def crop(image: ImageArray, box: Box, size: int) -> ImageArray:
    """Resample the box to (size, size, 3); outside the image repeats its edge."""
    k = box.size / size
    if k > 1.5:  # a real shrink: area averaging, or fine detail aliases
        return _crop_shrink(image, box, size)
    affine = np.array([[k, 0, box.x0 + 0.5 * k - 0.5], [0, k, box.y0 + 0.5 * k - 0.5]])
    interp = cv2.INTER_LINEAR if k > 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(
        image,
        affine,
        (size, size),
        flags=interp | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _crop_shrink(image: ImageArray, box: Box, size: int) -> ImageArray:
    """The box cut out (edges repeated where it leaves the image), then area-resized."""
    h, w = image.shape[:2]
    left, top = max(0, -box.x0), max(0, -box.y0)
    right, bottom = max(0, box.x0 + box.size - w), max(0, box.y0 + box.size - h)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    x0, y0 = box.x0 + left, box.y0 + top
    region = padded[y0 : y0 + box.size, x0 : x0 + box.size]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def to_crop(points: npt.NDArray[np.floating], box: Box, size: int) -> npt.NDArray[np.float32]:
    """(478, 3) image landmarks -> crop coordinates (x, y pixel centres; z scaled like x)."""
    k = size / box.size
    out = np.empty((len(points), 3), np.float32)
    out[:, 0] = (points[:, 0] - box.x0 + 0.5) * k - 0.5
    out[:, 1] = (points[:, 1] - box.y0 + 0.5) * k - 0.5
    out[:, 2] = points[:, 2] * k
    return out

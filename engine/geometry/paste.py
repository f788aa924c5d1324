"""Compositing the warped head region back into the full portrait with a soft edge."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from engine.types import ImageArray

F32 = npt.NDArray[np.float32]


def clip_region(x0: int, y0: int, size: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The part (x0, y0, x1, y1) of the square box that lies inside a width x height image."""
    return max(x0, 0), max(y0, 0), min(x0 + size, width), min(y0 + size, height)


@lru_cache(maxsize=8)
def feather_mask(size: int, feather: int) -> F32:
    """(size, size) weights: 1 inside, easing to 0 over `feather` pixels at the square's edge."""
    d = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    ramp = np.clip(d / max(feather, 1), 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.minimum(ramp[:, None], ramp[None, :])


def paste(
    canvas: ImageArray,
    region_img: ImageArray,
    region: tuple[int, int, int, int],
    box_xy: tuple[int, int],
    mask: F32,
) -> None:
    """Blend `region_img` into `canvas` (in place) at `region`, weighted by the box's `mask`.

    region: (x0, y0, x1, y1) inside the canvas. box_xy: top-left of the box the mask covers.
    """
    x0, y0, x1, y1 = region
    bx, by = box_xy
    m = mask[y0 - by : y1 - by, x0 - bx : x1 - bx, None]
    base = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (base + (region_img.astype(np.float32) - base) * m + 0.5).astype(
        np.uint8
    )

"""Reading a portrait image safely: clear errors for missing, corrupt, truncated or huge files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import ImageLoadError
from engine.types import ImageArray

log = logging.getLogger(__name__)

MAX_PIXELS = 100_000_000  # refuse beyond this (decompression bombs, scans of posters)
MAX_SIDE = 4096  # larger images are downscaled on load: a face needs far fewer pixels
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")  # what it opens


def load_image(path: str | Path) -> ImageArray:
    """Read an image file as (H, W, 3) uint8 RGB, honouring EXIF orientation.

    Grayscale and palette images are expanded; transparency is composited on mid-grey.
    Images with a side above MAX_SIDE are downscaled (logged).
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"Portrait not found: {p}. Check the path and try again.")
    if not p.is_file():
        raise ImageLoadError(f"Portrait path is not a file: {p}. Choose an image file instead.")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(p) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageLoadError(
                    f"{p.name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP), above the "
                    f"{MAX_PIXELS // 1_000_000} MP limit. Save a smaller copy (a few megapixels "
                    "is plenty for a portrait) and open that."
                )
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageLoadError(
            f"{p.name} is too large to open safely (over {MAX_PIXELS // 1_000_000} MP). "
            "Save a smaller copy (a few megapixels is plenty for a portrait) and open that."
        ) from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(
            f"{p.name} is not an image Visage can read (is it a photo in JPEG, PNG or WebP "
            "format?). Try re-saving it from an image viewer."
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(
            f"{p.name} is damaged or truncated and cannot be decoded ({err}). "
            "Re-download or re-export the image."
        ) from err
    return _limit_size(rgb, p.name)


def _to_rgb(img: Image.Image) -> ImageArray:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        img = Image.alpha_composite(canvas, rgba)
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        span = max(float(arr.max() - arr.min()), 1e-9)
        img = Image.fromarray(((arr - arr.min()) / span * 255).astype(np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _limit_size(rgb: ImageArray, name: str) -> ImageArray:
    h, w = rgb.shape[:2]
    if w < 32 or h < 32:
        raise ImageLoadError(f"{name} is only {w}x{h} pixels: too small to hold a usable face.")
    side = max(w, h)
    if side <= MAX_SIDE:
        return rgb
    scale = MAX_SIDE / side
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    log.warning("%s is %dx%d; downscaled to %dx%d", name, w, h, *size)
    img = Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))

"""Applying a backward map: OpenCV remap for the CPU path, 2-D grid_sample for compiled graphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from engine.types import ImageArray

if TYPE_CHECKING:
    import torch

F32 = npt.NDArray[np.float32]


def region_map(
    map_grid: F32, box_x0: int, box_y0: int, box_size: int, region: tuple[int, int, int, int]
) -> tuple[F32, F32]:
    """Upsample a grid backward map to image pixels of `region` = (x0, y0, x1, y1).

    map_grid: (G, G, 2) source positions in grid coordinates over the crop box.
    Returns (map_x, map_y), each (y1 - y0, x1 - x0) float32, in image coordinates.
    """
    g = map_grid.shape[0]
    k = box_size / g
    big = cv2.resize(map_grid, (box_size, box_size), interpolation=cv2.INTER_LINEAR)  # (L, L, 2)
    x0, y0, x1, y1 = region
    sub = big[y0 - box_y0 : y1 - box_y0, x0 - box_x0 : x1 - box_x0]
    map_x = (sub[..., 0] + 0.5) * k - 0.5 + box_x0
    map_y = (sub[..., 1] + 0.5) * k - 0.5 + box_y0
    return map_x.astype(np.float32), map_y.astype(np.float32)


def remap(image: ImageArray, map_x: F32, map_y: F32) -> ImageArray:
    """Bilinear backward warp; samples outside the image repeat its edge."""
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def map_to_grid(map_xy: F32, height: int, width: int) -> F32:
    """Pixel-centre source coordinates (H, W, 2) -> grid_sample's [-1, 1] (align_corners=False)."""
    scale = np.array([2.0 / width, 2.0 / height], dtype=np.float32)
    return ((map_xy + 0.5) * scale - 1.0).astype(np.float32)


def grid_sample_warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """image: (B, C, H, W) float; grid: (B, Ho, Wo, 2) in [-1, 1]. Returns (B, C, Ho, Wo).

    4-D (2-D image) bilinear sampling with border padding, the form TensorRT supports.
    """
    from torch.nn.functional import grid_sample

    if image.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2:
        raise ValueError(f"need (B,C,H,W) image and (B,H,W,2) grid, got {image.shape} {grid.shape}")
    return grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)

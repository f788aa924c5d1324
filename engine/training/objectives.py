"""Loss terms that need the face: eye/mouth region masks and the identity-cosine loss."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.geometry.drawing import EYES_CHANNEL, MOUTH_CHANNEL
from engine.landmarks.align import chip_grid, chip_transform
from engine.landmarks.topology import load_topology
from engine.models.identity import load_identity_encoder
from engine.training.pairs import Batch, CrossBatch

REGION_DILATE = 6  # pixels at 256²


def region_masks(tmap: torch.Tensor, dilate: int = REGION_DILATE) -> torch.Tensor:
    """(B, 5, S, S) landmark maps -> (B, 1, S, S) mask of the eyes and mouth, grown by `dilate`."""
    regions = tmap[:, MOUTH_CHANNEL : EYES_CHANNEL + 1]
    k = 2 * dilate + 1
    return F.max_pool2d(regions, k, stride=1, padding=dilate).amax(dim=1, keepdim=True)


def lips_mask(points: torch.Tensor, size: int, dilate: int = REGION_DILATE) -> torch.Tensor:
    """(B, 478, 3) landmarks in crop pixels -> (B, 1, size, size) float mask of the whole mouth:
    the outer-lip polygon (lips and opening), grown by `dilate`."""
    loop = load_topology().lips_outer
    k = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
    masks = np.zeros((len(points), 1, size, size), np.float32)
    for mask, pts in zip(masks, points.detach().cpu().numpy(), strict=True):
        poly = np.round(pts[loop, :2] * 4).astype(np.int32)  # 2 bits of sub-pixel precision
        drawn = cv2.fillPoly(np.zeros((size, size), np.uint8), [poly], 1, cv2.LINE_8, shift=2)
        mask[0] = cv2.dilate(drawn, k)
    return torch.from_numpy(masks).to(points.device)


def geometric_mouth(
    image: torch.Tensor, geometric: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """image (B, 3, S, S) with its whole mouth (lips and opening of the (B, 478, 3) target
    landmarks, grown by REGION_DILATE) taken from `geometric`, detached. On cross-identity pairs
    the identity loss sees this, so it cannot pull the lips or the opening towards the
    portrait's: with no truth to learn the mouth from there, it keeps following the driver."""
    mouth = lips_mask(points, image.shape[-1])
    return image * (1 - mouth) + geometric.detach() * mouth


IDENTITY_REFERENCES = ("source", "driving")


class IdentityLoss:
    """1 - cosine between the identity descriptor of the output (aligned from the driving
    landmarks, differentiably) and a reference descriptor: the source's, the portrait whose
    identity the avatar must keep (default), or the real driving frame's. The encoder is
    frozen."""

    def __init__(self, device: torch.device, reference: str = "source") -> None:
        if reference not in IDENTITY_REFERENCES:
            raise ValueError(f"identity reference must be one of {IDENTITY_REFERENCES}")
        self.encoder = load_identity_encoder(str(device)).eval().requires_grad_(False)
        self.size = self.encoder.config.input_size
        self.reference = reference

    def chips(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S), points (B, 478, 3) crop px -> (B, 3, 150, 150) aligned chips."""
        affines = np.stack([chip_transform(p, self.size) for p in points.detach().cpu().numpy()])
        a = torch.from_numpy(affines).to(images)
        grid = chip_grid(a, (images.shape[-2], images.shape[-1]), self.size)
        return F.grid_sample(
            images, grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    def __call__(self, image: torch.Tensor, b: Batch) -> torch.Tensor:
        if self.reference == "source" and b.source_points is not None:
            return self.keep(image, b.target_points, b.source, b.source_points)
        return self.keep(image, b.target_points, b.driving, b.target_points)

    def cross(self, image: torch.Tensor, c: CrossBatch) -> torch.Tensor:
        """The loss on cross-identity pairs: the portrait is the only reference there is."""
        return self.keep(image, c.target_points, c.source, c.source_points)

    def keep(
        self,
        image: torch.Tensor,
        points: torch.Tensor,
        reference: torch.Tensor,
        reference_points: torch.Tensor,
    ) -> torch.Tensor:
        """images (B, 3, S, S) with their (B, 478, 3) landmarks -> mean (1 - cosine)."""
        pred = self.encoder(self.chips(image, points))
        with torch.no_grad():
            real = self.encoder(self.chips(reference, reference_points))
        return (1 - F.cosine_similarity(pred, real, dim=1)).mean()

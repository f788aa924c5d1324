"""Identity embeddings of faces in images: aligned chips -> the identity encoder -> unit mean."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from engine.landmarks.align import face_chip
from engine.models.identity import IdentityEncoder
from engine.types import ImageArray

F32 = npt.NDArray[np.float32]


def identity_embedding(
    encoder: IdentityEncoder, images: list[ImageArray], points: list[npt.NDArray[np.floating]]
) -> F32:
    """(D,) unit-length mean descriptor of the same person's face in several images.

    images: (H, W, 3) uint8 RGB each; points: the matching (478, 3) landmarks in pixels.
    """
    if not images or len(images) != len(points):
        raise ValueError("need one landmark array per image, and at least one image")
    chips = np.stack([face_chip(img, pts) for img, pts in zip(images, points, strict=True)])
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float().div_(255.0)  # N,3,150,150
    device = next(encoder.parameters()).device
    with torch.inference_mode():
        emb = encoder.embed_normalized(x.to(device)).mean(dim=0)
    emb = emb / emb.norm().clamp_min(1e-8)
    return emb.cpu().numpy().astype(np.float32)

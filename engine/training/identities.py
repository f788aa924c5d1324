"""The identity embedding each training clip's networks are conditioned on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.models.embedding import identity_embedding
from engine.models.identity import IdentityEncoder
from engine.training.clips import ClipData

SAMPLES = 4  # frames per clip averaged into its embedding


def clip_identities(
    clips: list[ClipData], encoder: IdentityEncoder
) -> dict[str, npt.NDArray[np.float32]]:
    """clip name -> (D,) unit embedding from SAMPLES evenly spaced tracked frames."""
    out = {}
    for clip in clips:
        idx = clip.valid_indices
        pick = idx[np.linspace(0, len(idx) - 1, min(SAMPLES, len(idx))).round().astype(int)]
        out[clip.name] = identity_embedding(
            encoder, [clip.crops[i] for i in pick], [clip.points[i] for i in pick]
        )
    return out

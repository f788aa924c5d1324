"""Identity encoder: dlib's 128-d face descriptor network (metric-learning ResNet) in PyTorch.

The architecture is dlib's `dlib_face_recognition_resnet_model_v1` (dnn_face_recognition_ex):

    input 150x150 RGB, (pixel - mean RGB) / 256
    conv 7x7/2, 32 (no padding) + affine + ReLU          -> 72x72
    max pool 3x3/2 (no padding)                          -> 35x35
    3 residual blocks, 32                                -> 35x35
    down block + 3 residual blocks, 64                   -> 17x17
    down block + 2 residual blocks, 128                  -> 8x8
    down block + 2 residual blocks, 256                  -> 4x4
    down block, 256                                      -> 2x2
    global average pool, fully connected 256 -> 128 (no bias)

A residual block is conv3x3 + affine + ReLU, conv3x3 + affine, added to its input, ReLU. A down
block starts with a 3x3 stride-2 unpadded conv, and its shortcut is a 2x2/2 average pool of the
input; dlib adds tensors of different sizes by zero-padding the smaller one at the end of each
axis (channels, then bottom/right), which happens in every down block (channels) and in the last
two (3x3 vs 4x4, 1x1 vs 2x2). The affine layers (frozen batch norm) are folded into the conv
weights and biases here, so each conv carries its own bias.

Descriptors are not L2-normalized, exactly like dlib's; dlib calls two faces the same person when
the Euclidean distance of their descriptors is below 0.6. Weights come from
`engine.tools.convert_face_api` (see assets/PROVENANCE.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.store import load_model
from engine.paths import models_dir

log = logging.getLogger(__name__)

# dlib's input_rgb_image: (pixel - mean) / 256 with these channel means (0..255 scale).
MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_DIVISOR = 256.0
# dlib's decision threshold on the Euclidean distance between two descriptors.
SAME_PERSON_DISTANCE = 0.6


@dataclass(frozen=True)
class IdentityConfig:
    """Hyperparameters of the descriptor network (defaults: dlib's released model).

    stage_channels, stage_blocks: width and block count per stage; every stage but the first
    begins with a down block. final_down: width of the last lone down block (0: none).
    """

    embedding_dim: int = 128
    input_size: int = 150
    stem_channels: int = 32
    stage_channels: tuple[int, ...] = (32, 64, 128, 256)
    stage_blocks: tuple[int, ...] = (3, 4, 3, 3)
    final_down: int = 256

    def __post_init__(self) -> None:
        if len(self.stage_channels) != len(self.stage_blocks):
            raise ValueError("IdentityConfig: stage_channels and stage_blocks differ in length")


def _add_zero_padded(a: Tensor, b: Tensor) -> Tensor:
    """a + b for (B, C, H, W) tensors of different C/H/W: the smaller is zero-padded at the end."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: Tensor) -> Tensor:
        dc, dh, dw = c - t.shape[1], h - t.shape[2], w - t.shape[3]
        if dc or dh or dw:
            t = F.pad(t, (0, dw, 0, dh, 0, dc))
        return t

    return grow(a) + grow(b)


class _Block(nn.Module):
    """dlib's `ares` (stride 1) or `ares_down` (stride 2): (B, Cin, H, W) -> (B, C, H', W')."""

    def __init__(self, in_channels: int, channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        # dlib's con layer pads by k//2 only when the stride is 1.
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride=2 if down else 1, padding=0 if down else 1
        )
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_zero_padded(out, shortcut))


class IdentityEncoder(nn.Module):
    """Face chips -> identity descriptors.

    forward(chips): chips (B, 3, S, S) float RGB in [0, 1] (S = config.input_size, 150), aligned
    like dlib.get_face_chip(img, shape, 150, 0.25) (see engine.landmarks.align.face_chip).
    Returns (B, embedding_dim) descriptors, not normalized (dlib's scale: same person < 0.6).
    """

    mean: Tensor  # (1, 3, 1, 1) dlib's channel means on the [0, 1] scale (not saved)

    def __init__(self, config: IdentityConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(3, config.stem_channels, 7, stride=2, padding=0)
        blocks: list[nn.Module] = []
        channels = config.stem_channels
        stages = zip(config.stage_channels, config.stage_blocks, strict=True)
        for index, (width, count) in enumerate(stages):
            for j in range(count):
                blocks.append(_Block(channels, width, down=index > 0 and j == 0))
                channels = width
        if config.final_down:
            blocks.append(_Block(channels, config.final_down, down=True))
            channels = config.final_down
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, config.embedding_dim, bias=False)
        mean = torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean / 255.0, persistent=False)

    def _check(self, chips: Tensor) -> None:
        s = self.config.input_size
        if chips.ndim != 4 or chips.shape[1] != 3 or tuple(chips.shape[2:]) != (s, s):
            raise ValueError(
                f"IdentityEncoder expects chips of shape (B, 3, {s}, {s}), got {tuple(chips.shape)}"
            )
        if not chips.is_floating_point():
            raise ValueError(f"IdentityEncoder expects float RGB in [0, 1], got {chips.dtype}")

    def forward(self, chips: Tensor) -> Tensor:
        self._check(chips)
        if chips.shape[0] == 0:
            return chips.new_zeros((0, self.config.embedding_dim))
        x = (chips - self.mean) * (255.0 / INPUT_DIVISOR)  # dlib: (p - mean) / 256, p in 0..255
        x = F.relu(self.stem(x))
        x = F.max_pool2d(x, 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def embed_normalized(self, chips: Tensor) -> Tensor:
        """(B, 3, S, S) chips -> (B, embedding_dim) unit-length descriptors."""
        return F.normalize(self.forward(chips), dim=1)


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of descriptors along the last axis: (..., D), (..., D) -> (...)."""
    return F.cosine_similarity(a, b, dim=-1)


def distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distance of descriptors (dlib's metric): (..., D), (..., D) -> (...)."""
    return torch.linalg.vector_norm(a - b, dim=-1)


def identity_dir() -> Path:
    """Folder of the shipped identity weights (assets/models/identity)."""
    return models_dir() / "identity"


def load_identity_encoder(device: str = "cpu") -> IdentityEncoder:
    """The shipped encoder in eval mode with gradients off (raises ConfigError when missing)."""
    model = load_model(IdentityEncoder, IdentityConfig, identity_dir(), device=device)
    model.requires_grad_(False)
    log.debug("loaded identity encoder from %s on %s", identity_dir(), device)
    return model

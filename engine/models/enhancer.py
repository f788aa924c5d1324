"""Temporal enhancer: 256² -> 512² (2x), causal.

It sees the current 256² result, the portrait warped at 512² by the same flow (the detail the
portrait really has) and the last k enhanced outputs from a rolling buffer (no look-ahead, so
no added latency). The base image is the 512² warped portrait plus the bicubic upsampling of
what the 256² networks changed (result - 256² warp): the untrained enhancer is exactly the
geometric path at 512², as sharp as the portrait. The network predicts a residual over that
base from a zero-initialized head (it works at 256² on pixel-unshuffled inputs to stay cheap).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.models.blocks import ConvAct, ResBlock, check_shape, pixel_unshuffle, zero_init


@dataclass(frozen=True)
class EnhancerConfig:
    """history: k previous outputs seen. channels/blocks: width and depth at 256²."""

    history: int = 2
    channels: int = 32
    blocks: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.history <= 8:
            raise ConfigError(f"enhancer history must be within [0, 8], got {self.history}")
        if self.channels < 1 or self.blocks < 0:
            raise ConfigError("enhancer channels must be >= 1 and blocks >= 0")


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bicubic", align_corners=False)


def enhancer_base(
    image: torch.Tensor, warped: torch.Tensor, warped_hr: torch.Tensor
) -> torch.Tensor:
    """(B, 3, S, S) result and 256² warp, (B, 3, 2S, 2S) 512² warp -> (B, 3, 2S, 2S) base."""
    return warped_hr + upsample2(image - warped)


class Enhancer(nn.Module):
    def __init__(self, config: EnhancerConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        cin = 4 * 3 * (2 + config.history)  # pixel-unshuffled base, source, history
        self.inp = ConvAct(cin, c)
        self.body = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.head = zero_init(nn.Conv2d(c, 12, 3, padding=1))

    def forward(
        self,
        image: torch.Tensor,
        warped: torch.Tensor,
        warped_hr: torch.Tensor,
        history: torch.Tensor,
    ) -> torch.Tensor:
        """image, warped: (B, 3, S, S) the 256² result and the 256² warped portrait;
        warped_hr: (B, 3, 2S, 2S) the portrait warped at 512²; history: (B, 3k, 2S, 2S), the
        last k outputs, newest first. Returns (B, 3, 2S, 2S).
        """
        k = self.config.history
        if history.shape[1] != 3 * k:
            raise ValueError(f"history must have {3 * k} channels, got {history.shape[1]}")
        check_shape("Enhancer image", image, (None, 3, None, None))
        b, s = image.shape[0], image.shape[-1]
        check_shape("Enhancer image", image, (b, 3, s, s))
        check_shape("Enhancer warped", warped, (b, 3, s, s))
        check_shape("Enhancer warped_hr", warped_hr, (b, 3, 2 * s, 2 * s))
        check_shape("Enhancer history", history, (b, 3 * k, 2 * s, 2 * s))
        base = enhancer_base(image, warped, warped_hr)
        x = torch.cat([base, warped_hr, history], dim=1)  # B,3(2+k),2S,2S
        x = pixel_unshuffle(x, 2)  # B,12(2+k),S,S
        h = self.body(self.inp(x))
        return base + F.pixel_shuffle(self.head(h), 2)  # B,3,2S,2S

"""Single-scale PatchGAN discriminator (pix2pix / MetaPortrait style) for adversarial training.

Layout for `layers` = L, `channels` = c:
  block 0      : conv 4x4 stride 2, in_channels -> c,            LeakyReLU(0.2)   (no norm)
  block 1..L-1 : conv 4x4 stride 2, -> c * min(2^i, 8),  InstanceNorm, LeakyReLU(0.2)
  block L      : conv 4x4 stride 1, -> c * min(2^L, 8),  InstanceNorm, LeakyReLU(0.2)
  head         : conv 4x4 stride 1, -> 1 logit per patch (no activation: LSGAN / hinge ready)
All convs use padding 1, so an input (B, C, H, W) gives logits (B, 1, H // 2^L - 2, W // 2^L - 2)
and L + 1 feature maps (the block outputs) for feature matching. Spectral norm, when enabled,
wraps every conv (head included). Instance norm is affine and passes an empty batch through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchDiscriminatorConfig:
    in_channels: int = 3
    channels: int = 64
    layers: int = 3  # stride-2 blocks; the receptive field grows with it (70 px for 3)
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.channels < 1:
            raise ConfigError("discriminator in_channels and channels must be >= 1")
        if not 1 <= self.layers <= 8:
            raise ConfigError(f"discriminator layers must be within [1, 8], got {self.layers}")

    @property
    def min_size(self) -> int:
        """Smallest input height / width: the logits map is then 1x1."""
        return 3 * 2**self.layers


class _InstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm that returns an empty batch unchanged (torch raises on B == 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return x if x.shape[0] == 0 else super().forward(x)


class PatchDiscriminator(nn.Module):
    """x (B, in_channels, H, W) -> (logits (B, 1, h, w), the L + 1 block outputs (B, C_i, ., .))."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1)
            return spectral_norm(layer) if config.spectral_norm else layer

        self.blocks = nn.ModuleList()
        cin = config.in_channels
        for i in range(config.layers + 1):
            cout = config.channels * min(2**i, 8)
            stride = 2 if i < config.layers else 1
            parts: list[nn.Module] = [conv(cin, cout, stride)]
            if i > 0:
                parts.append(_InstanceNorm(cout, affine=True))
            parts.append(nn.LeakyReLU(0.2, inplace=True))
            self.blocks.append(nn.Sequential(*parts))
            cin = cout
        self.head = conv(cin, 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"discriminator expects (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[2], x.shape[3]) < cfg.min_size:
            raise ValueError(
                f"discriminator input {x.shape[2]}x{x.shape[3]} is below the "
                f"{cfg.min_size}x{cfg.min_size} minimum for {cfg.layers} layers"
            )
        feats: list[Tensor] = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.head(x), feats

"""ID-fusion network: fills what warping cannot (mouth interior, teeth, opening eyes, revealed
background), keeping the portrait's identity.

Portrait features at 3 scales (S/2, S/4, S/8) are computed once per portrait (`encode_source`)
and warped by the final flow every frame. The decoder runs from S/8 up: FusionBlocks at the two
coarse scales blend an attribute branch (SPADE on warped features, visibility and target
landmark maps) with an identity branch (AdaIN from the identity embedding) through a learned
mask; at S/2 a region branch adds capacity inside the target's eyes and mouth (dilated mesh
polygons), and the head predicts the full-resolution residual through a pixel shuffle (no
convolution runs at S, which keeps the CPU tier real time). The head is zero-initialized: the
untrained network returns the warped portrait exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.geometry.drawing import EYES_CHANNEL, MAP_CHANNELS, MOUTH_CHANNEL
from engine.models.blocks import (
    ConvAct,
    FusionBlock,
    check_shape,
    pixel_unshuffle,
    pyramid,
    resize_grid,
    up2,
    warp,
    zero_init,
)

Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class FusionConfig:
    """size: crop side S. channels: feature widths at S/2, S/4, S/8. id_dim: identity
    embedding width. hidden: width of the FusionNorm condition convs. region_dilate: pixels (at
    S/4) by which the eye and mouth polygons grow to form the region mask. painted_mouth: the
    network was trained on the warped portrait with the app's mouth interior already painted in
    (engine.geometry.mouth), so it must be given that image, and its residual goes over it;
    False for weights trained on the bare warp.
    """

    size: int = 256
    channels: tuple[int, int, int] = (16, 32, 64)
    id_dim: int = 128
    hidden: int = 16
    region_dilate: int = 2
    painted_mouth: bool = False

    def __post_init__(self) -> None:
        if self.size < 64 or self.size % 8:
            raise ConfigError(f"fusion size must be a multiple of 8 >= 64, got {self.size}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ConfigError(f"fusion channels must be 3 positive ints, got {self.channels}")


def _check_side(name: str, image: torch.Tensor) -> int:
    """The side S of a (B, 3, S, S) image; S must be a multiple of 8 (three 2x reductions)."""
    check_shape(f"FusionNet {name}", image, (None, 3, None, None))
    s = image.shape[-1]
    check_shape(f"FusionNet {name}", image, (None, 3, s, s))
    if s < 8 or s % 8:
        raise ValueError(f"FusionNet needs a crop side that is a multiple of 8, got {s}")
    return s


class FusionNet(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        m = MAP_CHANNELS
        self.enc = nn.ModuleList([ConvAct(3, c1, 2), ConvAct(c1, c2, 2), ConvAct(c2, c3, 2)])
        self.start = ConvAct(c3 + 1, c3)
        self.b3 = FusionBlock(c3, c3, c3 + 1 + m, config.id_dim, config.hidden)
        self.reduce3 = nn.Conv2d(c3, c2, 1)
        self.merge2 = nn.Conv2d(2 * c2, c2, 1)
        self.b2 = FusionBlock(c2, c2, c2 + 1 + m, config.id_dim, config.hidden)
        self.reduce2 = nn.Conv2d(c2, c1, 1)
        self.merge1 = nn.Sequential(nn.Conv2d(2 * c1 + 12 + 1 + m, c1, 1), ConvAct(c1, c1))
        self.region = ConvAct(c1 + 2, c1)
        self.head = zero_init(nn.Conv2d(c1, 12, 3, padding=1))

    def encode_source(self, source: torch.Tensor) -> Features:
        """source (B, 3, S, S) in [0, 1] -> features at S/2, S/4, S/8 (once per portrait)."""
        _check_side("source", source)
        f1 = self.enc[0](source)
        f2 = self.enc[1](f1)
        f3 = self.enc[2](f2)
        return f1, f2, f3

    def forward(
        self,
        feats: Features,
        warped: torch.Tensor,
        grid: torch.Tensor,
        visibility: torch.Tensor,
        tmap: torch.Tensor,
        ident: torch.Tensor,
    ) -> torch.Tensor:
        """feats: from encode_source. warped: (B, 3, S, S) portrait warped by `grid`.
        grid: (B, S, S, 2) final flow. visibility: (B, 1, S, S). tmap: (B, 5, S, S) target
        landmark maps. ident: (B, id_dim) identity embedding of the portrait.
        Returns (B, 3, S, S): warped + residual.
        """
        s = _check_side("warped", warped)
        b = warped.shape[0]
        if len(feats) != 3:
            raise ValueError(f"FusionNet needs 3 feature maps (encode_source), got {len(feats)}")
        for k, (f, c) in enumerate(zip(feats, self.config.channels, strict=True)):
            check_shape(f"FusionNet feats[{k}]", f, (b, c, s >> (k + 1), s >> (k + 1)))
        check_shape("FusionNet grid", grid, (b, s, s, 2))
        check_shape("FusionNet visibility", visibility, (b, 1, s, s))
        check_shape("FusionNet tmap", tmap, (b, MAP_CHANNELS, s, s))
        check_shape("FusionNet ident", ident, (b, self.config.id_dim))
        vis = pyramid(visibility, 4)  # S .. S/8
        maps = pyramid(tmap, 4)
        w1, w2, w3 = (warp(f, resize_grid(grid, s >> (k + 1))) for k, f in enumerate(feats))

        x = self.start(torch.cat([w3, vis[3]], dim=1))  # B,c3,S/8
        x = self.b3(x, torch.cat([w3 * vis[3], vis[3], maps[3]], dim=1), ident)
        x = self.merge2(torch.cat([up2(self.reduce3(x)), w2], dim=1))  # B,c2,S/4
        x = self.b2(x, torch.cat([w2 * vis[2], vis[2], maps[2]], dim=1), ident)
        regions = maps[2][:, MOUTH_CHANNEL : EYES_CHANNEL + 1]  # B,2,S/4: mouth, eyes
        k = 2 * self.config.region_dilate + 1
        regions = up2(F.max_pool2d(regions, k, stride=1, padding=self.config.region_dilate))
        x = up2(self.reduce2(x))  # B,c1,S/2
        x = self.merge1(torch.cat([x, w1, pixel_unshuffle(warped, 2), vis[1], maps[1]], dim=1))
        mask = regions.amax(dim=1, keepdim=True)  # B,1,S/2
        x = x + mask * self.region(torch.cat([x, regions], dim=1))
        return warped + F.pixel_shuffle(self.head(x), 2)  # B,3,S,S

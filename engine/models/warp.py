"""Warp network: a residual correction to the geometric flow, and a visibility map.

Inputs are at the crop resolution S (256): the portrait crop, the portrait warped by the
geometric flow, landmark maps of target and portrait (engine.geometry.drawing) and the
geometric flow itself. The network works at `config.size` (64): a global motion code from the
two landmark maps (six stride-2 convs, FC, L2-normalized) drives AdaIN blocks in a small
hourglass, as in MetaPortrait. Its output layer is zero-initialized: untrained, the flow is the
geometric flow exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.geometry.drawing import MAP_CHANNELS
from engine.models.blocks import (
    AdaINBlock,
    ConvAct,
    check_shape,
    identity_grid,
    resize,
    up2,
    zero_init,
)

VISIBILITY_BIAS = 4.0  # sigmoid(4) = 0.98: everything starts visible


@dataclass(frozen=True)
class WarpConfig:
    """size: working resolution (a power of 2 >= 64). channels: at size, size/2, size/4.
    code_dim: motion code width. blocks: AdaIN blocks at size/4. max_offset: the largest flow
    correction, in grid units ([-1, 1] spans the crop), reached smoothly through tanh.
    """

    size: int = 64
    channels: tuple[int, int, int] = (16, 32, 64)
    code_dim: int = 64
    blocks: int = 2
    max_offset: float = 0.15

    def __post_init__(self) -> None:
        if self.size < 64 or self.size & (self.size - 1):
            raise ConfigError(f"warp size must be a power of 2 >= 64, got {self.size}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ConfigError(f"warp channels must be 3 positive ints, got {self.channels}")


class MotionEncoder(nn.Module):
    """(B, 2*MAP_CHANNELS, s, s) landmark maps -> (B, code_dim) unit-length motion code."""

    def __init__(self, size: int, code_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, ch = 2 * MAP_CHANNELS, 16
        for _ in range(6):
            layers.append(ConvAct(cin, ch, stride=2))
            cin, ch = ch, min(ch * 2, code_dim)
        self.convs = nn.Sequential(*layers)
        side = size // 64
        self.fc = nn.Linear(cin * side * side, code_dim)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        h = self.convs(maps).flatten(1)  # B, C*side*side
        return F.normalize(self.fc(h), dim=1)


class WarpNet(nn.Module):
    def __init__(self, config: WarpConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2 = config.channels
        cin = 3 + 3 + 2 * MAP_CHANNELS + 2  # source, geometric warp, maps, displacement
        self.motion = MotionEncoder(config.size, config.code_dim)
        self.e0 = ConvAct(cin, c0)
        self.e1 = ConvAct(c0, c1, stride=2)
        self.e2 = ConvAct(c1, c2, stride=2)
        self.mid = nn.ModuleList(AdaINBlock(c2, config.code_dim) for _ in range(config.blocks))
        self.d1 = ConvAct(c2 + c1, c1)
        self.d0 = ConvAct(c1 + c0, c0)
        self.head = zero_init(nn.Conv2d(c0, 3, 3, padding=1))

    def forward(
        self,
        source: torch.Tensor,
        warped: torch.Tensor,
        tmap: torch.Tensor,
        smap: torch.Tensor,
        grid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """source, warped: (B, 3, S, S); tmap, smap: (B, 5, S, S); grid: (B, S, S, 2).

        Returns (grid (B, S, S, 2) corrected flow, visibility (B, 1, S, S) in (0, 1)).
        """
        check_shape("WarpNet source", source, (None, 3, None, None))
        b, s = source.shape[0], source.shape[-1]
        check_shape("WarpNet source", source, (b, 3, s, s))
        check_shape("WarpNet warped", warped, (b, 3, s, s))
        check_shape("WarpNet tmap", tmap, (b, MAP_CHANNELS, s, s))
        check_shape("WarpNet smap", smap, (b, MAP_CHANNELS, s, s))
        check_shape("WarpNet grid", grid, (b, s, s, 2))
        n = self.config.size
        base = identity_grid(s, b, source.device, source.dtype)
        disp = (grid - base).permute(0, 3, 1, 2)  # B,2,S,S
        maps = torch.cat([resize(tmap, n), resize(smap, n)], dim=1)  # B,10,n,n
        x = torch.cat([resize(source, n), resize(warped, n), maps, resize(disp, n)], dim=1)
        code = self.motion(maps)  # B,D
        h0 = self.e0(x)  # B,c0,n,n
        h1 = self.e1(h0)  # B,c1,n/2,n/2
        h = self.e2(h1)  # B,c2,n/4,n/4
        for block in self.mid:
            h = block(h, code)
        h = self.d1(torch.cat([up2(h), h1], dim=1))
        h = self.d0(torch.cat([up2(h), h0], dim=1))
        out = F.interpolate(self.head(h), size=(s, s), mode="bilinear", align_corners=False)
        delta = self.config.max_offset * torch.tanh(out[:, :2]).permute(0, 2, 3, 1)  # B,S,S,2
        visibility = torch.sigmoid(out[:, 2:3] + VISIBILITY_BIAS)  # B,1,S,S
        return grid + delta, visibility

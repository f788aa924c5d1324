"""The trainable graph: the networks of one tier run on a Batch, as one nn.Module (so that
DistributedDataParallel sees a single forward per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.blocks import warp
from engine.models.fusion import FusionNet
from engine.models.warp import WarpNet

GENERATOR_INPUTS = ("source", "grid", "smap", "tmap", "ident")  # Generator.forward's, by name


@dataclass(frozen=True)
class GeneratorOutput:
    """warped_geo: portrait warped by the geometric flow. grid: final flow (B, S, S, 2).
    warped: portrait warped by the final flow. visibility: (B, 1, S, S).
    fused: ID-fusion output (None in the warp-only stage). All images (B, 3, S, S).
    """

    warped_geo: torch.Tensor
    grid: torch.Tensor
    warped: torch.Tensor
    visibility: torch.Tensor
    fused: torch.Tensor | None

    @property
    def image(self) -> torch.Tensor:
        return self.fused if self.fused is not None else self.warped

    def head(self, n: int) -> GeneratorOutput:
        """The first n items of the batch."""
        fused = None if self.fused is None else self.fused[:n]
        return GeneratorOutput(
            self.warped_geo[:n], self.grid[:n], self.warped[:n], self.visibility[:n], fused
        )


class Generator(nn.Module):
    """warp (always) + fusion (joint stage onwards). Enhancer training runs it frozen."""

    def __init__(self, warp_net: WarpNet, fusion: FusionNet | None) -> None:
        super().__init__()
        self.warp_net = warp_net
        self.fusion = fusion

    def forward(
        self,
        source: torch.Tensor,
        grid: torch.Tensor,
        smap: torch.Tensor,
        tmap: torch.Tensor,
        ident: torch.Tensor,
    ) -> GeneratorOutput:
        """source: (B, 3, S, S); grid: (B, S, S, 2); smap, tmap: (B, 5, S, S); ident: (B, D)."""
        warped_geo = warp(source, grid)
        final, vis = self.warp_net(source, warped_geo, tmap, smap, grid)
        warped = warp(source, final)
        fused = None
        if self.fusion is not None:
            feats = self.fusion.encode_source(source)
            fused = self.fusion(feats, warped, final, vis, tmap, ident)
        return GeneratorOutput(warped_geo, final, warped, vis, fused)

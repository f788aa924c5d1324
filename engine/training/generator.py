"""The trainable graph: the networks of one tier run on a Batch, as one nn.Module (so that
DistributedDataParallel sees a single forward per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.blocks import paint_over, warp
from engine.models.fusion import FusionNet
from engine.models.warp import WarpNet

GENERATOR_INPUTS = ("source", "grid", "smap", "tmap", "ident", "mouth")  # forward's, by name


@dataclass(frozen=True)
class GeneratorOutput:
    """warped_geo: portrait warped by the geometric flow. grid: final flow (B, S, S, 2).
    warped: portrait warped by the final flow. visibility: (B, 1, S, S).
    fused: ID-fusion output (None in the warp-only stage). base: what its residual goes over
    (warped, with the mouth interior painted for a painted_mouth net; None without fusion).
    All images (B, 3, S, S).
    """

    warped_geo: torch.Tensor
    grid: torch.Tensor
    warped: torch.Tensor
    visibility: torch.Tensor
    fused: torch.Tensor | None
    base: torch.Tensor | None = None

    @property
    def image(self) -> torch.Tensor:
        return self.fused if self.fused is not None else self.warped

    def head(self, n: int) -> GeneratorOutput:
        """The first n items of the batch."""
        fused = None if self.fused is None else self.fused[:n]
        base = None if self.base is None else self.base[:n]
        return GeneratorOutput(
            self.warped_geo[:n], self.grid[:n], self.warped[:n], self.visibility[:n], fused, base
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
        mouth: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """source: (B, 3, S, S); grid: (B, S, S, 2); smap, tmap: (B, 5, S, S); ident: (B, D);
        mouth: (B, 4, S, S) the painted mouth interior (pairs.mouth_layer), which a fusion net
        with config.painted_mouth needs."""
        warped_geo = warp(source, grid)
        final, vis = self.warp_net(source, warped_geo, tmap, smap, grid)
        warped = warp(source, final)
        fused = base = None
        if self.fusion is not None:
            feats = self.fusion.encode_source(source)
            base = warped
            if self.fusion.config.painted_mouth:
                if mouth is None:
                    raise ValueError("this fusion net was trained on painted mouths: pass mouth")
                base = paint_over(warped, mouth)
            fused = self.fusion(feats, base, final, vis, tmap, ident)
        return GeneratorOutput(warped_geo, final, warped, vis, fused, base)

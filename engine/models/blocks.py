"""Building blocks shared by the networks: pure tensor functions with thin nn.Module wrappers.

Every op here is TensorRT-friendly: 2-D convolutions, instance norm, bilinear resizing, 4-D
grid_sample. Shapes: B batch, C channels, H x W spatial.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size), bilinear (area-like when shrinking by 2^k)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] > size and x.shape[-1] % size == 0:
        k = x.shape[-1] // size
        return F.avg_pool2d(x, k)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def resize_grid(grid: torch.Tensor, size: int) -> torch.Tensor:
    """A sampling grid (B, H, W, 2) in [-1, 1] resized to (B, size, size, 2)."""
    return resize(grid.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)  # B,2,H,W <-> B,H,W,2


def warp(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward-warp x (B, C, H, W) by grid (B, Ho, Wo, 2) in [-1, 1] -> (B, C, Ho, Wo)."""
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def paint_over(image: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """image (B, 3, H, W) under a (B, 4, H, W) layer: RGB premultiplied by alpha, then alpha."""
    return image * (1 - layer[:, 3:4]) + layer[:, :3]


def identity_grid(size: int, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(batch, size, size, 2) grid that samples every pixel centre at itself."""
    coords = (torch.arange(size, device=device, dtype=dtype) + 0.5) * (2.0 / size) - 1.0
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(batch, size, size, 2)


def check_shape(name: str, x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """Raise ValueError unless x has len(shape) dims and each size given (not None) matches."""
    ok = x.dim() == len(shape)
    if ok:
        for want, got in zip(shape, x.shape, strict=True):
            if want is not None and want != got:
                ok = False
    if not ok:
        sizes = ", ".join("*" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must have shape ({sizes}), got {tuple(x.shape)}")


def pixel_unshuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """F.pixel_unshuffle, also for an empty batch: torch's CPU kernel returns a zero-element
    input unchanged, (0, C, H, W) instead of (0, C*r*r, H/r, W/r) (pytorch/pytorch#192816)."""
    if x.numel() == 0:
        b, c, h, w = x.shape
        return x.reshape(b, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4).flatten(1, 3)
    return F.pixel_unshuffle(x, r)


def zero_init(layer: nn.Conv2d | nn.Linear) -> nn.Conv2d | nn.Linear:
    """Zero a layer's weights and bias: a residual head that starts as the identity."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ConvAct(nn.Sequential):
    """3x3 (or k x k) conv + LeakyReLU(0.2); stride 2 halves the size."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.LeakyReLU(0.2, inplace=True)
        )


class ResBlock(nn.Module):
    """Plain residual block: x + conv(act(conv(x)))."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaIN(nn.Module):
    """Instance norm whose scale and shift come from a global code. x: (B,C,H,W), code: (B,D)."""

    def __init__(self, ch: int, code_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.affine = nn.Linear(code_dim, 2 * ch)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(code).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # B,C,1,1
        return self.norm(x) * (1 + gamma) + beta


class AdaINBlock(nn.Module):
    """Residual block modulated by a global code (the warp net's motion code)."""

    def __init__(self, ch: int, code_dim: int) -> None:
        super().__init__()
        self.n1, self.n2 = AdaIN(ch, code_dim), AdaIN(ch, code_dim)
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.leaky_relu(self.n1(x, code), 0.2))
        h = self.c2(F.leaky_relu(self.n2(h, code), 0.2))
        return x + h


class FusionNorm(nn.Module):
    """Normalization that blends an attribute branch and an identity branch through a mask.

    attribute (SPADE): per-pixel scale/shift from a condition map (warped features, occlusion,
    landmark maps); identity (AdaIN): per-channel scale/shift from the identity embedding;
    a learned 1-channel mask m picks per pixel: m * attribute + (1 - m) * identity.
    x: (B, C, H, W); cond: (B, Cc, H, W); ident: (B, D).
    """

    def __init__(self, ch: int, cond_ch: int, id_dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(cond_ch, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.attr = nn.Conv2d(hidden, 2 * ch + 1, 1)  # gamma, beta, mask logit
        self.ident = nn.Linear(id_dim, 2 * ch)
        self.ch = ch

    def forward(self, x: torch.Tensor, cond: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        s = self.shared(cond)
        a = self.attr(s)  # B,2C+1,H,W
        ga, ba, m = a[:, : self.ch], a[:, self.ch : 2 * self.ch], torch.sigmoid(a[:, -1:])
        gi, bi = self.ident(ident).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # B,C,1,1 each
        return m * (h * (1 + ga) + ba) + (1 - m) * (h * (1 + gi) + bi)


class FusionBlock(nn.Module):
    """Residual block with FusionNorm before each conv (SPADE-ResBlk with identity blending)."""

    def __init__(self, cin: int, cout: int, cond_ch: int, id_dim: int, hidden: int) -> None:
        super().__init__()
        self.n1 = FusionNorm(cin, cond_ch, id_dim, hidden)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.n2 = FusionNorm(cout, cond_ch, id_dim, hidden)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.leaky_relu(self.n1(x, cond, ident), 0.2))
        h = self.c2(F.leaky_relu(self.n2(h, cond, ident), 0.2))
        return self.skip(x) + h


def pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x, x/2, x/4, ...]: `levels` successive 2x average-pool reductions of (B, C, H, W)."""
    out = [x]
    for _ in range(levels - 1):
        out.append(F.avg_pool2d(out[-1], 2))
    return out


def up2(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W) bilinear."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

"""Training losses: LSGAN, discriminator feature matching, masked region MSE, identity, L1,
SSIM.

Pure functions of tensors; every one returns a scalar (0-dim) tensor. An empty input (batch 0)
gives 0 rather than NaN, still attached to the graph of its inputs. Nothing is detached unless
stated (feature matching detaches the real features; region_loss detaches the mask).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)


def _mean(x: Tensor) -> Tensor:
    """Mean of all elements; 0 (keeping x's grad_fn) when x is empty."""
    return x.sum() * 0.0 if x.numel() == 0 else x.mean()


def _same_shape(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")


def lsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator LSGAN loss 0.5 * (mean((real - 1)^2) + mean(fake^2)) (halved, as in the
    LSGAN paper and pix2pixHD). real_logits, fake_logits: any shape, e.g. (B, 1, h, w).
    Pass fake_logits computed on detached generator output."""
    return 0.5 * (_mean((real_logits - 1.0).square()) + _mean(fake_logits.square()))


def lsgan_g_loss(fake_logits: Tensor) -> Tensor:
    """Generator LSGAN loss mean((fake - 1)^2) (not halved, as in pix2pixHD / FOMM).
    fake_logits: any shape, e.g. (B, 1, h, w)."""
    return _mean((fake_logits - 1.0).square())


def feature_matching_loss(real_feats: Sequence[Tensor], fake_feats: Sequence[Tensor]) -> Tensor:
    """Mean over layers of mean |fake_l - real_l.detach()| (pix2pixHD feature matching).

    real_feats, fake_feats: the discriminator's intermediate maps, layer l of shape
    (B, C_l, h_l, w_l) in both lists. Averaged (not summed) over layers, so the scale does not
    grow with the discriminator's depth.
    """
    if len(real_feats) != len(fake_feats) or not real_feats:
        raise ValueError(
            f"feature_matching_loss: need equal non-empty lists, got {len(real_feats)} real "
            f"and {len(fake_feats)} fake feature maps"
        )
    total = fake_feats[0].new_zeros(())
    for i, (real, fake) in enumerate(zip(real_feats, fake_feats, strict=True)):
        _same_shape(real, fake, f"feature_matching_loss layer {i}")
        total = total + _mean((fake - real.detach()).abs())
    return total / len(fake_feats)


def region_loss(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """MSE inside a soft mask: sum(mask * (pred - target)^2) / (C * sum(mask) + eps).

    pred, target: (B, C, H, W); mask: (B, 1, H, W) with weights in [0, 1], broadcast over the
    channels and detached (a loss must not shrink its own mask). Normalised over the whole batch
    by the mask area, so a mask of ones gives the plain MSE and an empty mask gives 0.
    """
    _same_shape(pred, target, "region_loss pred/target")
    if pred.dim() != 4 or mask.shape != (pred.shape[0], 1, *pred.shape[2:]):
        raise ValueError(
            f"region_loss: pred (B, C, H, W) needs a (B, 1, H, W) mask, got pred "
            f"{tuple(pred.shape)} and mask {tuple(mask.shape)}"
        )
    mask = mask.detach()
    weighted = (mask * (pred - target).square()).sum()
    area = mask.sum() * pred.shape[1]
    return weighted / (area + eps)


def identity_cosine_loss(pred_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """mean(1 - cos(pred_emb, ref_emb)) over the batch; pred_emb, ref_emb: (B, D).

    In [0, 2]: 0 for parallel embeddings, 1 for orthogonal (or an all-zero embedding).
    """
    _same_shape(pred_emb, ref_emb, "identity_cosine_loss")
    if pred_emb.dim() != 2:
        raise ValueError(f"identity_cosine_loss: need (B, D) embeddings, got {pred_emb.shape}")
    return _mean(1.0 - F.cosine_similarity(pred_emb, ref_emb, dim=1, eps=1e-8))


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """mean |pred - target|; pred, target: same shape (no broadcasting), e.g. (B, 3, H, W)."""
    _same_shape(pred, target, "l1_loss")
    return _mean((pred - target).abs())


def _gaussian_window(channels: int, like: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - mean SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5, per channel, valid
    windows only), the differentiable twin of engine.evaluation.metrics.ssim.

    pred, target: (B, C, H, W) in [0, 1], H and W >= 11.
    """
    _same_shape(pred, target, "ssim_loss")
    if pred.dim() != 4 or min(pred.shape[-2:]) < 11:
        raise ValueError(f"ssim_loss: need (B, C, H>=11, W>=11) images, got {tuple(pred.shape)}")
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    c = pred.shape[1]
    w = _gaussian_window(c, pred)
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, w, groups=c)

    mx, my = blur(pred), blur(target)
    vx = blur(pred * pred) - mx * mx
    vy = blur(target * target) - my * my
    cxy = blur(pred * target) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1.0 - ssim_map.mean()

"""Training losses: ST-LPIPS perceptual loss, PatchGAN discriminator, LSGAN, FM, region, ID, L1."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from engine.errors import ConfigError
from engine.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from engine.training import perceptual
from engine.training.losses import (
    feature_matching_loss,
    identity_cosine_loss,
    l1_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    region_loss,
)
from engine.training.perceptual import (
    AlexFeatures,
    BackboneWeightsError,
    PerceptualLoss,
    lpips_distance,
    read_stlpips_state,
)


def load_portrait(portraits_dir: Path, size: int) -> torch.Tensor:
    """grace_hopper.jpg as (1, 3, size, size) float RGB in [0, 1]."""
    bgr = cv2.imread(str(portraits_dir / "grace_hopper.jpg"))
    assert bgr is not None
    rgb = cv2.cvtColor(
        cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
    )
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def box_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="reflect"), k, stride=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on the shared 2-core box, two threads stall each other under load
    (measured 3-6x slower); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def alex_loss() -> PerceptualLoss:
    return PerceptualLoss("alex")


@pytest.fixture(scope="module")
def image(portraits_dir: Path) -> torch.Tensor:
    return load_portrait(portraits_dir, 96)


# --- perceptual loss ---------------------------------------------------------------------------


def test_perceptual_zero_for_identical_and_grows_with_distortion(
    alex_loss: PerceptualLoss, image: torch.Tensor
) -> None:
    with torch.no_grad():
        same = alex_loss(image, image.clone())
        light, heavy = (alex_loss(box_blur(image, k), image) for k in (3, 9))
        noise = alex_loss((image + 0.2 * torch.randn_like(image)).clamp(0, 1), image)
    assert same.dim() == 0 and same.item() == 0.0
    assert 0.0 < light.item() < heavy.item()
    assert noise.item() > light.item()


def test_vgg16_perceptual_and_lpips(portraits_dir: Path) -> None:
    img = load_portrait(portraits_dir, 48)
    loss = PerceptualLoss("vgg16", scales=(1.0, 0.5), layers=4, weights=(1.0, 1.0, 1.0, 0.1))
    pred = box_blur(img, 7).requires_grad_(True)
    heavy = loss(pred, img)
    heavy.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with torch.no_grad():
        assert heavy.item() > loss(box_blur(img, 3), img).item() > 0.0
        assert loss(img, img).item() == 0.0
        lp = loss.lpips_distance(
            torch.cat([img, box_blur(img, 3), box_blur(img, 7)]), img.repeat(3, 1, 1, 1)
        )
    assert lp.shape == (3,) and lp[0].item() == pytest.approx(0.0, abs=1e-6) and 0 < lp[1] < lp[2]
    small = torch.rand(1, 3, 18, 18)  # Vgg16Features.min_size
    assert PerceptualLoss("alex", scales=(1.0,)).backbone.min_size == 21
    assert loss.backbone(small)[-1].shape == (1, 512, 3, 3)
    with pytest.raises(ValueError, match="18x18 minimum"):
        PerceptualLoss("vgg16", scales=(1.0,))(small[..., 1:], small[..., 1:])


def test_gradient_reaches_pred_and_backbone_stays_frozen(
    alex_loss: PerceptualLoss, image: torch.Tensor
) -> None:
    pred = box_blur(image, 5).requires_grad_(True)
    alex_loss(pred, image).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    backbone = alex_loss.backbone
    assert list(alex_loss.parameters()) == []
    buffers = list(backbone.buffers())
    assert len(buffers) == 20  # every tensor of alex_shift_tolerant.pth
    assert all(not b.requires_grad and b.grad is None for b in buffers)
    # A model holding the loss neither trains nor saves the backbone; train() keeps it in eval.
    holder = nn.Module()
    holder.net = nn.Conv2d(3, 3, 1)
    holder.perceptual = alex_loss
    assert set(holder.state_dict()) == {"net.weight", "net.bias"}
    assert len(list(holder.parameters())) == 2
    holder.train()
    assert alex_loss.training and not backbone.training
    holder.eval()


def test_batch_zero_is_zero_with_grad(alex_loss: PerceptualLoss) -> None:
    pred = torch.rand(0, 3, 64, 64, requires_grad=True)
    value = alex_loss(pred, torch.rand(0, 3, 64, 64))
    assert value.dim() == 0 and value.item() == 0.0 and value.grad_fn is not None
    value.backward()


def test_perceptual_shape_checks(alex_loss: PerceptualLoss) -> None:
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        alex_loss(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="differ"):
        alex_loss(x, torch.rand(1, 3, 64, 60))
    with pytest.raises(ValueError, match="float"):
        alex_loss((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"scale 0\.5 are 16x16"):
        alex_loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown backbone"):
        PerceptualLoss("resnet")
    with pytest.raises(ValueError, match="weights"):
        PerceptualLoss("alex", layers=3, weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="scales"):
        PerceptualLoss("alex", scales=(1.0, 2.0))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda s: s.pop("net.slice2.5.weight"), r"missing \['net.slice2.5.weight'\]"),
        (lambda s: s.pop("lin3.model.1.weight"), r"missing \['lin3.model.1.weight'\]"),
        (lambda s: s.__setitem__("net.slice9.0.weight", torch.zeros(1)), r"unused \['net.slice9"),
        (
            lambda s: s.__setitem__("net.slice1.0.bias", torch.zeros(63)),
            r"net.slice1.0.bias \(63,\)",
        ),
    ],
)
def test_strict_loading_fails_loudly(
    corrupt: Callable[[dict[str, torch.Tensor]], object], message: str
) -> None:
    state = read_stlpips_state("alex")
    corrupt(state)
    with pytest.raises(BackboneWeightsError, match=message):
        AlexFeatures(state)
    assert "net.slice2.5.weight" in read_stlpips_state("alex")  # the cache was not corrupted


def test_missing_package_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}")

    perceptual._read_cached.cache_clear()
    monkeypatch.setattr(importlib.resources, "files", absent)
    try:
        with pytest.raises(ImportError, match="pip install stlpips-pytorch"):
            PerceptualLoss("alex")
    finally:
        perceptual._read_cached.cache_clear()


def test_lpips_distance_metric(image: torch.Tensor) -> None:
    batch = torch.cat([image, box_blur(image, 3), box_blur(image, 9)])
    d = lpips_distance(batch, image.expand(3, -1, -1, -1))
    assert d.shape == (3,) and d.grad_fn is None
    assert d[0].item() == pytest.approx(0.0, abs=1e-6) and 0.0 < d[1].item() < d[2].item()
    with pytest.raises(ValueError, match="differ"):
        lpips_distance(batch, image)
    with pytest.raises(ValueError, match="21px minimum"):
        lpips_distance(image[..., :20], image[..., :20])


def test_perceptual_training_lowers_the_loss(
    alex_loss: PerceptualLoss, portraits_dir: Path
) -> None:
    """A tiny residual conv net learns to sharpen a blurred real image with perceptual + L1."""
    torch.manual_seed(0)
    sharp = load_portrait(portraits_dir, 64)
    blurred = box_blur(sharp, 5)
    head = nn.Conv2d(32, 3, 3, padding=1)
    for p in head.parameters():
        nn.init.zeros_(p)  # the net starts as the identity: output == blurred input
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        head,
    )

    def objective() -> torch.Tensor:
        out = blurred + net(blurred)
        return alex_loss(out, sharp) + l1_loss(out, sharp)

    with torch.no_grad():
        before = objective().item()
    optim = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(30):
        optim.zero_grad()
        objective().backward()
        optim.step()
    with torch.no_grad():
        after = objective().item()
    assert after < 0.8 * before, (before, after)


# --- discriminator -----------------------------------------------------------------------------


@pytest.mark.parametrize("sn", [True, False])
def test_discriminator_shapes_and_spectral_norm(sn: bool) -> None:
    config = PatchDiscriminatorConfig(channels=8, layers=3, spectral_norm=sn)
    disc = PatchDiscriminator(config)
    assert disc.config is config
    logits, feats = disc(torch.rand(2, 3, 64, 80))
    assert logits.shape == (2, 1, 64 // 8 - 2, 80 // 8 - 2)
    assert len(feats) == config.layers + 1
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64]
    assert [tuple(f.shape[2:]) for f in feats] == [(32, 40), (16, 20), (8, 10), (7, 9)]
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == config.layers + 2
    assert all(parametrize.is_parametrized(c, "weight") == sn for c in convs)
    logits.mean().backward()
    assert all(p.grad is not None for p in disc.parameters())
    empty_logits, empty_feats = disc(torch.rand(0, 3, 64, 64))
    assert empty_logits.shape == (0, 1, 6, 6) and len(empty_feats) == 4
    assert disc(torch.rand(1, 3, config.min_size, config.min_size))[0].shape == (1, 1, 1, 1)


def test_discriminator_checks() -> None:
    disc = PatchDiscriminator(PatchDiscriminatorConfig(channels=4, layers=2))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        disc(torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="minimum"):
        disc(torch.rand(1, 3, 11, 64))
    with pytest.raises(ConfigError):
        PatchDiscriminatorConfig(layers=0)
    with pytest.raises(ConfigError):
        PatchDiscriminatorConfig(channels=0)


# --- plain losses ------------------------------------------------------------------------------


def test_lsgan_losses() -> None:
    real = torch.tensor([1.0, 0.0, 2.0])
    fake = torch.tensor([0.0, 1.0, -1.0])
    # real: (0 + 1 + 1) / 3, fake: (0 + 1 + 1) / 3 -> halved sum 2/3
    assert lsgan_d_loss(real, fake).item() == pytest.approx(2.0 / 3.0)
    assert lsgan_d_loss(torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)).item() == 0.0
    # generator: ((0-1)^2 + 0 + (-1-1)^2) / 3
    assert lsgan_g_loss(fake).item() == pytest.approx(5.0 / 3.0)
    empty = torch.zeros(0, 1, 4, 4, requires_grad=True)
    assert lsgan_g_loss(empty).item() == 0.0 and lsgan_g_loss(empty).grad_fn is not None


def test_feature_matching_loss() -> None:
    real = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.ones(1, 1, 1, 1, requires_grad=True)]
    fake = [
        torch.full((1, 2, 2, 2), 0.5, requires_grad=True),
        torch.full((1, 1, 1, 1), 3.0, requires_grad=True),
    ]
    value = feature_matching_loss(real, fake)
    assert value.item() == pytest.approx((0.5 + 2.0) / 2)
    value.backward()
    assert all(r.grad is None for r in real) and all(f.grad is not None for f in fake)
    with pytest.raises(ValueError, match="equal non-empty"):
        feature_matching_loss(real, fake[:1])
    with pytest.raises(ValueError, match="layer 0"):
        feature_matching_loss([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 2, 2, 3)])


def test_region_loss() -> None:
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.zeros(1, 3, 2, 2)
    target[:, :, 0, 0] = 2.0  # error 4 in every channel of pixel (0, 0)
    mask = torch.zeros(1, 1, 2, 2)
    mask[:, :, 0, 0] = 1.0
    assert region_loss(pred, target, mask).item() == pytest.approx(4.0)
    half = mask * 0.5 + torch.tensor([[[[0.0, 0.5], [0.0, 0.0]]]])  # (0,0) and (0,1) at 0.5
    assert region_loss(pred, target, half).item() == pytest.approx(2.0)
    ones = torch.ones(1, 1, 2, 2)
    assert region_loss(pred, target, ones).item() == pytest.approx(F.mse_loss(pred, target).item())
    p = pred.clone().requires_grad_(True)
    empty = region_loss(p, target, torch.zeros(1, 1, 2, 2))
    assert empty.item() == 0.0 and empty.grad_fn is not None
    with pytest.raises(ValueError, match="mask"):
        region_loss(pred, target, torch.ones(1, 3, 2, 2))


def test_identity_cosine_and_l1() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [3.0, 3.0]])  # orthogonal, parallel
    assert identity_cosine_loss(a, b).item() == pytest.approx(0.5)
    assert identity_cosine_loss(a, -a).item() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        identity_cosine_loss(a, b[:1])
    assert l1_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="l1_loss"):
        l1_loss(torch.zeros(2, 3), torch.zeros(3))


def test_ssim_loss_is_the_metrics_twin() -> None:
    import numpy as np

    from engine.evaluation.metrics import ssim
    from engine.paths import portraits_dir
    from engine.training.losses import ssim_loss

    img = cv2.resize(cv2.imread(str(portraits_dir() / "grace_hopper.jpg"))[:, :, ::-1], (128, 128))
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    shifted = np.roll(img, 2, axis=1)

    def gray_tensor(a: np.ndarray) -> torch.Tensor:
        g = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        return torch.from_numpy(g).float().div(255)[None, None]

    t = gray_tensor(img)
    assert float(ssim_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    for other in (noisy, shifted):
        loss = float(ssim_loss(gray_tensor(other), t))
        assert loss == pytest.approx(1.0 - ssim(other, img), abs=0.02)  # borders differ only
    assert float(ssim_loss(gray_tensor(noisy), t)) > 0.05
    pred = gray_tensor(noisy).requires_grad_(True)
    ssim_loss(pred, t).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="11"):
        ssim_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    assert float(ssim_loss(torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16))) == 0.0

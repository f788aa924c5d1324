"""Multi-scale perceptual loss on frozen shift-tolerant VGG16 / AlexNet features (ST-LPIPS).

The backbones reproduce the layer layout of the shift-tolerant networks of `stlpips-pytorch`
(Ghildyal & Liu 2022): every stride-2 step is a stride-1 max pool (or a stride-1 first conv)
followed by a blur pool, a [1, 2, 1] x [1, 2, 1] / 16 depthwise filter applied with stride 2
after reflection padding of 2 on every side. Only the package's weight files are read; its
Python modules are never imported (they import torchvision and IPython).

The frozen tensors are non-persistent buffers, not parameters: an optimizer built from
`model.parameters()` never sees them, `state_dict()` of anything that holds the loss omits them,
and `.to(device)` still moves them. Gradients flow through the backbone to the input images.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import pickle
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import VisageError

log = logging.getLogger(__name__)

PACKAGE = "stlpips_pytorch"
WEIGHTS_DIR = ("weights", "vST0.0")


class BackboneWeightsError(VisageError):
    """The packaged perceptual-network weights are missing, incomplete or of the wrong shape."""


def read_stlpips_state(stem: str) -> dict[str, Tensor]:
    """The state dict of `<stem>_shift_tolerant.pth` ("vgg" or "alex") from stlpips-pytorch."""
    return dict(_read_cached(stem))


@functools.lru_cache(maxsize=4)
def _read_cached(stem: str) -> dict[str, Tensor]:
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError as exc:
        raise ImportError(
            "the perceptual loss needs the pretrained shift-tolerant LPIPS weights from the "
            "'stlpips-pytorch' package: pip install stlpips-pytorch==0.0.2"
        ) from exc
    entry = root.joinpath(*WEIGHTS_DIR, f"{stem}_shift_tolerant.pth")
    try:
        with entry.open("rb") as fh:
            state = torch.load(fh, weights_only=True, map_location="cpu")
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise BackboneWeightsError(
            f"cannot read {PACKAGE}/{'/'.join(WEIGHTS_DIR)}/{stem}_shift_tolerant.pth ({exc}); "
            "reinstall it: pip install --force-reinstall stlpips-pytorch==0.0.2"
        ) from exc
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{stem}_shift_tolerant.pth does not hold a state dict")
    return state


def _check_pair(a: Tensor, b: Tensor, min_size: int = 0) -> None:
    """ValueError unless a, b are float (B, 3, H, W) images of one shape, H and W >= min_size."""
    if a.dim() != 4 or a.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(a.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"image shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    if not a.is_floating_point() or not b.is_floating_point():
        raise ValueError(f"images must be float in [0, 1], got {a.dtype}, {b.dtype}")
    if min(a.shape[2], a.shape[3]) < min_size:
        raise ValueError(f"images of {a.shape[2]}x{a.shape[3]} are below the {min_size}px minimum")


class _FrozenConv2d(nn.Module):
    """Conv2d whose weight (out, in, k, k) and bias (out,) are frozen non-persistent buffers."""

    weight: Tensor
    bias: Tensor

    def __init__(self, cin: int, cout: int, kernel: int, padding: int) -> None:
        super().__init__()
        self.padding = padding
        self.register_buffer("weight", torch.zeros(cout, cin, kernel, kernel), persistent=False)
        self.register_buffer("bias", torch.zeros(cout), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class _BlurPool2d(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect pad 2, depthwise 3x3 binomial filter.

    (B, C, H, W) -> (B, C, H // 2 + 1, W // 2 + 1); needs H, W >= 3.
    """

    filt: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        filt = torch.outer(taps, taps) / 16.0
        self.register_buffer("filt", filt.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.filt, stride=2, groups=x.shape[1])


def _build(spec: str) -> nn.Module:
    """A layer from its spec: "conv:cin:cout[:kernel:padding]", "relu", "max:k", "blur:c"."""
    kind, *args = spec.split(":")
    nums = [int(a) for a in args]
    if kind == "conv":
        cin, cout, kernel, padding = (*nums, 3, 1)[:4]
        return _FrozenConv2d(cin, cout, kernel, padding)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "max":
        return nn.MaxPool2d(kernel_size=nums[0], stride=1)
    if kind == "blur":
        return _BlurPool2d(nums[0])
    raise ValueError(f"unknown layer spec {spec!r}")


class StlpipsFeatures(nn.Module):
    """Frozen ST-LPIPS backbone: images (B, 3, H, W) in [0, 1] -> 5 feature maps (B, C_l, h, w).

    Buffers map onto the package's state-dict names (`blocks.0.0.weight` <- `net.slice1.0.weight`,
    `shift` <- `scaling_layer.shift`, `lin0` <- `lin0.model.1.weight`) and are loaded strictly:
    every tensor of the file is used, none is missing, every shape matches.
    """

    stem: ClassVar[str]
    slices: ClassVar[tuple[str, ...]]  # one spec string per slice, layers split by " "
    channels: ClassVar[tuple[int, ...]]
    min_size: ClassVar[int]  # smallest H and W the network accepts
    shift: Tensor
    scale: Tensor

    def __init__(self, state: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        index = 0
        self.blocks = nn.ModuleList()
        for specs in self.slices:
            block = nn.Sequential()
            for spec in specs.split():
                block.add_module(str(index), _build(spec))
                index += 1
            self.blocks.append(block)
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.ones(1, 3, 1, 1), persistent=False)
        for i, c in enumerate(self.channels):
            self.register_buffer(f"lin{i}", torch.zeros(1, c, 1, 1), persistent=False)
        self.load_stlpips_state(read_stlpips_state(self.stem) if state is None else state)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _source_key(name: str) -> str:
        head, _, rest = name.partition(".")
        if head == "blocks":  # blocks.0.3.filt -> net.slice1.3.filt
            block, _, rest = rest.partition(".")
            return f"net.slice{int(block) + 1}.{rest}"
        if head in ("shift", "scale"):
            return f"scaling_layer.{head}"
        return f"{head}.model.1.weight"  # lin0..lin4, the LPIPS 1x1 heads

    def load_stlpips_state(self, state: Mapping[str, Tensor]) -> None:
        """Copy a stlpips state dict into the buffers; BackboneWeightsError unless it fits."""
        targets = {self._source_key(name): buf for name, buf in self.named_buffers()}
        missing = sorted(set(targets) - set(state))
        unused = sorted(set(state) - set(targets))
        wrong = [
            f"{k} {tuple(state[k].shape)} != {tuple(b.shape)}"
            for k, b in targets.items()
            if k in state and tuple(state[k].shape) != tuple(b.shape)
        ]
        if missing or unused or wrong:
            raise BackboneWeightsError(
                f"{self.stem}_shift_tolerant weights do not match {type(self).__name__}: "
                f"missing {missing}, unused {unused}, wrong shape {wrong}; reinstall with "
                "pip install --force-reinstall stlpips-pytorch==0.0.2"
            )
        with torch.no_grad():
            for key, buf in targets.items():
                buf.copy_(state[key])
        log.debug("loaded %d %s tensors", len(targets), self.stem)

    def forward(self, images: Tensor, layers: int = 5) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> the first `layers` slice outputs, each (B, C_l, h_l, w_l)."""
        x = (images * 2.0 - 1.0 - self.shift) / self.scale
        feats: list[Tensor] = []
        for block in self.blocks[:layers]:
            x = block(x)
            feats.append(x)
        return feats

    def lpips_distance(self, a: Tensor, b: Tensor) -> Tensor:
        """ST-LPIPS distance (B,) between images (B, 3, H, W) in [0, 1] (lower = more alike)."""
        _check_pair(a, b, self.min_size)
        total = a.new_zeros(a.shape[0])
        for i, (fa, fb) in enumerate(zip(self(a), self(b), strict=True)):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + F.conv2d((na - nb).pow(2), getattr(self, f"lin{i}")).mean((1, 2, 3))
        return total


class Vgg16Features(StlpipsFeatures):
    """Shift-tolerant VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (64..512 channels)."""

    stem = "vgg"
    channels = (64, 128, 256, 512, 512)
    min_size = 18
    slices = (
        "conv:3:64 relu conv:64:64 relu",
        "max:2 blur:64 conv:64:128 relu conv:128:128 relu",
        "max:2 blur:128 conv:128:256 relu conv:256:256 relu conv:256:256 relu",
        "max:2 blur:256 conv:256:512 relu conv:512:512 relu conv:512:512 relu",
        "max:2 blur:512 conv:512:512 relu conv:512:512 relu conv:512:512 relu",
    )


class AlexFeatures(StlpipsFeatures):
    """Shift-tolerant AlexNet (stride-1 11x11 first conv + blur pools): relu1..relu5."""

    stem = "alex"
    channels = (64, 192, 384, 256, 256)
    min_size = 21
    slices = (
        "conv:3:64:11:2 blur:64 relu",
        "max:3 blur:64 conv:64:192:5:2 relu",
        "max:3 blur:192 conv:192:384 relu",
        "conv:384:256 relu",
        "conv:256:256 relu",
    )


BACKBONES: dict[str, type[StlpipsFeatures]] = {"vgg16": Vgg16Features, "alex": AlexFeatures}


class PerceptualLoss(nn.Module):
    """Pyramid perceptual loss (as MetaPortrait / FOMM): at each scale s the images are resized
    (bilinear, antialiased) and loss += sum_l weights[l] * mean |phi_l(pred_s) - phi_l(target_s)|
    over the first `layers` backbone slices; target features are computed without grad.

    pred, target: (B, 3, H, W) in [0, 1] -> scalar. B == 0 gives 0 (with a grad_fn when pred
    requires grad). The backbone stays frozen and in eval mode; it adds nothing to state_dict().

    Layer magnitudes differ a lot, so `weights` matter: on a 256px portrait, a 5px blur gives
    mean |diff| per slice of about (0.017, 0.012, 0.018, 0.13, 2.6) with vgg16 (relu5_3 is ~94%
    of the equal-weight loss) and (0.039, 0.028, 0.010, 0.008, 0.003) with alex.
    """

    def __init__(
        self,
        backbone: str = "vgg16",
        scales: tuple[float, ...] = (1.0, 0.5),
        layers: int = 5,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        if not scales or any(not 0.0 < s <= 1.0 for s in scales):
            raise ValueError(f"scales must be a non-empty tuple of values in (0, 1], got {scales}")
        if not 1 <= layers <= 5:
            raise ValueError(f"layers must be in 1..5, got {layers}")
        weights = (1.0,) * layers if weights is None else tuple(weights)
        if len(weights) != layers:
            raise ValueError(f"{len(weights)} weights given for {layers} layers")
        self.backbone_name = backbone
        self.scales = tuple(scales)
        self.layers = layers
        self.weights = weights
        self.backbone = BACKBONES[backbone]()

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.backbone.eval()  # frozen: never in training mode
        return self

    def _sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        sizes = [(round(height * s), round(width * s)) for s in self.scales]
        low = self.backbone.min_size
        for s, (h, w) in zip(self.scales, sizes, strict=True):
            if min(h, w) < low:
                raise ValueError(
                    f"{height}x{width} images at scale {s} are {h}x{w}, below the {low}x{low} "
                    f"minimum of the {self.backbone_name} backbone; use larger images or fewer "
                    "scales"
                )
        return sizes

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        _check_pair(pred, target)
        if pred.shape[0] == 0:
            return pred.sum() * 0.0
        sizes = self._sizes(pred.shape[2], pred.shape[3])
        total = pred.new_zeros(())
        for size in sizes:
            p, t = pred, target
            if size != tuple(pred.shape[2:]):
                p = F.interpolate(p, size=size, mode="bilinear", antialias=True)
                t = F.interpolate(t, size=size, mode="bilinear", antialias=True)
            with torch.no_grad():
                target_feats = self.backbone(t, self.layers)
            pred_feats = self.backbone(p, self.layers)
            for w, fp, ft in zip(self.weights, pred_feats, target_feats, strict=True):
                total = total + w * (fp - ft).abs().mean()
        return total

    def lpips_distance(self, a: Tensor, b: Tensor) -> Tensor:
        """ST-LPIPS distance (B,) of images (B, 3, H, W) in [0, 1], at full resolution."""
        return self.backbone.lpips_distance(a, b)


def lpips_distance(a: Tensor, b: Tensor, backbone: str = "alex") -> Tensor:
    """Evaluation metric: ST-LPIPS distance (B,) of (B, 3, H, W) images in [0, 1], no grad.
    The backbone is built once per (backbone, device) and kept."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    with torch.no_grad():
        return _metric_net(backbone, str(a.device)).lpips_distance(a, b)


@functools.lru_cache(maxsize=4)
def _metric_net(backbone: str, device: str) -> StlpipsFeatures:
    return BACKBONES[backbone]().to(device)

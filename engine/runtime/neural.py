"""The neural path for one portrait: warp net -> ID-fusion -> (enhancer), then composite.

Per frame it takes the geometric backward map over the head box (S = 256 grid) and the target
landmarks, runs the tier's compiled graphs, and returns the head region at full resolution:
the portrait remapped through the corrected flow plus the networks' residual, upsampled. With
untrained (zero-initialized) networks this is exactly the geometric path's region.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from engine.errors import ConfigError
from engine.geometry.crop import crop, to_crop
from engine.geometry.drawing import landmark_maps
from engine.geometry.mouth import mouth_box, mouth_fill_in_box
from engine.geometry.warp import region_map, remap
from engine.landmarks.topology import load_topology
from engine.models.blocks import paint_over, resize_grid, warp
from engine.models.embedding import identity_embedding
from engine.models.enhancer import Enhancer, EnhancerConfig, upsample2
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.identity import load_identity_encoder
from engine.models.store import load_model
from engine.models.tiers import CROP, Tier, get_tier
from engine.models.warp import WarpConfig, WarpNet
from engine.paths import models_dir
from engine.portrait import Portrait
from engine.runtime.compile import CompiledGraph, compile_graph
from engine.runtime.temporal import TemporalBuffer
from engine.types import ImageArray

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class NeuralModels:
    tier: str
    warp: WarpNet
    fusion: FusionNet
    enhancer: Enhancer | None
    folder: Path | None


def tier_folder(tier: str) -> Path:
    return models_dir() / tier


def load_models(tier: str, folder: Path | None = None, device: str = "cpu") -> NeuralModels:
    """The shipped (or `folder`'s) networks of a tier, loaded strictly."""
    spec: Tier = get_tier(tier)
    root = folder or tier_folder(tier)
    if not (root / "warp" / "config.json").is_file():
        raise ConfigError(
            f"no trained {tier}-tier networks in {root}; use --no-nets for the geometric path"
        )
    warp_net = load_model(WarpNet, WarpConfig, root / "warp", device)
    fusion = load_model(FusionNet, FusionConfig, root / "fusion", device)
    enhancer = None
    if spec.enhancer is not None and (root / "enhancer" / "config.json").is_file():
        enhancer = load_model(Enhancer, EnhancerConfig, root / "enhancer", device)
    return NeuralModels(tier, warp_net, fusion, enhancer, root)


def untrained_models(tier: str) -> NeuralModels:
    """Fresh (zero-initialized heads) networks of a tier: the geometric result, via the nets."""
    spec = get_tier(tier)
    enh = Enhancer(spec.enhancer) if spec.enhancer is not None else None
    return NeuralModels(tier, WarpNet(spec.warp), FusionNet(spec.fusion), enh, None)


class WarpStage(nn.Module):
    """(source, smap, tmap, geometric grid) -> (final grid, visibility, warped source)."""

    aten_grid_sample_on_cpu = True  # engine.runtime.compile.ATEN_GRID_SAMPLE

    def __init__(self, net: WarpNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, source: torch.Tensor, smap: torch.Tensor, tmap: torch.Tensor, grid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        final, vis = self.net(source, warp(source, grid), tmap, smap, grid)
        return final, vis, warp(source, final)


class FusionStage(nn.Module):
    """(portrait features, warped, grid, visibility, tmap, identity) -> (fused, residual)."""

    def __init__(self, net: FusionNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        f1: torch.Tensor,
        f2: torch.Tensor,
        f3: torch.Tensor,
        warped: torch.Tensor,
        grid: torch.Tensor,
        vis: torch.Tensor,
        tmap: torch.Tensor,
        ident: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self.net((f1, f2, f3), warped, grid, vis, tmap, ident)
        return fused, fused - warped


class EnhanceStage(nn.Module):
    """(fused S, warped S, portrait 2S, grid, history) -> (output 2S, residual over the 2S warp)."""

    def __init__(self, net: Enhancer) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        image: torch.Tensor,
        warped: torch.Tensor,
        source_hr: torch.Tensor,
        grid: torch.Tensor,
        history: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        warped_hr = warp(source_hr, resize_grid(grid, source_hr.shape[-1]))
        out = self.net(image, warped, warped_hr, history)
        return out, out - warped_hr


@dataclass(frozen=True)
class NeuralFrame:
    """region: (y1-y0, x1-x0, 3) uint8 head region. *_ms: per-stage wall times."""

    region: ImageArray
    warp_ms: float
    fusion_ms: float
    enhance_ms: float
    composite_ms: float


@dataclass(frozen=True)
class NeuralWarp:
    """A frame after the warp net, before fusion (S = CROP). final: (1, S, S, 2) corrected
    grid. vis: (1, 1, S, S) visibility. warped: (1, 3, S, S) the crop through `final`. base:
    `warped` with the mouth interior painted when the fusion net takes it so. tmap: (1, 5, S,
    S) target landmark maps. warp_ms: wall time of the warp half."""

    final: torch.Tensor
    vis: torch.Tensor
    warped: torch.Tensor
    base: torch.Tensor
    tmap: torch.Tensor
    warp_ms: float


def _tensor(image: ImageArray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


class NeuralRenderer:
    """Runs one tier's networks for one portrait. Not thread-safe: one owner thread."""

    def __init__(
        self,
        portrait: Portrait,
        models: NeuralModels,
        region: tuple[int, int, int, int],
        device: str = "cpu",
        backend: str = "auto",
        half: bool | None = None,
    ) -> None:
        """half: float16 graphs (default: compiled backends on CUDA; see compile_graph)."""
        self.portrait, self.models, self.region = portrait, models, region
        self.device = torch.device(device)
        log.info(
            "preparing the %s-tier networks on %s (%s; a first compile can take a minute, "
            "later starts reuse the cache)",
            models.tier,
            device,
            backend,
        )
        # Compiling converts a module's dtype in place: this renderer compiles its own copies, so
        # that two renderers of the same models (eager float32 beside float16) never share one.
        warp_net, fusion = copy.deepcopy(models.warp), copy.deepcopy(models.fusion)
        p, s = portrait, CROP
        points = to_crop(p.landmarks.points.astype(np.float64), p.box, s)
        self._lips_inner = load_topology().lips_inner
        self._mouth_loop = points[self._lips_inner, :2].astype(np.float64)  # (20, 2) crop px
        with torch.inference_mode():
            source = _tensor(crop(p.image, p.box, s)).to(self.device)  # (1, 3, S, S)
            smap = torch.from_numpy(landmark_maps(points, s)).permute(2, 0, 1)[None].to(self.device)
            ident_np = identity_embedding(load_identity_encoder(), [p.image], [p.landmarks.points])
            ident = torch.from_numpy(ident_np)[None].to(self.device)  # (1, D)
            feats = fusion.to(self.device).encode_source(source)  # once per portrait, float32
        grid0 = torch.zeros(1, s, s, 2, device=self.device)
        tmap0 = torch.zeros(1, smap.shape[1], s, s, device=self.device)
        self.warp_graph = self._compile(
            WarpStage(warp_net), (source, smap, tmap0, grid0), backend, half
        )
        self.dtype: torch.dtype = getattr(torch, self.warp_graph.report.dtype)
        vis0 = torch.ones(1, 1, s, s, device=self.device)
        fusion_inputs = (*feats, source, grid0, vis0, tmap0, ident)
        self.fusion_graph = self._compile(FusionStage(fusion), fusion_inputs, backend, half)
        # The per-portrait inputs, in the graphs' dtype.
        self.source, self.smap, self.ident = (t.to(self.dtype) for t in (source, smap, ident))
        self.feats = tuple(f.to(self.dtype) for f in feats)
        self.enhance_graph: CompiledGraph | None = None
        self.history: TemporalBuffer | None = None
        self.source_hr: torch.Tensor | None = None
        if models.enhancer is not None:
            source_hr = _tensor(crop(p.image, p.box, 2 * s)).to(self.device)  # (1, 3, 2S, 2S)
            k = models.enhancer.config.history
            self.history = TemporalBuffer(k)
            hist0 = torch.zeros(1, 3 * k, 2 * s, 2 * s, device=self.device)
            self.enhance_graph = self._compile(
                EnhanceStage(copy.deepcopy(models.enhancer)),
                (source, source, source_hr, grid0, hist0),
                backend,
                half,
            )
            self.source_hr = source_hr.to(self.dtype)

    def _compile(
        self,
        module: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        backend: str,
        half: bool | None,
    ) -> CompiledGraph:
        graph = compile_graph(
            module.eval(), inputs, backend=backend, device=str(self.device), half=half
        )
        log.info("%s: %s", type(module).__name__, graph.report.summary())
        return graph

    @property
    def backend_summary(self) -> str:
        return self.warp_graph.report.summary()

    def reset(self) -> None:
        """Forget the temporal history (new stream, or after the face was lost)."""
        if self.history is not None:
            self.history.reset()

    def begin(
        self, grid_map: F32, target: npt.NDArray[np.floating], painted: bool = False
    ) -> NeuralWarp:
        """The first half of a frame: the warp net. grid_map: (S, S, 2) geometric backward map
        in grid pixels; target: (478, 3) target landmarks in grid pixels. painted: the mouth
        interior will be painted (`finish`'s paint), so the fusion net takes it painted too.
        Touches only the warp graph: `finish` may run on another thread at the same time for
        the previous frame."""
        s = CROP
        t0 = time.perf_counter()
        grid = torch.from_numpy((grid_map + 0.5) * (2.0 / s) - 1.0)[None]  # (1, S, S, 2)
        grid = grid.to(self.device, self.dtype)
        tmap = torch.from_numpy(landmark_maps(target, s)).permute(2, 0, 1)[None]  # (1, 5, S, S)
        tmap = tmap.to(self.device, self.dtype)
        final, vis, warped = self.warp_graph(self.source, self.smap, tmap, grid)
        base = warped  # what the fusion residual goes over: as in training (Generator)
        if painted and self.models.fusion.config.painted_mouth:
            base = self._paint_mouth(warped, target)
        return NeuralWarp(final, vis, warped, base, tmap, (time.perf_counter() - t0) * 1000)

    def finish(
        self, begun: NeuralWarp, paint: Callable[[ImageArray], None] | None = None
    ) -> NeuralFrame:
        """The second half: fusion, enhancer (its temporal history: frames must come in order)
        and the full-resolution composite. paint: draws into the remapped region (in place)
        before the networks' residual is added (the geometric mouth interior). Returns the head
        region at output resolution."""
        t1 = time.perf_counter()
        fused, residual = self.fusion_graph(
            *self.feats, begun.base, begun.final, begun.vis, begun.tmap, self.ident
        )
        t2 = time.perf_counter()
        if self.enhance_graph is not None:
            assert self.history is not None and self.source_hr is not None
            history = self.history.tensor(upsample2(fused))
            out, residual = self.enhance_graph(
                fused, begun.warped, self.source_hr, begun.final, history
            )
            self.history.push(out)
        t3 = time.perf_counter()
        region = self._composite(
            begun.final[0].float().cpu().numpy(), residual[0].float().cpu().numpy(), paint
        )
        t4 = time.perf_counter()
        return NeuralFrame(
            region=region,
            warp_ms=begun.warp_ms,
            fusion_ms=(t2 - t1) * 1000,
            enhance_ms=(t3 - t2) * 1000 if self.enhance_graph is not None else 0.0,
            composite_ms=(t4 - t3) * 1000,
        )

    def _paint_mouth(self, warped: torch.Tensor, target: npt.NDArray[np.floating]) -> torch.Tensor:
        """warped (1, 3, S, S) with the mouth interior painted as at full resolution: what a
        fusion net trained with painted mouths takes, and puts its residual over. Only the
        mouth's box goes through the CPU."""
        loop = np.asarray(target, np.float64)[self._lips_inner, :2]
        box = mouth_box(loop, (CROP, CROP))
        if box is None:
            return warped
        x0, y0, x1, y1 = box
        roi = warped[:, :, y0:y1, x0:x1]
        pixels = roi[0].float().permute(1, 2, 0).mul(255.0).round().clamp(0, 255)
        roi_np = pixels.to(torch.uint8).cpu().numpy()
        fill = mouth_fill_in_box(roi_np, box, self._mouth_loop, loop, self.portrait.mouth_color)
        if fill is None:
            return warped
        layer = torch.from_numpy(fill.layer((y1 - y0, x1 - x0), (y0, x0))).permute(2, 0, 1)[None]
        out = warped.clone()
        out[:, :, y0:y1, x0:x1] = paint_over(roi, layer.to(warped.device, warped.dtype))
        return out

    def _composite(
        self, grid: F32, residual: F32, paint: Callable[[ImageArray], None] | None
    ) -> ImageArray:
        """Full-resolution remap through the final flow + the upsampled residual (3, R, R)."""
        p, s = self.portrait, CROP
        map_px = ((grid + 1.0) * (s / 2.0) - 0.5).astype(np.float32)  # (S,S,2) grid pixels
        map_x, map_y = region_map(map_px, p.box.x0, p.box.y0, p.box.size, self.region)
        base = remap(p.image, map_x, map_y)
        if paint is not None:
            paint(base)
        res = cv2.resize(
            np.ascontiguousarray(residual.transpose(1, 2, 0)) * 255.0,
            (p.box.size, p.box.size),
            interpolation=cv2.INTER_LINEAR,
        )
        x0, y0, x1, y1 = self.region
        res = res[y0 - p.box.y0 : y1 - p.box.y0, x0 - p.box.x0 : x1 - p.box.x0]
        out = base.astype(np.float32) + res
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

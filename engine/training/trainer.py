"""Base training (`visage train`): warp-only stage, joint warp + ID-fusion stage, enhancer stage.

Runs on CPU, one GPU, or several processes under `torchrun --nproc_per_node=N` (DDP; gloo on
CPU, NCCL on CUDA). Rank 0 logs and writes checkpoints; every rank draws its own pairs.
Checkpoints (folder `out/`): one store folder per network plus `trainer.pt` (optimizer states
and the step, read back with weights_only=True) and `train.json`; `resume=True` continues.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.errors import ConfigError
from engine.models.blocks import paint_over
from engine.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from engine.models.enhancer import Enhancer, EnhancerConfig
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.store import load_model, save_model
from engine.models.tiers import get_tier
from engine.models.warp import WarpConfig, WarpNet
from engine.runtime.neural import EnhanceStage
from engine.training.clips import ClipData
from engine.training.generator import GENERATOR_INPUTS, Generator, GeneratorOutput
from engine.training.losses import (
    feature_matching_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    region_loss,
    ssim_loss,
)
from engine.training.objectives import (
    IDENTITY_REFERENCES,
    IdentityLoss,
    geometric_mouth,
    region_masks,
)
from engine.training.pairs import Batch, CrossBatch, CrossSampler, PairSampler, batch_stream
from engine.training.perceptual import PerceptualLoss

log = logging.getLogger(__name__)

STAGES = ("warp", "joint", "enhancer")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Loss weights follow MetaPortrait's ratios, rescaled to our losses."""

    tier: str = "cpu"
    stage: str = "warp"
    steps: int = 1000
    batch: int = 4
    lr: float = 2e-4
    warp_lr_factor: float = 0.1  # joint stage: the pretrained warp net learns 10x slower
    perceptual: str = "alex"
    perceptual_scales: tuple[float, ...] = (1.0, 0.5)
    w_perceptual: float = 1.0
    w_l1: float = 1.0
    w_ssim: float = 0.0
    w_region: float = 10.0
    w_gan: float = 0.05
    w_fm: float = 1.0
    w_identity: float = 0.5
    identity_reference: str = "source"  # whose identity the output keeps: source or driving
    w_cross_identity: float = 0.0  # identity loss on cross-identity pairs (engine.training.cross)
    painted_mouth: bool = False  # train the fusion net over the app's painted mouth interior
    w_residual: float = 0.0  # L1 on the fusion residual: change the portrait only where it pays
    gan_start: int = 300
    identity_every: int = 2
    grad_clip: float = 1.0
    log_every: int = 20
    save_every: int = 200
    keep_every: int = 0  # also keep the networks every N steps in out/snapshots/<step>/
    seed: int = 0
    workers: int = 0  # background processes drawing pairs (0: in the training loop)
    max_minutes: float = 0.0  # stop (and save) after this much training time; 0: no limit

    def __post_init__(self) -> None:
        get_tier(self.tier)
        if self.stage not in STAGES:
            raise ConfigError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.steps < 0 or self.batch < 1:
            raise ConfigError("steps must be >= 0 and batch >= 1")
        if self.identity_reference not in IDENTITY_REFERENCES:
            raise ConfigError(
                f"identity_reference must be one of {IDENTITY_REFERENCES}, "
                f"got {self.identity_reference!r}"
            )
        if self.workers < 0 or self.max_minutes < 0:
            raise ConfigError("workers and max_minutes must be >= 0")


@dataclass
class Nets:
    """What a stage trains (and what it keeps frozen)."""

    generator: Generator
    disc: PatchDiscriminator | None
    enhancer: Enhancer | None


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    _, size = world()
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        try:
            yield
        finally:
            dist.destroy_process_group()
    else:
        yield


def build_nets(cfg: TrainConfig, init: Path | None, out: Path | None) -> Nets:
    """Networks for the stage: from `out` when resuming, else from `init`, else fresh."""
    tier = get_tier(cfg.tier)
    sources = [p for p in (out, init) if p is not None]

    def get(name: str, cls: type, config_cls: type, config: Any) -> nn.Module:
        for folder in sources:
            if (folder / name / "config.json").is_file():
                module: nn.Module = load_model(cls, config_cls, folder / name)
                log.info("loaded %s from %s", name, folder / name)
                return module.train()
        fresh: nn.Module = cls(config)
        return fresh

    warp_net = get("warp", WarpNet, WarpConfig, tier.warp)
    fusion = None if cfg.stage == "warp" else get("fusion", FusionNet, FusionConfig, tier.fusion)
    if isinstance(fusion, FusionNet) and cfg.painted_mouth and not fusion.config.painted_mouth:
        # Same weights, from now on trained (and saved) as taking the painted mouth.
        painted = FusionNet(dataclasses.replace(fusion.config, painted_mouth=True))
        painted.load_state_dict(fusion.state_dict())
        fusion = painted.train()
    disc = None
    if cfg.stage == "joint":
        disc = get("disc", PatchDiscriminator, PatchDiscriminatorConfig, disc_config(cfg.tier))
    enhancer = None
    if cfg.stage == "enhancer":
        if tier.enhancer is None:
            raise ConfigError(f"the {cfg.tier} tier has no enhancer")
        enhancer = get("enhancer", Enhancer, EnhancerConfig, tier.enhancer)
    return Nets(Generator(warp_net, fusion), disc, enhancer)  # type: ignore[arg-type]


def disc_config(tier: str) -> PatchDiscriminatorConfig:
    return PatchDiscriminatorConfig(channels=32 if tier == "cpu" else 64, layers=3)


class Trainer:
    """Owns the networks, optimizers and losses of one stage; `step()` trains one batch."""

    def __init__(self, cfg: TrainConfig, nets: Nets, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.rank, self.world = world()
        self.nets = nets
        self.step_count = 0
        g = nets.generator.to(device)
        if cfg.stage == "enhancer":
            g.eval().requires_grad_(False)
        self.g_train: nn.Module = self._ddp(g) if cfg.stage != "enhancer" else g
        self.perceptual = PerceptualLoss(cfg.perceptual, cfg.perceptual_scales).to(device)
        self.identity = (
            IdentityLoss(device, cfg.identity_reference)
            if cfg.stage == "joint" and (cfg.w_identity or cfg.w_cross_identity)
            else None
        )
        params: list[dict[str, Any]] = []
        if cfg.stage == "warp":
            params.append({"params": g.warp_net.parameters(), "lr": cfg.lr})
        elif cfg.stage == "joint":
            assert g.fusion is not None
            params.append({"params": g.warp_net.parameters(), "lr": cfg.lr * cfg.warp_lr_factor})
            params.append({"params": g.fusion.parameters(), "lr": cfg.lr})
        self.d_train: nn.Module | None = None
        self.d_opt: torch.optim.Optimizer | None = None
        if nets.disc is not None:
            self.d_train = self._ddp(nets.disc.to(device))
            self.d_opt = torch.optim.Adam(nets.disc.parameters(), cfg.lr, betas=(0.5, 0.999))
        self.e_train: nn.Module | None = None
        if nets.enhancer is not None:
            self.e_train = self._ddp(EnhanceStage(nets.enhancer.to(device)))
            params.append({"params": nets.enhancer.parameters(), "lr": cfg.lr})
        self.opt = torch.optim.Adam(params, betas=(0.5, 0.999))

    def _ddp(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # -- one step ------------------------------------------------------------------------------
    def generate(self, b: Batch, cross: CrossBatch | None = None) -> GeneratorOutput:
        """The generator on b's pairs, followed by cross's when given (one pass, batch B + C)."""
        if cross is None:
            out: GeneratorOutput = self.g_train(b.source, b.grid, b.smap, b.tmap, b.ident, b.mouth)
            return out
        pairs = (torch.cat([getattr(b, k), getattr(cross, k)]) for k in GENERATOR_INPUTS)
        out = self.g_train(*pairs)
        return out

    def reconstruction(self, image: torch.Tensor, b: Batch) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        terms = {
            "perceptual": cfg.w_perceptual * self.perceptual(image, b.driving),
            "l1": cfg.w_l1 * (image - b.driving).abs().mean(),
        }
        if cfg.w_ssim:
            terms["ssim"] = cfg.w_ssim * ssim_loss(image, b.driving)
        if cfg.w_region:
            terms["region"] = cfg.w_region * region_loss(image, b.driving, region_masks(b.tmap))
        return terms

    def step(self, b: Batch, cross: CrossBatch | None = None) -> dict[str, float]:
        """One optimizer step on b's pairs; on identity steps also the identity loss on
        `cross` (cross-identity pairs) when cfg.w_cross_identity is set."""
        if self.cfg.stage == "enhancer":
            raise ConfigError("the enhancer stage steps with engine.training.enhance.enhancer_step")
        b = b.to(self.device)
        identity_step = self.identity is not None and self.step_count % self.cfg.identity_every == 0
        use_cross = cross is not None and identity_step and bool(self.cfg.w_cross_identity)
        c = cross.to(self.device) if cross is not None and use_cross else None
        full = self.generate(b, c)
        n = len(b.source)
        out = full.head(n)
        terms = self.reconstruction(out.image, b)
        if self.cfg.stage == "joint":
            terms["warp_perceptual"] = 0.25 * self.perceptual(out.warped, b.driving)
            if self.cfg.w_residual and out.fused is not None and out.base is not None:
                terms["residual"] = self.cfg.w_residual * (out.fused - out.base).abs().mean()
            terms.update(self._adversarial(out.image, b))
            if self.identity is not None and identity_step:
                if self.cfg.w_identity:
                    terms["identity"] = self.cfg.w_identity * self.identity(out.image, b)
                if c is not None:
                    geometric = full.warped_geo[n:]
                    fusion = self.nets.generator.fusion
                    if fusion is not None and fusion.config.painted_mouth:
                        geometric = paint_over(geometric, c.mouth)
                    cross_image = geometric_mouth(full.image[n:], geometric, c.target_points)
                    terms["cross_identity"] = self.cfg.w_cross_identity * self.identity.cross(
                        cross_image, c
                    )
        loss = torch.stack(list(terms.values())).sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.nets.generator.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.step_count += 1
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["total"] = float(loss.detach())
        return logs

    def _adversarial(self, image: torch.Tensor, b: Batch) -> dict[str, torch.Tensor]:
        if self.d_train is None or self.nets.disc is None or self.d_opt is None:
            return {}
        if self.step_count < self.cfg.gan_start or not (self.cfg.w_gan or self.cfg.w_fm):
            return {}
        # Discriminator step (through DDP so its gradients are averaged).
        real_logits, _ = self.d_train(b.driving)
        fake_logits, _ = self.d_train(image.detach())
        d_loss = lsgan_d_loss(real_logits, fake_logits)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        # Generator terms through the bare module with D frozen (no gradient sync needed).
        disc = self.nets.disc
        disc.requires_grad_(False)
        try:
            fake_logits, fake_feats = disc(image)
            with torch.no_grad():
                _, real_feats = disc(b.driving)
        finally:
            disc.requires_grad_(True)
        return {
            "gan": self.cfg.w_gan * lsgan_g_loss(fake_logits),
            "fm": self.cfg.w_fm * feature_matching_loss(real_feats, fake_feats),
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, out: Path, meta: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        meta = {**meta, "step": self.step_count, "train": dataclasses.asdict(self.cfg)}
        g = self.nets.generator
        folders = [out]
        if self.cfg.keep_every and self.step_count % self.cfg.keep_every == 0:
            folders.append(out / "snapshots" / f"{self.step_count:06d}")  # kept for averaging
        for folder in folders:
            save_model(g.warp_net, folder / "warp", meta)
            if g.fusion is not None:
                save_model(g.fusion, folder / "fusion", meta)
        if self.nets.disc is not None:
            save_model(self.nets.disc, out / "disc", meta)
        if self.nets.enhancer is not None:
            save_model(self.nets.enhancer, out / "enhancer", meta)
        state = {"step": self.step_count, "opt": self.opt.state_dict()}
        if self.d_opt is not None:
            state["d_opt"] = self.d_opt.state_dict()
        tmp = out / "trainer.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, out / "trainer.pt")
        (out / "train.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def resume(self, out: Path) -> None:
        path = out / "trainer.pt"
        if not path.is_file():
            return
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.opt.load_state_dict(state["opt"])
        if self.d_opt is not None and "d_opt" in state:
            self.d_opt.load_state_dict(state["d_opt"])
        self.step_count = int(state["step"])
        log.info("resumed from %s at step %d", out, self.step_count)


def parameter_digest(module: nn.Module) -> float:
    """A cheap fingerprint of a module's weights (sum of |w| weighted by position)."""
    total = 0.0
    for i, p in enumerate(module.parameters()):
        total += float(p.detach().double().abs().sum()) * (1 + 1e-3 * i)
    return total


def _out_of_time(cfg: TrainConfig, elapsed_s: float, dev: torch.device, size: int) -> bool:
    if not cfg.max_minutes:
        return False
    flag = torch.tensor([float(elapsed_s >= cfg.max_minutes * 60.0)], device=dev)
    if size > 1:
        dist.broadcast(flag, src=0)
    return bool(flag.item())


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


class LossMeter:
    """Means of each loss term since the last `take()`, over the steps that had the term (the
    identity term, say, runs every other step), so a progress line shows the whole interval."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, logs: dict[str, float]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def take(self) -> dict[str, float]:
        means = {k: v / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return means


def run(
    cfg: TrainConfig,
    clips: list[ClipData],
    idents: dict[str, np.ndarray],
    out: Path,
    init: Path | None = None,
    resume: bool = True,
    device: str | None = None,
    cross: list[ClipData] | None = None,
) -> dict[str, float]:
    """Train one stage; returns the last logged losses. Rank 0 writes `out`. cross: the
    cross-identity sources (engine.training.cross) for cfg.w_cross_identity."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":  # training only: TF32 matmuls and tuned convolutions (fixed shapes)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    rank, size = world()
    if dev.type == "cuda" and size > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    with process_group(dev):
        seed_everything(cfg.seed)  # same initial weights on every rank
        nets = build_nets(cfg, init, out if resume else None)
        trainer = Trainer(cfg, nets, dev)
        if resume:
            trainer.resume(out)
        # Every rank, and every resumed run, draws its own pairs.
        seed = (cfg.seed * 1000 + rank) * 1_000_003 + trainer.step_count
        sampler = PairSampler(clips, idents, seed=seed, need_hr=cfg.stage == "enhancer")
        stream = (
            batch_stream(clips, idents, seed, cfg.batch, cfg.workers)
            if cfg.workers and cfg.stage != "enhancer"
            else None
        )
        crosses = (
            CrossSampler(cross, idents, seed=seed + 1)
            if cross and cfg.stage == "joint" and cfg.w_cross_identity
            else None
        )
        last: dict[str, float] = {}
        meter = LossMeter()
        t0, done0 = time.perf_counter(), trainer.step_count
        while trainer.step_count < cfg.steps:
            if cfg.stage == "enhancer":
                from engine.training.enhance import enhancer_step

                logs = enhancer_step(trainer, sampler)
            else:
                batch = next(stream) if stream is not None else sampler.sample(cfg.batch)
                due = trainer.step_count % cfg.identity_every == 0
                pairs = crosses.sample_cross(cfg.batch) if crosses is not None and due else None
                logs = trainer.step(batch, pairs)
            last = logs
            meter.add(logs)
            n = trainer.step_count
            elapsed = time.perf_counter() - t0
            # Every rank stops at the same step: rank 0's clock decides (broadcast under DDP).
            stop = _out_of_time(cfg, elapsed, dev, size)
            if n % cfg.log_every == 0 or n == cfg.steps or stop:
                rate = (n - done0) * cfg.batch * size / max(elapsed, 1e-9)
                parts = " ".join(f"{k} {v:.4f}" for k, v in meter.take().items())
                if rank == 0:
                    log.info(
                        "%s step %d/%d  %s  (%.2f pairs/s)", cfg.stage, n, cfg.steps, parts, rate
                    )
            kept = cfg.keep_every and n % cfg.keep_every == 0
            if n % cfg.save_every == 0 or kept or n == cfg.steps or stop:
                trainer.save(out, {"clips": len(clips)})
            if stop:
                log.info("time limit of %.1f min reached at step %d", cfg.max_minutes, n)
                break
        if size > 1:
            dist.barrier()
    return last

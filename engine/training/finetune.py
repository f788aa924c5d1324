"""Fast adaptation of the generator (warp + ID-fusion) to one person's frames.

The inner loop of meta-training (engine/training/meta.py) and the personalization fine-tune
(engine/personalize) are the same thing: a fresh Adam on the reconstruction losses of
same-person pairs (perceptual + L1 + SSIM + eye/mouth regions; no GAN, no identity term).
`fine_tune` adds what a user needs around it: a time budget that is never overrun, progress
with an estimate, and cancellation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.models.fusion import FusionConfig, FusionNet
from engine.models.store import load_model
from engine.models.warp import WarpConfig, WarpNet
from engine.training.generator import Generator
from engine.training.pairs import Batch, PairSampler
from engine.training.trainer import Nets, TrainConfig, Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuneConfig:
    """lr: inner Adam's rate (the warp net gets a tenth, as in joint training). batch: pairs
    per step. perceptual_scales: image scales of the perceptual loss (small: CPU-cheap).
    w_ssim: weight of the SSIM term, as in the base training."""

    lr: float = 2e-4
    batch: int = 4
    perceptual_scales: tuple[float, ...] = (0.5, 0.25)
    w_ssim: float = 1.0

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            stage="joint",
            batch=self.batch,
            lr=self.lr,
            perceptual_scales=self.perceptual_scales,
            w_gan=0.0,
            w_fm=0.0,
            w_identity=0.0,
            w_ssim=self.w_ssim,
        )


class FineTuner:
    """A fresh Adam over `generator` (trained in place)."""

    def __init__(self, generator: Generator, cfg: FineTuneConfig, device: torch.device) -> None:
        self.generator = generator.train()
        self._trainer = Trainer(cfg.train_config(), Nets(generator, None, None), device)

    def step(self, batch: Batch) -> float:
        """One step on a batch of pairs; returns the total loss."""
        return self._trainer.step(batch)["total"]


def load_generator(folder: Path, device: str = "cpu") -> Generator:
    """warp/ + fusion/ store folders -> a Generator (loaded strictly)."""
    warp = load_model(WarpNet, WarpConfig, folder / "warp", device)
    fusion = load_model(FusionNet, FusionConfig, folder / "fusion", device)
    return Generator(warp, fusion)


@dataclass(frozen=True)
class Progress:
    """step: steps done; loss: mean of the last few; elapsed_s / eta_s: seconds so far / left
    (by the budget or the step limit, whichever ends first); fraction in [0, 1]."""

    step: int
    loss: float
    elapsed_s: float
    eta_s: float
    fraction: float


@dataclass(frozen=True)
class FineTuneResult:
    steps: int
    seconds: float
    first_loss: float
    last_loss: float
    cancelled: bool


def fine_tune(
    generator: Generator,
    sampler: PairSampler,
    cfg: FineTuneConfig,
    budget_s: float,
    max_steps: int | None = None,
    device: str = "cpu",
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> FineTuneResult:
    """Fine-tune in place until the budget would be overrun, `max_steps` are done, or `cancel`
    is set (then the weights are partly adapted: the caller decides whether to keep them)."""
    tuner = FineTuner(generator, cfg, torch.device(device))
    t0 = time.perf_counter()
    losses: list[float] = []
    step_s = 0.0
    cancelled = False
    while max_steps is None or len(losses) < max_steps:
        elapsed = time.perf_counter() - t0
        if losses and elapsed + step_s > budget_s:
            break
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        losses.append(tuner.step(sampler.sample(cfg.batch)))
        elapsed = time.perf_counter() - t0
        step_s = elapsed / len(losses)
        if progress is not None:
            left = budget_s - elapsed
            if max_steps is not None:
                left = min(left, (max_steps - len(losses)) * step_s)
            left = max(0.0, left)
            recent = losses[-5:]
            progress(
                Progress(
                    len(losses),
                    sum(recent) / len(recent),
                    elapsed,
                    left,
                    elapsed / max(elapsed + left, 1e-9),
                )
            )
    seconds = time.perf_counter() - t0
    generator.eval()
    if not losses:
        return FineTuneResult(0, seconds, float("nan"), float("nan"), cancelled)
    log.info(
        "fine-tuned %d steps in %.1f s: loss %.4f -> %.4f%s",
        len(losses),
        seconds,
        losses[0],
        losses[-1],
        " (cancelled)" if cancelled else "",
    )
    return FineTuneResult(len(losses), seconds, losses[0], losses[-1], cancelled)

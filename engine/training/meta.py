"""Meta-training (`visage train --meta`): first-order Reptile over people, from the base weights.

One task is one person (all of their clips). For each outer step: copy the meta weights, run a
fresh inner Adam for `inner_steps` steps on that person's pairs (the reconstruction losses, no
GAN: exactly the personalization fine-tune, engine/training/finetune.py), then hand the weight
difference (meta - adapted) to an outer Adam as its gradient. The result is an initialization
that a few fine-tuning steps on one person's frames improve quickly. The generator has no
spectral normalization, so nothing has to be removed first.

Output folder: warp/ and fusion/ (store folders), meta.pt (outer Adam state and step, read back
with weights_only=True) and meta.json; a run resumes from them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import ConfigError
from engine.models.store import save_model
from engine.training.clips import ClipData
from engine.training.finetune import FineTuneConfig, FineTuner, load_generator
from engine.training.generator import Generator
from engine.training.pairs import PairSampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetaConfig:
    """Reptile's settings. METHOD.md: inner Adam 2e-4 for 2 steps, outer Adam 2e-5; the outer
    rate is higher here because a CPU affords far fewer outer steps."""

    tier: str = "cpu"
    outer_steps: int = 300
    inner_steps: int = 2
    inner: FineTuneConfig = field(default_factory=FineTuneConfig)
    outer_lr: float = 1e-4
    log_every: int = 10
    save_every: int = 50
    max_minutes: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.outer_steps < 0 or self.inner_steps < 1 or self.outer_lr <= 0:
            raise ConfigError("outer_steps >= 0, inner_steps >= 1 and outer_lr > 0 are needed")


def tasks_by_person(clips: list[ClipData]) -> dict[str, list[ClipData]]:
    """Clips grouped by person; people with fewer than 2 tracked frames in all are dropped."""
    people: dict[str, list[ClipData]] = defaultdict(list)
    for clip in clips:
        if len(clip.valid_indices) >= 2:
            people[clip.identity].append(clip)
    return dict(sorted(people.items()))


def reptile_step(
    meta: Generator,
    outer: torch.optim.Optimizer,
    sampler: PairSampler,
    cfg: MetaConfig,
    device: torch.device,
) -> float:
    """One outer step on one task; returns the inner loop's mean loss."""
    fast = copy.deepcopy(meta)
    tuner = FineTuner(fast, cfg.inner, device)
    losses = [tuner.step(sampler.sample(cfg.inner.batch)) for _ in range(cfg.inner_steps)]
    outer.zero_grad(set_to_none=False)
    with torch.no_grad():
        for p_meta, p_fast in zip(meta.parameters(), fast.parameters(), strict=True):
            p_meta.grad = (p_meta - p_fast.to(p_meta.device)).detach().clone()
    outer.step()
    return float(np.mean(losses))


def run_meta(
    cfg: MetaConfig,
    clips: list[ClipData],
    idents: dict[str, np.ndarray],
    init: Path,
    out: Path,
    device: str | None = None,
) -> dict[str, float]:
    """Meta-train from the base weights in `init` (warp/ + fusion/); writes `out`."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    people = tasks_by_person(clips)
    if len(people) < 2:
        raise ConfigError(f"meta-training needs clips of 2+ people, got {len(people)}")
    torch.manual_seed(cfg.seed)
    resume = (out / "meta.pt").is_file()
    meta = load_generator(out if resume else init).to(dev).train()
    outer = torch.optim.Adam(meta.parameters(), lr=cfg.outer_lr, betas=(0.0, 0.999))
    step = 0
    if resume:
        state = torch.load(out / "meta.pt", map_location=dev, weights_only=True)
        outer.load_state_dict(state["outer"])
        step = int(state["step"])
        log.info("resumed meta-training from %s at step %d", out, step)
    rng = np.random.default_rng(cfg.seed * 1_000_003 + step)
    samplers = {
        name: PairSampler(cs, idents, seed=int(rng.integers(1 << 31)))
        for name, cs in people.items()
    }
    names = list(samplers)
    log.info("meta-training %s tier over %d people (%d clips)", cfg.tier, len(names), len(clips))
    t0, start, recent = time.perf_counter(), step, []
    stats: dict[str, float] = {}
    while step < cfg.outer_steps:
        name = names[int(rng.integers(len(names)))]
        recent.append(reptile_step(meta, outer, samplers[name], cfg, dev))
        step += 1
        elapsed = time.perf_counter() - t0
        stop = bool(cfg.max_minutes) and elapsed >= cfg.max_minutes * 60
        if step % cfg.log_every == 0 or step == cfg.outer_steps or stop:
            stats = {"inner_loss": float(np.mean(recent)), "tasks_per_s": (step - start) / elapsed}
            log.info(
                "meta step %d/%d  inner loss %.4f  (%.2f tasks/s)",
                step,
                cfg.outer_steps,
                stats["inner_loss"],
                stats["tasks_per_s"],
            )
            recent = []
        if step % cfg.save_every == 0 or step == cfg.outer_steps or stop:
            save_meta(meta, outer, step, cfg, out, len(clips))
        if stop:
            log.info("time limit of %.1f min reached at meta step %d", cfg.max_minutes, step)
            break
    return stats


def save_meta(
    meta: Generator,
    outer: torch.optim.Optimizer,
    step: int,
    cfg: MetaConfig,
    out: Path,
    clips: int,
) -> None:
    info = {"step": step, "clips": clips, "meta": dataclasses.asdict(cfg)}
    save_model(meta.warp_net, out / "warp", info)
    assert meta.fusion is not None
    save_model(meta.fusion, out / "fusion", info)
    tmp = out / "meta.pt.tmp"
    torch.save({"step": step, "outer": outer.state_dict()}, tmp)
    os.replace(tmp, out / "meta.pt")
    (out / "meta.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

"""Enhancer stage: trained on the base model's own 256² outputs against real 512² frames,
over short consecutive runs so that it learns to use its rolling history causally."""

from __future__ import annotations

import torch
from torch import nn

from engine.models.enhancer import upsample2
from engine.runtime.temporal import TemporalBuffer
from engine.training.clips import ClipData
from engine.training.pairs import PairSampler

SEQUENCE = 3  # consecutive frames per sample


def pick_runs(sampler: PairSampler, batch: int) -> list[tuple[ClipData, int, int]]:
    """(clip, source index, first driving index) with SEQUENCE tracked frames from there."""
    picks: list[tuple[ClipData, int, int]] = []
    while len(picks) < batch:
        clip = sampler.clips[sampler.rng.integers(len(sampler.clips))]
        valid = clip.valid
        starts = [i for i in range(len(valid) - SEQUENCE + 1) if valid[i : i + SEQUENCE].all()]
        if not starts:
            continue
        s = int(sampler.rng.choice(clip.valid_indices))
        picks.append((clip, s, int(sampler.rng.choice(starts))))
    return picks


def enhancer_step(trainer: object, sampler: PairSampler) -> dict[str, float]:
    """One optimizer step over SEQUENCE frames of `trainer.cfg.batch` runs."""
    from engine.training.trainer import Trainer

    assert isinstance(trainer, Trainer) and trainer.e_train is not None
    enh = trainer.nets.enhancer
    assert enh is not None
    k = enh.config.history
    runs = pick_runs(sampler, trainer.cfg.batch)
    buffer = TemporalBuffer(k)  # exactly as at run time (engine.runtime.neural)
    total = torch.zeros((), device=trainer.device)
    l1_sum, perc_sum = 0.0, 0.0
    for j in range(SEQUENCE):
        b = sampler.collate([(c, s, t + j) for c, s, t in runs]).to(trainer.device)
        assert b.source_hr is not None and b.driving_hr is not None
        with torch.no_grad():
            out = trainer.nets.generator(b.source, b.grid, b.smap, b.tmap, b.ident, b.mouth)
        history = buffer.tensor(upsample2(out.image))  # B,3k,2S,2S
        y, _ = trainer.e_train(out.image, out.warped, b.source_hr, out.grid, history)
        perc = trainer.perceptual(y, b.driving_hr)
        l1 = (y - b.driving_hr).abs().mean()
        total = total + trainer.cfg.w_perceptual * perc + trainer.cfg.w_l1 * l1
        perc_sum += float(perc.detach())
        l1_sum += float(l1.detach())
        buffer.push(y.detach())
    trainer.opt.zero_grad(set_to_none=True)
    total.backward()
    nn.utils.clip_grad_norm_(enh.parameters(), trainer.cfg.grad_clip)
    trainer.opt.step()
    trainer.step_count += 1
    return {
        "perceptual": perc_sum / SEQUENCE,
        "l1": l1_sum / SEQUENCE,
        "total": float(total.detach()) / SEQUENCE,
    }

"""Run by test_training.py under torchrun: 3 DDP steps on the sample clip, then a report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from engine.training.pairs import PairSampler
from engine.training.trainer import TrainConfig, Trainer, parameter_digest, process_group, world
from tests.engine.training_tools import sample_clip_data, tiny_nets


def main(out: Path) -> None:
    rank, size = world()
    device = torch.device("cpu")
    with process_group(device):
        torch.manual_seed(0)  # same initial weights everywhere, as trainer.run does
        cfg = TrainConfig(stage="joint", batch=1, gan_start=0, w_identity=0.0)
        trainer = Trainer(cfg, tiny_nets("joint"), device)
        clip = sample_clip_data()
        sampler = PairSampler([clip], {clip.name: np.ones(128, np.float32) / np.sqrt(128)}, rank)
        before = parameter_digest(trainer.nets.generator)
        digest = 0.0
        for _ in range(3):
            batch = sampler.sample(1)
            digest += float(batch.driving.sum())
            trainer.step(batch)
        after = parameter_digest(trainer.nets.generator) + parameter_digest(trainer.nets.disc)  # type: ignore[arg-type]
        report = {"world": size, "before": before, "after": after, "batch_digest": digest}
        (out / f"rank{rank}.json").write_text(json.dumps(report))
        dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

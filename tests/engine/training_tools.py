"""Shared set-up for the training tests: a tiny clip cache from the bundled sample video and
tiny network configs (the real tiers are too slow for unit tests on two cores)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from engine.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from engine.models.enhancer import Enhancer, EnhancerConfig
from engine.models.fusion import FusionConfig, FusionNet
from engine.models.warp import WarpConfig, WarpNet
from engine.paths import sample_driving_clip
from engine.training.clips import ClipData, build_clip
from engine.training.generator import Generator
from engine.training.trainer import Nets

TINY_WARP = WarpConfig(size=64, channels=(8, 8, 16), code_dim=16, blocks=1)
TINY_FUSION = FusionConfig(size=256, channels=(8, 8, 16), hidden=8)
TINY_ENHANCER = EnhancerConfig(history=1, channels=8, blocks=1)


@lru_cache(maxsize=1)
def sample_clip_data() -> ClipData:
    """24 frames of the bundled sample clip (a real, moving face), with 512² crops."""
    return build_clip(Path(sample_driving_clip()), "grace_hopper", 24, hr_min_box=0)


def tiny_nets(stage: str) -> Nets:
    fusion = FusionNet(TINY_FUSION) if stage != "warp" else None
    disc = PatchDiscriminator(PatchDiscriminatorConfig(channels=8, layers=2))
    return Nets(
        generator=Generator(WarpNet(TINY_WARP), fusion),
        disc=disc if stage == "joint" else None,
        enhancer=Enhancer(TINY_ENHANCER) if stage == "enhancer" else None,
    )

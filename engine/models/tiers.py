"""The two sizes of the same design: the CPU tier (real time on two cores) and the GPU tier."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError
from engine.models.enhancer import EnhancerConfig
from engine.models.fusion import FusionConfig
from engine.models.warp import WarpConfig

CROP = 256  # the networks' crop side; the enhancer doubles it


@dataclass(frozen=True)
class Tier:
    """name: "cpu" or "gpu". enhancer: None when the tier has no 512² stage."""

    name: str
    warp: WarpConfig
    fusion: FusionConfig
    enhancer: EnhancerConfig | None


CPU_TIER = Tier(
    name="cpu",
    warp=WarpConfig(size=64, channels=(16, 32, 64), code_dim=64, blocks=2),
    fusion=FusionConfig(size=CROP, channels=(16, 32, 64), hidden=16),
    enhancer=None,
)

GPU_TIER = Tier(
    name="gpu",
    warp=WarpConfig(size=128, channels=(32, 64, 128), code_dim=128, blocks=4),
    fusion=FusionConfig(size=CROP, channels=(48, 96, 192), hidden=64),
    enhancer=EnhancerConfig(history=2, channels=48, blocks=6),
)

TIERS = {t.name: t for t in (CPU_TIER, GPU_TIER)}


def get_tier(name: str) -> Tier:
    try:
        return TIERS[name]
    except KeyError:
        raise ConfigError(f"unknown tier {name!r}; choose one of {sorted(TIERS)}") from None

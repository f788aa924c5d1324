"""Engine configuration, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class EngineConfig:
    """grid: side of the flow grid over the head box (pixels).
    hold_s / ease_out_s: when the face is lost, hold the last motion, then ease to neutral.
    ease_in_s: blend back in when the face returns.
    neutral_frames: frames averaged for the automatic neutral face.
    feather: soft paste-back edge, as a fraction of the head box.
    mouth_fill: paint a mouth interior where the portrait's mouth cannot supply one.
    """

    grid: int = 256
    hold_s: float = 0.3
    ease_out_s: float = 0.5
    ease_in_s: float = 0.2
    neutral_frames: int = 5
    feather: float = 0.08
    mouth_fill: bool = True

    def __post_init__(self) -> None:
        if not 32 <= self.grid <= 1024:
            raise ConfigError(f"grid must be within [32, 1024], got {self.grid}")
        if self.hold_s < 0 or self.ease_out_s <= 0 or self.ease_in_s <= 0:
            raise ConfigError("hold_s must be >= 0 and ease times > 0")
        if self.hold_s + self.ease_out_s > 1.0:
            raise ConfigError("hold_s + ease_out_s must not exceed 1 s (ease to neutral in time)")
        if self.neutral_frames < 1:
            raise ConfigError("neutral_frames must be >= 1")
        if not 0.0 <= self.feather <= 0.3:
            raise ConfigError("feather must be within [0, 0.3]")

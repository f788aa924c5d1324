"""What the avatar does when the driver's face is lost: hold, then ease back to neutral.

Times come from frame timestamps, so file rendering is deterministic. The presence weight
scales the motion: 1 follows the driver, 0 is the portrait's own neutral face.
"""

from __future__ import annotations

from dataclasses import replace

from engine.types import Motion


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class PresenceGate:
    """hold_s: keep the last motion this long after the face is lost.
    ease_out_s: then blend to neutral over this long (hold_s + ease_out_s <= 1 s).
    ease_in_s: when the face comes back, blend from the current weight to 1 over this long.
    """

    def __init__(self, hold_s: float = 0.3, ease_out_s: float = 0.5, ease_in_s: float = 0.2):
        if hold_s < 0 or ease_out_s <= 0 or ease_in_s <= 0:
            raise ValueError("hold_s must be >= 0 and the ease times > 0")
        self.hold_s, self.ease_out_s, self.ease_in_s = hold_s, ease_out_s, ease_in_s
        self._last: Motion | None = None
        self._last_t: float | None = None
        self._lost_at: float | None = None
        self._weight_at_loss = 0.0
        self._weight = 0.0

    def reset(self) -> None:
        self.__init__(self.hold_s, self.ease_out_s, self.ease_in_s)  # type: ignore[misc]

    @property
    def weight(self) -> float:
        return self._weight

    def update(self, motion: Motion | None, t: float) -> Motion:
        """motion: this frame's Motion, or None when no face was tracked at time t (seconds)."""
        dt = 0.0 if self._last_t is None else max(t - self._last_t, 0.0)
        self._last_t = t
        if motion is not None:
            self._lost_at = None
            start = self._weight if self._last is not None else 1.0
            self._weight = min(1.0, start + dt / self.ease_in_s)
            self._last = motion
            return replace(motion, presence=self._weight)
        if self._last is None:  # never seen a face: stay neutral
            self._weight = 0.0
            return Motion.neutral()
        if self._lost_at is None:
            self._lost_at = t
            self._weight_at_loss = self._weight
        gone = t - self._lost_at
        fade = 1.0 - _smoothstep((gone - self.hold_s) / self.ease_out_s)
        self._weight = self._weight_at_loss * fade
        return replace(self._last, presence=self._weight)

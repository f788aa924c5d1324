"""One-Euro filter (Casiez et al., CHI 2012), vectorized over any array shape.

Low speed -> low cutoff (jitter removed); high speed -> cutoff rises (no lag on fast motion).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def _alpha(cutoff_hz: F64 | float, dt: float) -> F64 | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """min_cutoff_hz: cutoff at rest. beta: cutoff gain per unit/second of speed.
    d_cutoff_hz: cutoff of the speed estimate. Units of `beta` are those of the signal.
    """

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float = 1.0) -> None:
        if min_cutoff_hz <= 0 or beta < 0 or d_cutoff_hz <= 0:
            raise ValueError("cutoffs must be > 0 and beta >= 0")
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.d_cutoff_hz = d_cutoff_hz
        self._x: F64 | None = None
        self._dx: F64 | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = None
        self._t = None

    def __call__(self, x: npt.ArrayLike, t: float) -> F64:
        """Filter sample `x` taken at time `t` (seconds, increasing)."""
        value = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._dx is None or t <= self._t:
            if self._x is None or self._x.shape != value.shape or self._t is None or t < self._t:
                self._x, self._dx, self._t = value.copy(), np.zeros_like(value), t
            return self._x.copy()
        dt = t - self._t
        dx = (value - self._x) / dt
        a_d = _alpha(self.d_cutoff_hz, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff_hz + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * value + (1 - a) * self._x
        self._t = t
        return self._x.copy()


class LandmarkSmoother:
    """One-Euro on (478, 3) landmarks in units of the inter-ocular distance (scale-free).

    strength in [0, 1]: 0 passes landmarks through, 1 smooths most (min cutoff 0.5 Hz).
    """

    MAX_CUTOFF_HZ = 8.0
    MIN_CUTOFF_HZ = 0.5
    BETA = 4.0  # per inter-ocular distance per second

    def __init__(self, strength: float = 0.5) -> None:
        self._strength = -1.0
        self._filter: OneEuroFilter | None = None
        self.set_strength(strength)

    def set_strength(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be within [0, 1], got {strength}")
        if strength == self._strength:
            return
        self._strength = strength
        ratio = self.MIN_CUTOFF_HZ / self.MAX_CUTOFF_HZ
        cutoff = self.MAX_CUTOFF_HZ * ratio**strength
        old = self._filter
        self._filter = OneEuroFilter(cutoff, self.BETA) if strength > 0 else None
        if old is not None and self._filter is not None:  # keep state across a slider move
            self._filter._x, self._filter._dx, self._filter._t = old._x, old._dx, old._t

    def reset(self) -> None:
        if self._filter is not None:
            self._filter.reset()

    def __call__(self, points: npt.NDArray[np.float32], iod: float, t: float) -> npt.NDArray:
        """points: (478, 3) pixels; iod: the face's inter-ocular distance in pixels."""
        if self._filter is None:
            return points
        unit = max(iod, 1.0)
        return (self._filter(points / unit, t) * unit).astype(np.float32)

"""One-Euro smoothing: removes jitter at rest, little lag on fast motion."""

from __future__ import annotations

import numpy as np
import pytest

from engine.landmarks.smoothing import LandmarkSmoother, OneEuroFilter


def test_jitter_at_rest_is_removed() -> None:
    rng = np.random.default_rng(1)
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=4.0)
    noisy = 5.0 + rng.normal(scale=0.01, size=300)  # ~0.6 px on a 60 px inter-ocular distance
    out = np.array([f(x, i / 30) for i, x in enumerate(noisy)])
    assert out[30:].std() < 0.35 * noisy[30:].std()


def test_fast_motion_has_little_lag() -> None:
    """A 3 units/s ramp: One-Euro lags under half a frame's step; a plain 1 Hz low-pass lags ~5."""
    euro = OneEuroFilter(min_cutoff_hz=1.0, beta=4.0)
    plain = OneEuroFilter(min_cutoff_hz=1.0, beta=0.0)
    step = 3.0 / 30
    ramp = [i * step for i in range(60)]
    e = [euro(x, i / 30) for i, x in enumerate(ramp)]
    p = [plain(x, i / 30) for i, x in enumerate(ramp)]
    assert ramp[-1] - float(e[-1]) < 0.5 * step
    assert ramp[-1] - float(p[-1]) > 4 * step


def test_landmark_smoother_strength_zero_passes_through() -> None:
    pts = np.random.default_rng(2).normal(size=(478, 3)).astype(np.float32)
    s = LandmarkSmoother(0.0)
    assert s(pts, 60.0, 0.0) is pts
    with pytest.raises(ValueError):
        LandmarkSmoother(1.5)


def test_landmark_smoother_is_scale_free() -> None:
    """The same motion at twice the face size is smoothed identically (in IOD units)."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(20, 478, 3)).cumsum(axis=0).astype(np.float32)
    a, b = LandmarkSmoother(0.6), LandmarkSmoother(0.6)
    for i, pts in enumerate(base):
        out_a = a(pts, 50.0, i / 30)
        out_b = b(pts * 2, 100.0, i / 30)
    np.testing.assert_allclose(out_b, out_a * 2, rtol=1e-5, atol=1e-4)

"""Metrics give the textbook numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluation.metrics import correlation, landmark_error, psnr, ssim
from engine.landmarks.topology import load_topology


def test_psnr_known_values() -> None:
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == 100.0
    b[:] = 10  # MSE 100
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    with pytest.raises(ValueError):
        psnr(a, np.zeros((5, 5, 3), np.uint8))


def test_ssim_identity_noise_and_symmetry() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    noisy = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, noisy) < 0.9
    assert ssim(a, noisy) == pytest.approx(ssim(noisy, a))


def test_correlation_and_constant_series() -> None:
    x = np.arange(10.0)
    assert correlation(x, 2 * x + 1) == pytest.approx(1.0)
    assert correlation(x, -x) == pytest.approx(-1.0)
    assert correlation(x, np.ones(10)) == 0.0
    with pytest.raises(ValueError):
        correlation(x, x[:5])


def test_landmark_error_is_in_inter_ocular_units() -> None:
    pts = load_topology().canonical.astype(np.float64) * 50
    shifted = pts + np.array([5.0, 0.0, 0.0])
    assert landmark_error(shifted, pts) == pytest.approx(5.0 / 50.0, rel=1e-6)
    assert landmark_error(shifted * 3, pts * 3) == pytest.approx(15.0 / 150.0, rel=1e-6)

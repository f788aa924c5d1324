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


def test_eval_table_weighs_every_person_once() -> None:
    from engine.evaluation.reenactment import (
        GEOMETRIC,
        ClipResult,
        Scores,
        format_table,
        mean_scores,
        person_mean_scores,
    )

    def result(person: str, psnr_db: float) -> ClipResult:
        s = Scores(psnr_db, 0.9, 0.02, 0.9, 0.8, 0.99)
        return ClipResult(clip=f"{person}.mp4", frames=10, scores={GEOMETRIC: s}, person=person)

    # Three clips of one person at 30 dB, one of another at 20 dB.
    results = [result("a", 30.0), result("a", 30.0), result("a", 30.0), result("b", 20.0)]
    assert mean_scores(results, GEOMETRIC).psnr == pytest.approx(27.5)
    assert person_mean_scores(results, GEOMETRIC).psnr == pytest.approx(25.0)
    table = format_table(results)
    assert "mean over 2 people (a, b):" in table
    assert "| geometric engine | 27.50 |" in table and "| geometric engine | 25.00 |" in table
    assert "mean over" not in format_table(results[:3])  # one person: no second table

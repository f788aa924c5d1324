"""Metrics give the textbook numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine.evaluation.metrics import (
    correlation,
    landmark_error,
    paired_difference,
    psnr,
    ssim,
)
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


def test_paired_difference_interval_covers_the_mean_and_narrows_with_more_items() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.9, 0.05, 200)
    better = base + 0.01 + rng.normal(0, 0.01, 200)  # a small, consistent gain
    mean, lo, hi = paired_difference(better, base)
    assert lo < mean < hi and lo > 0  # the gain is clearly there with 200 pairs
    assert mean == pytest.approx(np.mean(better - base))
    _, lo12, hi12 = paired_difference(better[:12], base[:12])
    assert hi12 - lo12 > hi - lo  # 12 pairs: a wider interval
    noisy = base[:12] + 0.05 * np.array([1.0, -1.0] * 6)  # no gain on average, much spread
    _, lo_n, hi_n = paired_difference(noisy, base[:12])
    assert lo_n < 0 < hi_n
    # NaN pairs are dropped; none left is NaN.
    m, _, _ = paired_difference([1.0, np.nan, 3.0], [0.0, 1.0, 1.0])
    assert m == pytest.approx(1.5)
    assert np.isnan(paired_difference([np.nan], [1.0])[0])


def test_eval_table_gives_the_difference_with_its_interval() -> None:
    from engine.evaluation.reenactment import GEOMETRIC, ClipResult, Scores, format_table

    def result(i: int) -> ClipResult:
        geo = Scores(25.0 + i % 3, 0.85, 0.02, 0.9, 0.8, 0.993)
        nets = Scores(25.5 + i % 3, 0.86, 0.02, 0.9, 0.8, 0.992)
        return ClipResult(
            clip=f"{i}.mp4", frames=10, scores={GEOMETRIC: geo, "nets": nets}, person="a"
        )

    table = format_table([result(i) for i in range(6)])
    assert (
        "nets - geometric engine, mean over clips [95% bootstrap interval]: "
        "psnr +0.50 [+0.50, +0.50], ssim +0.0100 [+0.0100, +0.0100]"
    ) in table
    assert "id_sim -0.0010 [-0.0010, -0.0010]" in table


def test_the_control_is_compared_with_the_geometric_path_only() -> None:
    from engine.evaluation.reenactment import (
        CONTROL,
        GEOMETRIC,
        ClipResult,
        Scores,
        format_table,
        jpeg_round_trip,
    )

    def result(i: int) -> ClipResult:
        geo = Scores(25.0, 0.85, 0.02, 0.9, 0.8, 0.993)
        again = Scores(25.0, 0.85, 0.02, 0.9 + 0.01 * (i % 2), 0.8, 0.993)
        nets = Scores(25.5, 0.86, 0.02, 0.9, 0.8, 0.992)
        scores = {GEOMETRIC: geo, CONTROL: again, "nets": nets}
        return ClipResult(clip=f"{i}.mp4", frames=10, scores=scores, person="a")

    table = format_table([result(i) for i in range(6)])
    assert f"{CONTROL} - geometric engine, mean over clips" in table
    assert "nets - geometric engine, mean over clips" in table
    assert f"nets - {CONTROL}" not in table
    from engine.capture.image_file import load_image
    from engine.paths import portraits_dir

    image = load_image(portraits_dir() / "grace_hopper.jpg")
    again = jpeg_round_trip(image)
    assert again.shape == image.shape and again.dtype == np.uint8
    assert 0 < np.abs(again.astype(int) - image).mean() < 2  # changed, but barely
    assert psnr(again, image) > 38


def test_the_real_frames_are_a_reference_line_not_a_method() -> None:
    from engine.evaluation.reenactment import GEOMETRIC, REAL, ClipResult, Scores, format_table

    nan = float("nan")

    def result(i: int) -> ClipResult:
        geo = Scores(25.0, 0.85, 0.02, 0.9, 0.8, 0.993)
        real = Scores(nan, nan, nan, nan, nan, 0.985 + 0.001 * i)
        scores = {GEOMETRIC: geo, "nets": geo, REAL: real}
        return ClipResult(clip=f"{i}.mp4", frames=10, scores=scores, person=f"p{i % 2}")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # REAL's all-NaN columns are averaged without a warning
        table = format_table([result(i) for i in range(4)])
    assert f"{REAL}: identity sim 0.9865 to the portrait (over people 0.9865)" in table
    assert f"| {REAL} |" not in table and f"- {REAL}" not in table and "nan" not in table

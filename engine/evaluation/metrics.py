"""Image and landmark metrics for self-reenactment scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.landmarks.topology import eye_centers
from engine.types import ImageArray


def psnr(a: ImageArray, b: ImageArray) -> float:
    """Peak signal-to-noise ratio in dB of two same-size uint8 images (capped at 100)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else 10.0 * np.log10(255.0**2 / mse)


def ssim(a: ImageArray, b: ImageArray) -> float:
    """Mean structural similarity (Wang et al. 2004) on luma, Gaussian window sigma 1.5."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return float(np.mean(num / den))


def landmark_error(pred: npt.NDArray[np.floating], truth: npt.NDArray[np.floating]) -> float:
    """Mean 2-D distance over all landmarks, divided by the truth's inter-ocular distance."""
    a, b = eye_centers(np.asarray(truth)[:, :2])
    iod = float(np.linalg.norm(a - b))
    dist = np.linalg.norm(np.asarray(pred)[:, :2] - np.asarray(truth)[:, :2], axis=1)
    return float(dist.mean()) / max(iod, 1e-6)


def correlation(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Pearson correlation; 0.0 when either series is constant (nothing follows nothing)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if len(a) != len(b) or len(a) < 3:
        raise ValueError("need two series of equal length >= 3")
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


BOOTSTRAP_DRAWS = 2000


def paired_difference(
    a: npt.ArrayLike, b: npt.ArrayLike, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a - b over paired items (N,), with a percentile bootstrap interval at `level`
    (items resampled with replacement, BOOTSTRAP_DRAWS times). Pairs with a NaN are dropped;
    all NaN when none is left."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (BOOTSTRAP_DRAWS, len(d)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(lo), float(hi)


def difference_line(name: str, against: str, pairs: Sequence[tuple[Any, Any]], unit: str) -> str:
    """One line: for each field of the paired score dataclasses (score of `name`, score of
    `against`, one pair per `unit`), the mean difference with its 95 % bootstrap interval."""
    parts = []
    for f in fields(type(pairs[0][0])):
        mean, lo, hi = paired_difference(
            [getattr(a, f.name) for a, _ in pairs], [getattr(b, f.name) for _, b in pairs]
        )
        digits = 2 if f.name == "psnr" else 4
        parts.append(f"{f.name} {mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]")
    return f"{name} - {against}, mean over {unit}s [95% bootstrap interval]: " + ", ".join(parts)

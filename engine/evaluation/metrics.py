"""Image and landmark metrics for self-reenactment scoring."""

from __future__ import annotations

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

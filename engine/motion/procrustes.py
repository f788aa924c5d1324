"""Least-squares similarity fit (Umeyama 1991) between corresponding 3-D point sets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def fit_similarity(src: npt.ArrayLike, dst: npt.ArrayLike) -> tuple[float, F64, F64]:
    """Find scale, rotation, translation minimizing |dst - (scale * R @ src + t)|^2.

    src, dst: (N, 3) corresponding points, N >= 3.
    Returns (scale, R (3, 3) with det +1, t (3,)). Apply to row vectors as s * p @ R.T + t.
    """
    a = np.asarray(src, dtype=np.float64)
    b = np.asarray(dst, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 3:
        raise ValueError(f"need two (N>=3, 3) point sets, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    da, db = a - mu_a, b - mu_b
    cov = db.T @ da / len(a)  # (3, 3)
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rot = u @ np.diag(d) @ vt
    var_a = (da**2).sum() / len(a)
    scale = float((sing * d).sum() / var_a) if var_a > 0 else 1.0
    t = mu_b - scale * rot @ mu_a
    return scale, rot, t

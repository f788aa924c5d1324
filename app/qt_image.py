"""numpy (H, W, 3) uint8 RGB <-> QImage, always copying (no buffer outlives its owner)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PySide6.QtGui import QImage


def to_qimage(image: npt.NDArray[np.uint8]) -> QImage:
    """(H, W, 3) uint8 RGB array -> a QImage that owns its pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    data = np.ascontiguousarray(image)
    h, w = data.shape[:2]
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def to_array(image: QImage) -> npt.NDArray[np.uint8]:
    """A QImage of any format -> (H, W, 3) uint8 RGB array (a copy)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()

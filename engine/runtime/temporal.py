"""The enhancer's rolling buffer: the last k outputs, newest first, kept on the device."""

from __future__ import annotations

import torch


class TemporalBuffer:
    """Holds (B, 3k, H, W). Empty until the first push, which fills every slot with that frame
    (no look-ahead and no black history at start). reset() empties it (new portrait, a cut).
    Training (engine.training.enhance) uses this same class, so both start alike."""

    def __init__(self, k: int) -> None:
        if k < 0:
            raise ValueError(f"history length must be >= 0, got {k}")
        self.k = k
        self._buf: torch.Tensor | None = None

    def tensor(self, like: torch.Tensor) -> torch.Tensor:
        """The history for the next step; before any push, `like` (B, 3, H, W) repeated."""
        if self._buf is None:
            return like.repeat(1, self.k, 1, 1)
        return self._buf

    def push(self, frame: torch.Tensor) -> None:
        """frame: (B, 3, H, W), the newest output."""
        if self.k == 0:
            return
        if self._buf is None:
            self._buf = frame.repeat(1, self.k, 1, 1).clone()
            return
        self._buf = torch.cat([frame, self._buf[:, : 3 * (self.k - 1)]], dim=1)

    def reset(self) -> None:
        self._buf = None

    @property
    def empty(self) -> bool:
        return self._buf is None

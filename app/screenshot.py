"""Screenshots of the window as the screen shows it, after given numbers of avatar frames.

For checking a real window (tests under Xvfb) and for the documentation: each shot is the
window's pixels read back from the screen (QScreen.grabWindow), saved as shot-N.png beside
shot-N.json (where the camera and avatar images lie in it, and what the frame was).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QRect, QTimer
from PySide6.QtWidgets import QApplication

from app.engine_bridge import EngineBridge
from app.main_window import MainWindow
from engine.api import LiveFrame

log = logging.getLogger(__name__)

SETTLE_MS = 150  # let the frame just shown be painted before reading the screen
TIMEOUT_EXIT_CODE = 3


def _rect_in_window(window: MainWindow, pane_rect: QRect, pane: object) -> list[int]:
    origin = pane.mapTo(window, QPoint(0, 0))  # type: ignore[attr-defined]
    return [
        origin.x() + pane_rect.x(),
        origin.y() + pane_rect.y(),
        pane_rect.width(),
        pane_rect.height(),
    ]


class ScreenshotTaker(QObject):
    """Saves shots after each count in `frames` (avatar frames shown), then quits with 0; quits
    with TIMEOUT_EXIT_CODE if they are not all taken within `timeout_s`."""

    def __init__(
        self,
        window: MainWindow,
        bridge: EngineBridge,
        out: Path,
        frames: tuple[int, ...],
        timeout_s: float,
    ) -> None:
        super().__init__(window)
        self.window, self.out = window, out
        self.frames = sorted(frames)
        self.count = 0
        self.taken = 0
        out.mkdir(parents=True, exist_ok=True)
        bridge.frame_ready.connect(self._frame)
        QTimer.singleShot(round(timeout_s * 1000), self._timeout)

    def _frame(self, live: LiveFrame) -> None:
        self.count += 1
        if self.count in self.frames:
            QTimer.singleShot(SETTLE_MS, lambda n=self.count, f=live: self._grab(n, f))

    def _grab(self, count: int, live: LiveFrame) -> None:
        window = self.window
        window.repaint()
        screen = window.screen()
        pixmap = screen.grabWindow(window.winId())
        index = self.taken + 1
        path = self.out / f"shot-{index}.png"
        pixmap.save(str(path))
        preview = window.preview
        shown = window.controller.preview.frame
        info = {
            "frames_shown": count,
            "sequence": shown.sequence if shown else live.sequence,
            "portrait": live.portrait,
            "window_size": [pixmap.width(), pixmap.height()],
            "device_pixel_ratio": pixmap.devicePixelRatio(),
            "avatar_rect": _rect_in_window(window, preview.avatar.image_rect(), preview.avatar),
            "camera_rect": _rect_in_window(window, preview.webcam.image_rect(), preview.webcam),
        }
        path.with_suffix(".json").write_text(json.dumps(info, indent=1))
        log.info("screenshot %s after %d frames", path, count)
        self.taken += 1
        if self.taken == len(self.frames):
            QTimer.singleShot(0, lambda: QApplication.exit(0))

    def _timeout(self) -> None:
        if self.taken < len(self.frames):
            log.error("screenshots: only %d of %d taken in time", self.taken, len(self.frames))
            QApplication.exit(TIMEOUT_EXIT_CODE)

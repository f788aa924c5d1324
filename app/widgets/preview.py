"""The two large preview panes, side by side: the driving camera and the avatar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QSplitter, QWidget

from app.models.preview import PreviewModel
from app.qt_image import to_qimage
from app.widgets.style import ACCENT, PANE_BACKGROUND
from engine.api import IMAGE_SUFFIXES

LANDMARK_COLOUR = QColor(80, 220, 160)


def display_name(portrait: str) -> str:
    """ "mona_lisa.jpg" -> "Mona Lisa"; a name that is not a file name stays as it is."""
    path = Path(portrait)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return path.stem.replace("_", " ").title()
    return portrait


class ImagePane(QWidget):
    """An image scaled to fit (never stretched), a caption, optional points drawn over it, and
    a note over everything when there is something to say."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.image: QImage | None = None
        self.points: npt.NDArray[np.float32] | None = None
        self.note = ""
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, points: npt.NDArray[np.float32] | None) -> None:
        """image: what to show. points: (N, 2+) pixel coordinates in it to draw, or None."""
        self.image, self.points = image, points
        self.update()

    def set_note(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self.update()

    def image_rect(self) -> QRect:
        """Where the image is drawn, in widget coordinates (empty without an image)."""
        if self.image is None or self.image.isNull():
            return QRect()
        iw, ih = self.image.width(), self.image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = round(iw * scale), round(ih * scale)
        return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), PANE_BACKGROUND)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        target = self.image_rect()
        if self.image is not None and not target.isEmpty():
            painter.drawImage(target, self.image)
            if self.points is not None:
                self._draw_points(painter, target)
        self._draw_caption(painter)
        if self.note:
            self._draw_note(painter)
        painter.end()

    def _draw_points(self, painter: QPainter, target: QRect) -> None:
        assert self.image is not None and self.points is not None
        scale = target.width() / self.image.width()
        pen = QPen(LANDMARK_COLOUR)
        pen.setWidthF(max(1.5, 2.0 * scale))
        painter.setPen(pen)
        xy = (self.points[:, :2].astype(np.float64) + 0.5) * scale
        painter.drawPoints([QPointF(target.x() + x, target.y() + y) for x, y in xy])

    def _draw_caption(self, painter: QPainter) -> None:
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.05)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRectF(12, 12, metrics.horizontalAdvance(self.caption) + 20, metrics.height() + 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor(ACCENT))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.caption)

    def _draw_note(self, painter: QPainter) -> None:
        painter.setFont(self.font())
        width = min(self.width() - 40, 420)
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        bound = painter.fontMetrics().boundingRect(QRect(0, 0, width, 400), flags, self.note)
        box = QRectF(
            (self.width() - width - 24) / 2,
            self.height() - bound.height() - 48,
            width + 24,
            bound.height() + 20,
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 185))
        painter.drawRoundedRect(box, 8, 8)
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(box.adjusted(12, 10, -12, -10), flags, self.note)


class PreviewPanel(QWidget):
    """A view of PreviewModel: the camera (with landmarks when asked) and the avatar."""

    def __init__(self, model: PreviewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.webcam = ImagePane("Camera")
        self.avatar = ImagePane("Avatar")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.webcam)
        splitter.addWidget(self.avatar)
        splitter.setChildrenCollapsible(False)
        splitter.setHandleWidth(6)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        model.frame_changed.connect(lambda _: self._refresh())
        model.overlay_changed.connect(lambda _: self._refresh())
        model.notes_changed.connect(lambda _: self._refresh_notes())
        model.name_changed.connect(lambda _: self._refresh())
        self._refresh_notes()

    def _refresh(self) -> None:
        live = self.model.frame
        if live is None:
            return
        points = live.landmarks if self.model.show_landmarks else None
        self.webcam.set_image(to_qimage(live.driving), points)
        self.avatar.set_image(to_qimage(live.avatar), None)
        name = self.model.avatar_name or display_name(live.portrait)
        self.avatar.caption = f"Avatar · {name}"

    def _refresh_notes(self) -> None:
        self.webcam.set_note(self.model.webcam_note)
        self.avatar.set_note(self.model.avatar_note)

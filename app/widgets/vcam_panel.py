"""Start/stop the virtual camera, its size, and what it is doing."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.models.vcam import VirtualCameraModel
from engine.api import VIRTUAL_CAMERA_SIZES


class VirtualCameraPanel(QWidget):
    """A view of VirtualCameraModel."""

    def __init__(self, model: VirtualCameraModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.button = QPushButton()
        self.button.setObjectName("primary")
        self.button.clicked.connect(model.toggle)
        self.size_box = QComboBox()
        for w, h in VIRTUAL_CAMERA_SIZES:
            self.size_box.addItem(f"{w} × {h}")
        self.size_box.setToolTip("Frame size sent to video-call apps (30 fps)")
        self.size_box.activated.connect(lambda i: model.set_size(VIRTUAL_CAMERA_SIZES[i]))
        self.message = QLabel()
        self.message.setObjectName("hint")
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.button, 1)
        row.addWidget(self.size_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.message)
        model.changed.connect(lambda _: self._refresh())
        self._refresh()

    def _refresh(self) -> None:
        m = self.model
        if m.busy:
            text = "Stopping…" if m.running else "Starting…"
        else:
            text = "Stop virtual camera (V)" if m.running else "Start virtual camera (V)"
        self.button.setText(text)
        self.button.setEnabled(not m.busy)
        self.button.setProperty("running", m.running)
        self.button.style().unpolish(self.button)
        self.button.style().polish(self.button)
        self.size_box.setCurrentIndex(VIRTUAL_CAMERA_SIZES.index(m.size))
        self.message.setText(m.message)

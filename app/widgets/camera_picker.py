"""Camera picker: source (cameras found, hot-plugged, or the sample clip), resolution, mirror."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QWidget

from app.models.camera import RESOLUTIONS, CameraModel


class CameraPicker(QWidget):
    """A view of CameraModel."""

    def __init__(self, model: CameraModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.source = QComboBox()
        self.source.setToolTip("What drives the avatar; cameras appear here when plugged in")
        self.source.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.source.setMinimumContentsLength(14)
        self.source.activated.connect(self._source_chosen)
        self.resolution = QComboBox()
        for w, h in RESOLUTIONS:
            self.resolution.addItem(f"{w} × {h}")
        self.resolution.setToolTip("Camera resolution (640 × 480 is plenty for tracking)")
        self.resolution.activated.connect(lambda i: model.set_resolution(RESOLUTIONS[i]))
        self.mirror = QCheckBox("Mirror (M)")
        self.mirror.setToolTip("Flip the webcam left and right, like a mirror")
        self.mirror.toggled.connect(model.set_mirror)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Source", self.source)
        layout.addRow("Resolution", self.resolution)
        layout.addRow("", self.mirror)
        layout.addRow(self.status)
        model.cameras_changed.connect(lambda _: self._refresh())
        model.source_changed.connect(lambda _: self._refresh())
        model.state_changed.connect(lambda _: self._refresh())
        self._refresh()

    def _refresh(self) -> None:
        m = self.model
        self.source.blockSignals(True)
        self.source.clear()
        for choice in m.choices():
            self.source.addItem(m.camera_label(choice), choice)
            if choice == m.choice:
                self.source.setCurrentIndex(self.source.count() - 1)
        self.source.blockSignals(False)
        if m.resolution in RESOLUTIONS:
            self.resolution.setCurrentIndex(RESOLUTIONS.index(m.resolution))
        self.mirror.blockSignals(True)
        self.mirror.setChecked(m.mirror)
        self.mirror.setEnabled(m.active_camera is not None)  # files play as they were made
        self.mirror.blockSignals(False)
        self.status.setText(m.status())

    def _source_chosen(self, index: int) -> None:
        self.model.choose(self.source.itemData(index))

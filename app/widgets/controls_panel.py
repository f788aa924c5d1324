"""Sliders for expression strength, head-pose strength and smoothing, plus Calibrate."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from app.models.controls import SMOOTHING_RANGE, STRENGTH_RANGE, ControlsModel

STEPS = 100  # slider ticks per unit


class ControlsPanel(QWidget):
    """A view of ControlsModel. `calibrate_requested`: the Calibrate button was pressed."""

    calibrate_requested = Signal()

    def __init__(self, model: ControlsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        self.sliders: dict[str, QSlider] = {}
        self.values: dict[str, QLabel] = {}
        rows = (
            ("expression", "Expression", STRENGTH_RANGE, "How strongly expressions carry over"),
            ("pose", "Head pose", STRENGTH_RANGE, "How strongly head turns carry over"),
            ("smoothing", "Smoothing", SMOOTHING_RANGE, "Steadier motion (more) or snappier"),
        )
        for row, (name, label, bounds, tip) in enumerate(rows):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(round(bounds[0] * STEPS), round(bounds[1] * STEPS))
            slider.setToolTip(tip)
            slider.valueChanged.connect(self._setter(name))
            value = QLabel()
            value.setMinimumWidth(36)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            self.sliders[name], self.values[name] = slider, value
        self.calibrate = QPushButton("Calibrate (C)")
        self.calibrate.setToolTip("Look into the camera with a relaxed, neutral face and press")
        self.calibrate.clicked.connect(self.calibrate_requested.emit)
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("Back to the default strengths and smoothing")
        self.reset.clicked.connect(model.reset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.calibrate, 1)
        buttons.addWidget(self.reset)
        grid.addLayout(buttons, len(rows), 0, 1, 3)
        self.setLayout(grid)
        model.changed.connect(lambda _: self._refresh())
        self._refresh()

    def _setter(self, name: str) -> Callable[[int], None]:
        def apply(ticks: int) -> None:
            setattr(self.model, name, ticks / STEPS)

        return apply

    def _refresh(self) -> None:
        for name, slider in self.sliders.items():
            value = float(getattr(self.model, name))
            slider.blockSignals(True)
            slider.setValue(round(value * STEPS))
            slider.blockSignals(False)
            self.values[name].setText(f"{value:.2f}")

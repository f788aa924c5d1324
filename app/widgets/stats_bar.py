"""The status bar: FPS, end-to-end latency, per-stage milliseconds, device and compute."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.models.stats import Stats, StatsModel


class StatsBar(QStatusBar):
    """A view of StatsModel."""

    def __init__(self, model: StatsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.fps = QLabel()
        self.latency = QLabel()
        self.stages = QLabel()
        self.compute = QLabel()
        self.fps.setToolTip("Avatar frames per second")
        self.latency.setToolTip("From a camera frame's arrival to its avatar frame being ready")
        self.stages.setToolTip("Milliseconds per engine stage (smoothed)")
        for label in (self.fps, self.latency, self.stages):
            self.addWidget(label)
        self.addPermanentWidget(self.compute)
        model.changed.connect(self._refresh)
        self._refresh(model.stats)

    def _refresh(self, stats: Stats) -> None:
        self.fps.setText(f"{stats.fps:.1f} FPS")
        self.latency.setText(f"latency {stats.latency_ms:.0f} ms")
        stages = stats.stages_text()
        self.stages.setText(f"engine {stats.engine_ms:.1f} ms: {stages}" if stages else "")
        compute = " · ".join(p for p in (stats.device, stats.compute, stats.note) if p)
        self.compute.setText(compute or "starting…")
        self.compute.setToolTip(compute)

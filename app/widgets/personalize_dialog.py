"""The personalization dialog: a view of PersonalizeModel, one page per phase.

ready: what will happen, a name, Start. recording: the camera, the guidance step with a
progress bar and countdown, and the live check (red with the instruction when a check fails).
working: what happens now, the fine-tune's progress and Cancel. done / rejected / failed: the
outcome (a rejection's reasons as a list) with Record again and Close.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.models.personalize import PersonalizeModel
from app.models.preview import PreviewModel
from app.qt_image import to_qimage
from app.widgets.preview import ImagePane
from engine.api import DEFAULT_BUDGET_S

POLL_MS = 100  # how often the recording's status is read while recording
BAR_STEPS = 1000
OK_STYLE = "color: #7ee2a8; background: #173326; border-radius: 6px; padding: 6px 10px;"
BAD_STYLE = "color: #ffd2d2; background: #6b1f24; border-radius: 6px; padding: 6px 10px;"
NOTE_STYLE = "color: #f5e3a8; background: #4a3d12; border-radius: 6px; padding: 6px 10px;"
PAGES = {"ready": 0, "recording": 1, "working": 2, "done": 3, "rejected": 3, "failed": 3}


def intro_text(record_seconds: float) -> str:
    cpu, gpu = DEFAULT_BUDGET_S["cpu"], DEFAULT_BUDGET_S["cuda"]
    return (
        f"Visage records about {record_seconds:.0f} s of you while it guides you: look "
        "straight, turn left and right, look up and down, talk, smile and blink. Then it "
        f"learns your face within a time limit ({cpu:.0f} s on a CPU, {gpu:.0f} s on a GPU; "
        "you can cancel). The result is a profile: your most neutral frame as the avatar, "
        "animated by networks tuned to your face. Sit facing the camera in good light."
    )


def _label(text: str = "", point_scale: float = 1.0, bold: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if point_scale != 1.0 or bold:
        font = QFont(label.font())
        font.setPointSizeF(font.pointSizeF() * point_scale)
        font.setBold(bold)
        label.setFont(font)
    return label


def _bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, BAR_STEPS)
    bar.setTextVisible(False)
    return bar


class PersonalizeDialog(QDialog):
    """model: what to show. preview: the live frames (the camera shown while recording).
    poll: called every POLL_MS while the dialog is shown (the controller reads the recording)."""

    def __init__(
        self,
        model: PersonalizeModel,
        preview: PreviewModel,
        poll: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.preview = model, preview
        self.setWindowTitle("Personalize")
        self.resize(760, 640)
        self.camera = ImagePane("Camera")
        self.camera.setMinimumSize(320, 240)
        self.note = _label()
        self.note.setStyleSheet(NOTE_STYLE)
        self.pages = QStackedWidget()
        for page in (self._ready_page(), self._recording_page(), self._working_page()):
            self.pages.addWidget(page)
        self.pages.addWidget(self._result_page())
        self._layout = QVBoxLayout(self)
        self._layout.addWidget(self.note)
        self._layout.addWidget(self.camera, 1)
        self._layout.addWidget(self.pages)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(poll)
        model.changed.connect(lambda _: self._refresh())
        preview.frame_changed.connect(lambda _: self._show_frame())
        self._refresh()

    # -- pages ---------------------------------------------------------------------------------
    def _ready_page(self) -> QWidget:
        page = QWidget()
        self.intro = _label(intro_text(self.model.record_seconds))
        self.name = QLineEdit(self.model.name)
        self.name.setPlaceholderText("Profile name")
        self.start_button = QPushButton("Start recording")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(lambda: self.model.request_start(self.name.text()))
        row = QHBoxLayout()
        row.addWidget(QLabel("Name"))
        row.addWidget(self.name, 1)
        row.addWidget(self.start_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.intro)
        layout.addLayout(row)
        return page

    def _recording_page(self) -> QWidget:
        page = QWidget()
        self.guidance = _label(point_scale=1.5, bold=True)
        self.step = _label()
        self.step.setObjectName("hint")
        self.record_bar = _bar()
        self.check = _label()
        self.coverage = _label()
        self.coverage.setObjectName("hint")
        self.stop_button = QPushButton("Cancel")
        self.stop_button.clicked.connect(self.model.request_cancel)
        row = QHBoxLayout()
        row.addWidget(self.check, 1)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.guidance)
        layout.addWidget(self.record_bar)
        layout.addWidget(self.step)
        layout.addLayout(row)
        layout.addWidget(self.coverage)
        return page

    def _working_page(self) -> QWidget:
        page = QWidget()
        self.status = _label(point_scale=1.15, bold=True)
        self.work_bar = _bar()
        self.detail = _label()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.model.request_cancel)
        row = QHBoxLayout()
        row.addWidget(self.detail, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.status)
        layout.addWidget(self.work_bar)
        layout.addLayout(row)
        layout.addStretch(1)
        return page

    def _result_page(self) -> QWidget:
        page = QWidget()
        self.outcome = _label(point_scale=1.15, bold=True)
        self.reasons = QListWidget()
        self.reasons.setWordWrap(True)
        self.again_button = QPushButton("Record again")
        self.again_button.setObjectName("primary")
        self.again_button.clicked.connect(lambda: self.model.request_start(self.name.text()))
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.again_button)
        row.addWidget(self.close_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.outcome)
        layout.addWidget(self.reasons, 3)
        layout.addStretch(1)
        layout.addLayout(row)
        return page

    # -- the model -> the widgets --------------------------------------------------------------
    def _refresh(self) -> None:
        m = self.model
        self.pages.setCurrentIndex(PAGES[m.phase])
        live = m.phase in ("ready", "recording")
        self.camera.setVisible(live)
        self._layout.setStretchFactor(self.pages, 0 if live else 1)
        self.note.setVisible(m.phase == "recording" and bool(m.source_note))
        self.note.setText(m.source_note)
        if self.name.text() != m.name and m.phase != "ready":
            self.name.setText(m.name)
        step = m.step
        self.guidance.setText(step.text)
        self.step.setText(
            f"Step {step.index + 1} of {step.count} · {step.left_s:.0f} s left · "
            f"{m.frames} frames recorded"
        )
        self.record_bar.setValue(round(step.fraction * BAR_STEPS))
        self.check.setText(m.check.text)
        self.check.setStyleSheet(OK_STYLE if m.check.ok else BAD_STYLE)
        self.coverage.setText("Moved so far: " + m.coverage.text)
        self.status.setText(m.status)
        self.detail.setText(m.detail)
        self.work_bar.setValue(round(m.fraction * BAR_STEPS))
        self.cancel_button.setEnabled(not m.cancelling)
        self.outcome.setText(m.status)
        self.reasons.clear()
        self.reasons.addItems(list(m.reasons))
        self.reasons.setVisible(bool(m.reasons))
        self.again_button.setVisible(m.phase in ("rejected", "failed"))

    def _show_frame(self) -> None:
        live = self.preview.frame
        if live is not None and self.isVisible() and self.model.phase in ("ready", "recording"):
            self.camera.set_image(to_qimage(live.driving), None)

    # -- lifetime ------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        self._timer.start()
        self._show_frame()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt's name)
        self._timer.stop()
        super().hideEvent(event)

    def reject(self) -> None:
        """Escape or the window's close button (QDialog.closeEvent calls this): a recording or a
        run in progress is cancelled."""
        self.model.request_cancel()
        super().reject()

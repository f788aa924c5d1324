"""The message banner above the previews: errors, warnings and hints, with an action button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.models.messages import Message, MessagesModel
from app.widgets.style import LEVEL_COLOURS

ICONS = {"info": "ℹ", "warning": "⚠", "error": "✖"}


class Banner(QFrame):
    """A view of MessagesModel (hidden when there is no message). `action_requested` carries
    the message's action name when its button is pressed."""

    action_requested = Signal(str)

    def __init__(self, model: MessagesModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.model = model
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.action = QPushButton()
        self.action.clicked.connect(self._act)
        self.close_button = QPushButton("Dismiss")
        self.close_button.clicked.connect(lambda: model.dismiss())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.action)
        layout.addWidget(self.close_button)
        model.changed.connect(self._refresh)
        self._refresh(model.current)

    def _refresh(self, message: Message | None) -> None:
        self.setVisible(message is not None)
        if message is None:
            return
        self.text.setText(f"{ICONS[message.level]}  {message.text}")
        self.setStyleSheet(f"QFrame#banner {{ background: {LEVEL_COLOURS[message.level]}; }}")
        self.action.setVisible(message.action is not None)
        self.action.setText(message.action_label)

    def _act(self) -> None:
        message = self.model.current
        if message is not None and message.action is not None:
            self.action_requested.emit(message.action)
            self.model.dismiss(message.text)

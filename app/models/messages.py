"""The message banner: what went wrong (or needs doing) right now, with an optional action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.models.observable import Event

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Message:
    """text: one clear sentence or two. action: a command the banner offers as a button
    ("calibrate"), or None."""

    level: Level
    text: str
    action: str | None = None
    action_label: str = ""


class MessagesModel:
    """One message at a time (the newest); `changed` carries it, or None once dismissed."""

    def __init__(self) -> None:
        self.current: Message | None = None
        self.changed: Event[Message | None] = Event()

    def post(self, message: Message) -> None:
        self.current = message
        self.changed.emit(message)

    def dismiss(self, text: str | None = None) -> None:
        """Clear the banner (only if it still shows `text`, when given)."""
        if self.current is None or (text is not None and self.current.text != text):
            return
        self.current = None
        self.changed.emit(None)

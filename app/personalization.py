"""Personalization and profiles without Qt: the dialog's model and the profiles list <-> engine.

Recording: the engine keeps the frames on its capture thread; `poll` (the dialog's timer, on
the GUI thread) hands the model the recording's status until it is long enough, then the frames
go to a PersonalizeJob, which runs on its own thread; its events come back through `handle`
on the GUI thread. Profiles are listed, renamed and deleted by the engine's profile library
(answers through `handle`) and animated like portraits (ProfilesModel.request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app.models.messages import Message, MessagesModel
from app.models.personalize import PersonalizeModel, Phase
from app.models.profiles import ProfilesModel
from engine.api import (
    PersonalizeFailed,
    PersonalizeFinished,
    PersonalizeOptions,
    PersonalizeProgress,
    PersonalizeRejected,
    PersonalizeStarted,
    ProfileActionFailed,
    ProfilesChanged,
    Recording,
    RecordingStatus,
)

log = logging.getLogger(__name__)


class Job(Protocol):
    def cancel(self) -> None: ...


class PersonalizeCommands(Protocol):
    """What personalization asks of the engine (the bridge forwards these)."""

    def start_recording(self) -> None: ...

    def recording_status(self) -> RecordingStatus | None: ...

    def stop_recording(self) -> Recording: ...

    def personalize(self, recording: Recording, name: str, options: PersonalizeOptions) -> Job: ...

    def load_profile(self, folder: str | Path) -> None: ...

    def refresh_profiles(self) -> None: ...

    def rename_profile(self, folder: str, name: str) -> None: ...

    def delete_profile(self, folder: str) -> None: ...


class Personalization:
    """source_note: what is recorded when it is not a webcam ("" for a webcam).
    options: the fine-tune's budget and step limit (the defaults: the device's budget)."""

    def __init__(
        self,
        engine: PersonalizeCommands,
        model: PersonalizeModel,
        profiles: ProfilesModel,
        messages: MessagesModel,
        source_note: Callable[[], str],
        options: PersonalizeOptions | None = None,
    ) -> None:
        self.engine, self.model, self.profiles, self.messages = engine, model, profiles, messages
        self.options = options or PersonalizeOptions()
        self._source_note = source_note
        self._job: Job | None = None
        model.start_requested.connect(self._start)
        model.cancel_requested.connect(self._cancel)
        profiles.requested_changed.connect(self._load_requested)

    @property
    def busy(self) -> bool:
        """A job is running (its result has not come back yet)."""
        return self._job is not None

    # -- recording -----------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        self.engine.start_recording()
        note = self._source_note()
        self.model.recording_started(note)
        log.info("personalization: recording %r%s", name, f" ({note})" if note else "")

    def poll(self) -> None:
        """While recording: show its progress; stop it and start learning once long enough."""
        if self.model.phase != "recording":
            return
        status = self.engine.recording_status()
        if status is not None and self.model.recorded(status):
            self._learn(self.engine.stop_recording())

    def _learn(self, recording: Recording) -> None:
        self.model.working()
        self._job = self.engine.personalize(recording, self.model.name, self.options)

    def _cancel(self, phase: Phase) -> None:
        if phase == "recording":
            self.engine.stop_recording()  # the frames are dropped
        elif self._job is not None:
            self._job.cancel()

    def close(self) -> None:
        """The window closes: stop a recording, cancel a job."""
        if self.model.phase == "recording":
            self.engine.stop_recording()
        if self._job is not None:
            self._job.cancel()

    # -- profiles ------------------------------------------------------------------------------
    def _load_requested(self, folder: str | None) -> None:
        if folder is not None:
            self.engine.load_profile(folder)

    def rename(self, folder: str, name: str) -> None:
        if not name.strip():
            self.messages.post(Message("error", "A profile name cannot be empty."))
            return
        self.engine.rename_profile(folder, name.strip())

    def delete(self, folder: str) -> None:
        self.engine.delete_profile(folder)

    # -- from the engine (GUI thread) ----------------------------------------------------------
    def handle(self, event: object) -> bool:
        """Take a personalization or profile event; False when it is none of those."""
        m = self.model
        if isinstance(event, PersonalizeStarted):
            m.training_started(event.device, event.budget_s)
        elif isinstance(event, PersonalizeProgress):
            m.progress(event.progress)
        elif isinstance(event, PersonalizeFinished):
            self._job = None
            m.finished(event.profile)
            self.engine.refresh_profiles()
            self.profiles.request(str(event.profile.folder))
        elif isinstance(event, PersonalizeRejected):
            self._job = None
            m.rejected(event.reasons)
        elif isinstance(event, PersonalizeFailed):
            self._job = None
            m.failed(event.message, event.cancelled)
        elif isinstance(event, ProfilesChanged):
            self.profiles.set_entries(event.profiles)
        elif isinstance(event, ProfileActionFailed):
            self.messages.post(
                Message("error", f"Could not {event.action} the profile: {event.message}")
            )
        else:
            return False
        return True

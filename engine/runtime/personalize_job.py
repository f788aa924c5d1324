"""Personalization as a background job: a Recording -> a new profile, on its own thread.

The job runs engine.personalize.personalize.personalize (checks, source frame, fine-tune within
a time budget, atomic save) and reports through one callback, called from its thread:
PersonalizeStarted, then PersonalizeProgress per fine-tune step, then exactly one of
PersonalizeFinished, PersonalizeRejected (the recording's reasons) or PersonalizeFailed
(cancelled, or the cause). Each run writes a new profile folder, never an existing one, and a
rejected, cancelled or failed run writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import VisageError
from engine.personalize.command import DEFAULT_BUDGET_S
from engine.runtime.recorder import Recording

if TYPE_CHECKING:  # torch: imported on the job's thread, never on the caller's
    from engine.personalize.profile import ProfileInfo
    from engine.training.finetune import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonalizeOptions:
    """budget_s: fine-tune time limit (None: DEFAULT_BUDGET_S for the device: 30 s on CUDA,
    60 s on a CPU). max_steps: stop after this many steps (None: the budget decides).
    device: "cuda" or "cpu" (None: CUDA when available)."""

    budget_s: float | None = None
    max_steps: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class PersonalizeStarted:
    """The job checks the recording, then fine-tunes on `device` for at most `budget_s`."""

    device: str
    budget_s: float
    frames: int
    fps: float


@dataclass(frozen=True)
class PersonalizeProgress:
    progress: Progress


@dataclass(frozen=True)
class PersonalizeFinished:
    profile: ProfileInfo


@dataclass(frozen=True)
class PersonalizeRejected:
    """The recording cannot be learned from; each reason says what to do."""

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PersonalizeFailed:
    """Nothing was written. cancelled: the user cancelled; else `message` gives the cause."""

    message: str
    cancelled: bool = False


PersonalizeEvent = (
    PersonalizeStarted
    | PersonalizeProgress
    | PersonalizeFinished
    | PersonalizeRejected
    | PersonalizeFailed
)


def free_folder(root: Path, stem: str) -> Path:
    """root/stem, or root/stem-2, -3... : the first that does not exist yet."""
    folder, n = root / stem, 1
    while folder.exists() or any(root.glob(f".{folder.name}.*")):
        n += 1
        folder = root / f"{stem}-{n}"
    return folder


class PersonalizeJob:
    """One run. `start` returns at once; `cancel` asks the fine-tune to stop (it stops between
    steps; the recording checks before it run to the end first)."""

    def __init__(
        self,
        recording: Recording,
        name: str,
        root: Path,
        emit: Callable[[PersonalizeEvent], None],
        options: PersonalizeOptions | None = None,
    ) -> None:
        self.recording, self.name, self.root = recording, name.strip() or "Me", root
        self.options = options or PersonalizeOptions()
        self._emit_to = emit
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visage-personalize", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self) -> None:
        try:
            self._personalize()
        except VisageError as err:  # the worker's boundary: the engine's own message
            log.warning("personalization failed: %s", err)
            self._emit(PersonalizeFailed(str(err)))
        except Exception as err:  # the worker's boundary: report the cause, keep the app
            log.exception("personalization failed")
            self._emit(PersonalizeFailed(f"{type(err).__name__}: {err}"))

    def _personalize(self) -> None:
        from engine.device import probe_device
        from engine.personalize.personalize import (
            PersonalizeCancelledError,
            RecordingRejectedError,
            personalize,
        )
        from engine.personalize.profile import slug

        rec, opts = self.recording, self.options
        device = opts.device or probe_device().device
        budget = opts.budget_s if opts.budget_s is not None else DEFAULT_BUDGET_S[device]
        self._emit(PersonalizeStarted(device, budget, len(rec.images), rec.fps))
        folder = free_folder(self.root, slug(self.name))
        try:
            info = personalize(
                rec.images,
                rec.fps,
                folder,
                self.name,
                budget_s=budget,
                device=device,
                max_steps=opts.max_steps,
                progress=lambda p: self._emit(PersonalizeProgress(p)),
                cancel=self._cancel,
            )
        except RecordingRejectedError as err:
            self._emit(PersonalizeRejected(err.reasons))
            return
        except PersonalizeCancelledError:
            self._emit(PersonalizeFailed("Cancelled: no profile was written.", cancelled=True))
            return
        self._emit(PersonalizeFinished(info))

    def _emit(self, event: PersonalizeEvent) -> None:
        try:
            self._emit_to(event)
        except Exception:  # the owner's callback must not take the job down
            log.exception("event handler failed on %s", type(event).__name__)

"""The personalization dialog's state: record about 30 s with guidance and live checks, then
learn the face with progress and Cancel, then the new profile, the recording's problems, or the
cause of a failure.

    ready ──start──> recording ──long enough──> working ──> done
      ^                  │ cancel                  │ ├──> rejected (reasons) ──record again──┐
      └──────────────────┘                         │ └──> failed (cancelled / cause) ───────┤
                                                   └ cancel: asked, answered by "failed"    │
    recording <──────────────────────────────────────────────────────────────────────────────┘

The personalization controller moves it along; the dialog shows it and asks through
`start_requested` / `cancel_requested`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from app.models.observable import Event
from engine.api import GUIDANCE, RECORD_SECONDS, Coverage, FrameCheck, RecordingStatus, coverage

if TYPE_CHECKING:
    from engine.api import ProfileInfo, Progress

Phase = Literal["ready", "recording", "working", "done", "rejected", "failed"]
DEFAULT_NAME = "Me"
SAMPLE_NOTE = (
    "Demo: there is no webcam, so the sample clip is recorded instead of you. It does not turn "
    "its head or blink enough, so expect the checks to turn it down."
)
FILE_NOTE = "No webcam is in use: the video playing as the camera is recorded instead of you."
WAITING_TEXT = "Waiting for the camera…"
GOOD_TEXT = "✓ One face, close enough, well lit"
CHECKING_TEXT = "Checking the recording and choosing your most neutral frame…"


@dataclass(frozen=True)
class GuidanceStep:
    """index: 0-based step of `count`. text: what to do now. left_s: seconds left in the whole
    recording. fraction: of the recording done, in [0, 1]."""

    index: int
    count: int
    text: str
    left_s: float
    fraction: float


def guidance_at(
    seconds: float,
    total_s: float = RECORD_SECONDS,
    steps: tuple[tuple[str, float], ...] = GUIDANCE,
) -> GuidanceStep:
    """The guidance step `seconds` into a recording of `total_s` (the steps' own lengths are
    scaled to fit it)."""
    scale = total_s / sum(s for _, s in steps)
    end = 0.0
    index = len(steps) - 1
    for i, (_, length) in enumerate(steps):
        end += length * scale
        if seconds < end:
            index = i
            break
    left = max(0.0, total_s - seconds)
    fraction = min(1.0, max(0.0, seconds / total_s)) if total_s > 0 else 1.0
    return GuidanceStep(index, len(steps), steps[index][0], left, fraction)


@dataclass(frozen=True)
class LiveCheck:
    """ok: nothing to fix (the status line is green). text: what the line says."""

    ok: bool
    text: str


def live_check(check: FrameCheck | None) -> LiveCheck:
    """The status line for the newest frame's check (None: none yet, so not ok either)."""
    if check is None:
        return LiveCheck(False, WAITING_TEXT)
    problems = check.problems
    if problems:
        return LiveCheck(False, "✖ " + " ".join(problems))
    return LiveCheck(True, GOOD_TEXT)


def progress_text(progress: Progress) -> str:
    """One line about the fine-tune: step, loss, time done and an estimate of what is left."""
    left = math.ceil(progress.eta_s)
    return (
        f"Step {progress.step} · loss {progress.loss:.4f} · {progress.elapsed_s:.0f} s done, "
        f"about {left} s left"
    )


class PersonalizeModel:
    """record_seconds: how long a recording lasts (the guidance steps are scaled to it).
    `changed` fires after every change of state or text."""

    def __init__(self, record_seconds: float = RECORD_SECONDS) -> None:
        self.record_seconds = record_seconds
        self.phase: Phase = "ready"
        self.name = DEFAULT_NAME
        self.source_note = ""  # set when a video, not a webcam, is recorded (a demo)
        self.step = guidance_at(0.0, record_seconds)
        self.check = live_check(None)
        self.frames = 0
        self._checks: list[FrameCheck] = []  # recording: the live checks seen so far
        self.coverage: Coverage = coverage([])  # recording: the movement covered so far
        self.status = ""  # working: what happens now; done/failed: the outcome
        self.detail = ""  # working: the fine-tune's progress line
        self.fraction = 0.0  # working: of the fine-tune
        self.cancelling = False
        self.reasons: tuple[str, ...] = ()
        self.profile: ProfileInfo | None = None
        self.changed: Event[PersonalizeModel] = Event()
        self.start_requested: Event[str] = Event()
        self.cancel_requested: Event[Phase] = Event()

    # -- what the user asks (the dialog) ---------------------------------------------------------
    def request_start(self, name: str | None = None) -> None:
        """Start recording (from ready, or again after a result)."""
        if self.phase in ("recording", "working"):
            return
        self.name = (name if name is not None else self.name).strip() or DEFAULT_NAME
        self.start_requested.emit(self.name)

    def request_cancel(self) -> None:
        """Stop a recording (back to ready) or cancel the learning (answered by `failed`)."""
        if self.phase == "recording":
            self.cancel_requested.emit("recording")
            self.reset()
        elif self.phase == "working" and not self.cancelling:
            self.cancelling = True
            self.status = "Cancelling…"
            self.cancel_requested.emit("working")
            self.changed.emit(self)

    def reset(self) -> None:
        """Back to ready (a result shown earlier is forgotten; a run in progress stays)."""
        if self.phase == "working":
            return
        self.phase = "ready"
        self.step = guidance_at(0.0, self.record_seconds)
        self.check, self.frames = live_check(None), 0
        self.status, self.detail, self.fraction, self.reasons = "", "", 0.0, ()
        self.changed.emit(self)

    # -- what happens (the controller) ---------------------------------------------------------
    def recording_started(self, source_note: str = "") -> None:
        """Recording; source_note: what is recorded when it is not a webcam (else "")."""
        self.phase, self.source_note = "recording", source_note
        self.step = guidance_at(0.0, self.record_seconds)
        self.check, self.frames = live_check(None), 0
        self._checks, self.coverage = [], coverage([])
        self.status, self.detail, self.fraction, self.reasons = "", "", 0.0, ()
        self.profile, self.cancelling = None, False
        self.changed.emit(self)

    def recorded(self, status: RecordingStatus) -> bool:
        """The recording's progress; True once it is long enough (then stop it)."""
        if self.phase != "recording":
            return False
        self.step = guidance_at(status.seconds, self.record_seconds)
        self.check = live_check(status.check)
        if status.check is not None and (not self._checks or status.check is not self._checks[-1]):
            self._checks.append(status.check)  # a new frame's check
            self.coverage = coverage(self._checks)
        self.frames = status.frames
        self.changed.emit(self)
        return status.seconds >= self.record_seconds or status.full

    def working(self) -> None:
        """The recording is done; the job checks it and learns from it."""
        self.phase, self.status, self.detail, self.fraction = "working", CHECKING_TEXT, "", 0.0
        self.changed.emit(self)

    def training_started(self, device: str, budget_s: float) -> None:
        if self.phase == "working" and not self.cancelling:
            where = "the GPU" if device == "cuda" else "the CPU"
            self.status = (
                f"{CHECKING_TEXT[:-1]}, then learning your face on {where} "
                f"(at most {budget_s:.0f} s)…"
            )
            self.changed.emit(self)

    def progress(self, progress: Progress) -> None:
        if self.phase != "working":
            return
        if not self.cancelling:
            self.status = "Learning your face…"
        self.detail = progress_text(progress)
        self.fraction = progress.fraction
        self.changed.emit(self)

    def finished(self, profile: ProfileInfo) -> None:
        self.phase, self.profile, self.cancelling = "done", profile, False
        self.fraction = 1.0
        self.status = (
            f"Profile “{profile.name}” is ready ({profile.steps} steps in "
            f"{profile.seconds:.0f} s) and now animates the avatar."
        )
        self.changed.emit(self)

    def rejected(self, reasons: tuple[str, ...]) -> None:
        self.phase, self.reasons, self.cancelling = "rejected", reasons, False
        self.status = "The recording cannot be used:"
        self.changed.emit(self)

    def failed(self, message: str, cancelled: bool) -> None:
        self.phase, self.cancelling = "failed", False
        text = message if cancelled else f"Personalization failed: {message}"
        self.status = text.rstrip(".") + ". Your earlier profiles are untouched."
        self.changed.emit(self)

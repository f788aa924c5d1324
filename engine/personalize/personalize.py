"""Personalization: a ~30 s recording of the user -> a profile whose networks know their face.

recording -> per-frame checks (one face, size, light, pose) -> whole-recording checks (length,
pose/mouth/eye coverage) -> the most neutral frame becomes the source -> fine-tune from the
meta-learned weights on (source -> every other usable frame) pairs within a time budget ->
profile saved atomically. A rejected, cancelled or failed run writes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import VisageError
from engine.landmarks.mediapipe_tracker import FaceTracker, detect_faces
from engine.models.identity import load_identity_encoder
from engine.personalize.capture import FrameCheck, RecordingReport, assess_frame, check_recording
from engine.personalize.profile import ProfileInfo, save_profile
from engine.personalize.source import pick_source
from engine.runtime.neural import tier_folder
from engine.training.clips import clip_from_frames, with_drive
from engine.training.finetune import FineTuneConfig, Progress, fine_tune, load_generator
from engine.training.identities import clip_identities
from engine.training.pairs import PairSampler
from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

COUNT_EVERY = 10  # frames between full face counts (the tracker follows one face only)


class RecordingRejectedError(VisageError):
    """The recording cannot be learned from; `reasons` say what to do."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("The recording cannot be used: " + " ".join(self.reasons))


class PersonalizeCancelledError(VisageError):
    """Cancelled by the user; nothing was written."""


@dataclass(frozen=True)
class Analysis:
    """landmarks: per frame (None: no face); checks: per frame; report: the whole recording."""

    landmarks: tuple[Landmarks | None, ...]
    checks: tuple[FrameCheck, ...]
    report: RecordingReport


def analyse_recording(images: Sequence[ImageArray], fps: float) -> Analysis:
    """Track every frame and check it; faces are counted every COUNT_EVERY frames (a second
    face in between is caught by the next count)."""
    tracked: list[Landmarks | None] = []
    checks: list[FrameCheck] = []
    count = 1
    with FaceTracker() as tracker:
        for i, image in enumerate(images):
            lm = tracker.track(image)
            if i % COUNT_EVERY == 0:
                count = len(detect_faces(image, max_faces=3))
            faces = [lm] if lm is not None else []
            check = assess_frame(image, faces)
            if lm is not None and count > 1:
                check = dataclasses.replace(check, faces=count)
            tracked.append(lm)
            checks.append(check)
    return Analysis(tuple(tracked), tuple(checks), check_recording(checks, fps))


def default_init(tier: str = "cpu") -> Path:
    """The meta-learned initialization shipped for a tier (the base weights when none is)."""
    meta = tier_folder(tier) / "meta"
    return meta if (meta / "warp" / "config.json").is_file() else tier_folder(tier)


def personalize(
    images: Sequence[ImageArray],
    fps: float,
    out: Path,
    name: str,
    budget_s: float = 30.0,
    init: Path | None = None,
    tier: str = "cpu",
    device: str | None = None,
    max_steps: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ProfileInfo:
    """Check the recording, pick the source frame, fine-tune and save the profile to `out`.

    Raises RecordingRejectedError (with reasons), PersonalizeCancelledError, or the fine-tune's
    error; in every such case nothing is written and an existing profile at `out` is untouched.
    """
    analysis = analyse_recording(images, fps)
    if not analysis.report.ok:
        raise RecordingRejectedError(analysis.report.reasons)
    usable = analysis.report.usable
    src = pick_source(images, analysis.landmarks, analysis.checks, usable)
    keep = set(usable)
    tracked = [lm if i in keep else None for i, lm in enumerate(analysis.landmarks)]
    # The app's own targets for the source frame: the fine-tune learns what the avatar will do.
    clip = with_drive(clip_from_frames(name, name, list(images), tracked, src), [src])
    idents = clip_identities([clip], load_identity_encoder())
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = init or default_init(tier)
    generator = load_generator(start, dev)
    log.info(
        "personalizing %r: %d usable of %d frames, source frame %d, from %s, budget %.0f s",
        name,
        len(usable),
        len(images),
        src,
        start,
        budget_s,
    )
    result = fine_tune(
        generator,
        PairSampler([clip], idents, seed=0, source=src),
        FineTuneConfig(),
        budget_s,
        max_steps=max_steps,
        device=dev,
        progress=progress,
        cancel=cancel,
    )
    if result.cancelled:
        raise PersonalizeCancelledError("personalization cancelled; no profile was written")
    landmarks = analysis.landmarks[src]
    assert landmarks is not None
    return save_profile(
        out,
        generator,
        images[src],
        landmarks,
        name=name,
        tier=tier,
        steps=result.steps,
        seconds=result.seconds,
        extra={
            "init": str(start),
            "source_frame": src,
            "frames": len(images),
            "usable_frames": len(usable),
            "loss_first": result.first_loss,
            "loss_last": result.last_loss,
        },
    )

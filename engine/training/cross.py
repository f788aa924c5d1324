"""Cross-identity sources: portraits (photos, paintings, renders) driven by training clips.

Self-reenactment pairs have the truth to compare against, but only for the training people,
and the networks learn to keep *their* identities. The app animates other faces, driven by
someone else. A cross source is a portrait crop with the app's targets recorded while a
training clip drives it (engine.training.drive.record_run), cached as a one-frame ClipData
whose Drive has one source (frame 0) and the driver's N frames as targets. No truth exists for
these, so they carry only the identity loss: the output must keep the portrait's descriptor.

Portraits are split by name (`portrait_split`): every HOLD_OUT_EVERY-th one (sorted) is the
test set, for renders and for the cross-identity evaluation; every VALIDATE_EVERY-th of the
rest is the validation set, for choosing between trained weights. Neither is ever trained on;
nor is any portrait that looks like a held-out person (identity cosine at least LOOKALIKE to
one of their clips).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from engine.capture.image_file import IMAGE_SUFFIXES
from engine.capture.video_source import VideoFileSource
from engine.errors import VisageError
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.models.embedding import identity_embedding
from engine.models.identity import IdentityEncoder
from engine.personalize.source import most_neutral
from engine.portrait import prepare_portrait
from engine.training.clips import ClipData, clip_from_frames, discover_clips, save_clip
from engine.training.drive import drive_of, record_run
from engine.types import Landmarks

log = logging.getLogger(__name__)

HOLD_OUT_EVERY = 4
VALIDATE_EVERY = 5
LOOKALIKE = 0.92  # dlib-descriptor cosine: same person >= 0.93, different people mostly < 0.94
DRIVER_FRAMES = 90  # driver frames recorded per portrait
IDENTITY = "portrait"  # ClipData.identity of every cross source


@dataclasses.dataclass(frozen=True)
class PortraitSplit:
    """Portrait images by role, each sorted by path. train: cross-identity training sources;
    validation: for choosing between trained weights (`visage eval --cross N --split
    validation`); test: the cross-identity evaluation and renders. Disjoint."""

    train: tuple[Path, ...]
    validation: tuple[Path, ...]
    test: tuple[Path, ...]

    def names(self, role: Literal["train", "validation", "test"]) -> frozenset[str]:
        """The ClipData names that cross sources of the portraits in `role` get."""
        return frozenset(cross_name(p) for p in getattr(self, role))


def portrait_split(folder: Path) -> PortraitSplit:
    """The portrait images under `folder` (recursively) split by sorted name."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    test = paths[HOLD_OUT_EVERY - 1 :: HOLD_OUT_EVERY]
    rest = [p for p in paths if p not in test]
    validation = rest[::VALIDATE_EVERY]
    train = [p for p in rest if p not in validation]
    return PortraitSplit(tuple(train), tuple(validation), tuple(test))


def cross_name(path: Path) -> str:
    """The ClipData name of the portrait at `path` as a cross source (never a training clip's
    name: identities are keyed by it)."""
    return f"{IDENTITY}:{path.stem}"


def cross_clip(path: Path, driver: ClipData, start: int = 0) -> ClipData | None:
    """The portrait at `path` as a one-frame clip, with the targets of `driver`'s frames
    [start, start + DRIVER_FRAMES) driving it (its most neutral frame there is the neutral).
    None (logged) when the portrait or the driver window has no usable face."""
    try:
        portrait = prepare_portrait(path)
    except VisageError as err:
        log.warning("portrait %s left out: %s", path.name, err)
        return None
    clip = clip_from_frames(cross_name(path), IDENTITY, [portrait.image], [portrait.landmarks], 0)
    window = slice(start, start + DRIVER_FRAMES)
    frames, valid, points = driver.crops[window], driver.valid[window], driver.points[window]
    if not valid.any():
        log.warning("portrait %s left out: no tracked driver frame", path.name)
        return None
    size = frames.shape[1]
    tracked = [
        Landmarks(p, (size, size)) if ok else None for p, ok in zip(points, valid, strict=True)
    ]
    neutral = frames[most_neutral(list(frames), tracked)]
    run = record_run(clip.crops[0], neutral, frames, name=f"portrait {path.name}")
    if run is None:
        return None
    return dataclasses.replace(clip, drive=drive_of([0], [run], len(frames)))


def is_cross(clip: ClipData) -> bool:
    return clip.identity == IDENTITY


def lookalikes(
    portraits: dict[str, npt.NDArray[np.float32]],
    people: Sequence[npt.NDArray[np.float32]],
    threshold: float = LOOKALIKE,
) -> set[str]:
    """Names of portraits whose (D,) unit descriptor is within `threshold` cosine of any of
    `people`'s descriptors."""
    if not people:
        return set()
    ref = np.stack(people)
    return {name for name, e in portraits.items() if float((ref @ e).max()) >= threshold}


def cache_cross(
    portraits: Sequence[Path],
    drivers: Sequence[ClipData],
    cache: Path,
    seed: int = 0,
) -> list[Path]:
    """Build (or reuse) cross sources for `portraits`, each driven by a window of a training
    clip drawn with `seed`. Returns the cached files."""
    rng = np.random.default_rng(seed)
    usable = [d for d in drivers if d.valid.sum() >= 2]
    if not usable:
        raise VisageError("cross sources need training clips with tracked frames to drive them")
    out = []
    for path in portraits:
        driver = usable[int(rng.integers(len(usable)))]
        start = int(rng.integers(max(1, driver.frames - DRIVER_FRAMES + 1)))
        target = cache / f"{IDENTITY}__{path.stem}.npz"
        if not target.exists():
            clip = cross_clip(path, driver, start)
            if clip is None:
                continue
            save_clip(clip, target)
            log.info("cached cross source %s (driven by %s)", path.name, driver.name)
        out.append(target)
    return out


def people_descriptors(
    videos: Path, people: frozenset[str], encoder: IdentityEncoder, frames: int = 30
) -> list[npt.NDArray[np.float32]]:
    """(D,) descriptor of the first tracked frame (of the first `frames`) of each clip under
    videos/<person>/ for the given people."""
    out = []
    for clip, person in discover_clips(videos):
        if person not in people:
            continue
        with FaceTracker() as tracker, VideoFileSource(clip, max_frames=frames) as source:
            for frame in source:
                found = tracker.track(frame.image)
                if found is not None:
                    out.append(identity_embedding(encoder, [frame.image], [found.points]))
                    break
    return out

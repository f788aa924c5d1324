"""Training clips: every frame's landmarks tracked once and cached with head crops.

A clip's crop box is fixed from its first tracked frame (the portrait's box rule), so any two
frames of the clip form a (source, driving) pair in the same coordinates. Per clip the cache
holds, as one .npz:
  crops     (N, S, S, 3) uint8   the box resampled to S (256)
  crops_hr  (N, 2S, 2S, 3) uint8 the box at 2S, only when the video has that much detail
  points    (N, 478, 3) float32  landmarks in crop coordinates (pixel centres of the S crop;
                                 z scaled like x)
  valid     (N,) bool            a face was tracked
  person    (S, S) float32       person mask of the first frame over the crop
  drive_*                        the app's own target landmarks for a few source frames
                                 (engine.training.drive.Drive), the pairs' sources
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.capture.video_source import VideoFileSource
from engine.errors import VisageError
from engine.geometry.crop import crop, to_crop
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import load_topology
from engine.portrait import crop_box, grid_mask
from engine.training.drive import Drive, record_drive, spread_sources
from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

CROP = 256
HR_MIN_BOX = 400  # a box at least this many source pixels wide has real 2S detail


@dataclass(frozen=True)
class ClipData:
    """One cached clip (see the module docstring for shapes)."""

    name: str
    identity: str
    crops: npt.NDArray[np.uint8]
    crops_hr: npt.NDArray[np.uint8] | None
    points: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    person: npt.NDArray[np.float32]
    drive: Drive | None = None

    @property
    def frames(self) -> int:
        return len(self.crops)

    @property
    def valid_indices(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.valid)


def build_clip(
    path: Path, identity: str, max_frames: int, size: int = CROP, hr_min_box: int = HR_MIN_BOX
) -> ClipData:
    """Track a clip's first `max_frames` frames and cut its head crops (2S crops too when the
    head box spans at least `hr_min_box` source pixels)."""
    with VideoFileSource(path, max_frames=max_frames) as source:
        frames = [f.image for f in source]
    with FaceTracker() as tracker:
        tracked = [tracker.track(img) for img in frames]
    first = next((i for i, t in enumerate(tracked) if t is not None), None)
    if first is None:
        raise VisageError(f"{path.name}: no face tracked")
    return clip_from_frames(path.stem, identity, frames, tracked, first, size, hr_min_box)


def clip_from_frames(
    name: str,
    identity: str,
    frames: list[ImageArray],
    tracked: list[Landmarks | None],
    box_frame: int,
    size: int = CROP,
    hr_min_box: int = HR_MIN_BOX,
) -> ClipData:
    """A clip from frames and their landmarks; the crop box (and person mask) come from frame
    `box_frame`, which must have landmarks."""
    anchor = tracked[box_frame]
    if anchor is None:
        raise ValueError(f"frame {box_frame} has no landmarks to place the crop box")
    box = crop_box(anchor.points.astype(np.float64), load_topology())
    hr = box.size >= hr_min_box
    crops = np.stack([crop(img, box, size) for img in frames])
    crops_hr = np.stack([crop(img, box, 2 * size) for img in frames]) if hr else None
    points = np.zeros((len(frames), 478, 3), np.float32)
    valid = np.zeros(len(frames), bool)
    for i, t in enumerate(tracked):
        if t is not None:
            points[i] = to_crop(t.points.astype(np.float64), box, size)
            valid[i] = True
    person = grid_mask(frames[box_frame], box, size)
    return ClipData(name, identity, crops, crops_hr, points, valid, person)


def save_clip(clip: ClipData, path: Path) -> None:
    """Write atomically (a temp file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        arrays: dict[str, np.ndarray] = {
            "crops": clip.crops,
            "points": clip.points,
            "valid": clip.valid,
            "person": clip.person,
            "name": np.array(clip.name),
            "identity": np.array(clip.identity),
        }
        if clip.crops_hr is not None:
            arrays["crops_hr"] = clip.crops_hr
        if clip.drive is not None:
            for field in dataclasses.fields(Drive):
                arrays[f"drive_{field.name}"] = getattr(clip.drive, field.name)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def with_drive(clip: ClipData, sources: Sequence[int] | None = None) -> ClipData:
    """The clip with the app's targets recorded for `sources` (default: spread_sources)."""
    picks = spread_sources(clip.valid) if sources is None else list(sources)
    return dataclasses.replace(clip, drive=record_drive(clip.crops, picks))


def load_clip(path: Path) -> ClipData:
    with np.load(path) as d:
        drive = None
        if "drive_sources" in d.files:
            drive = Drive(**{f.name: d[f"drive_{f.name}"] for f in dataclasses.fields(Drive)})
        return ClipData(
            name=str(d["name"]),
            identity=str(d["identity"]),
            crops=d["crops"],
            crops_hr=d["crops_hr"] if "crops_hr" in d.files else None,
            points=d["points"],
            valid=d["valid"],
            person=d["person"],
            drive=drive,
        )


def _has_drive(path: Path) -> bool:
    with np.load(path) as d:
        return "drive_sources" in d.files


def discover_clips(videos: Path) -> list[tuple[Path, str]]:
    """(clip path, identity) for every video under videos/<identity>/, sorted."""
    exts = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
    out = []
    for folder in sorted(p for p in videos.iterdir() if p.is_dir()):
        for clip in sorted(folder.iterdir()):
            if clip.suffix.lower() in exts:
                out.append((clip, folder.name))
    return out


def cache_clips(
    videos: Path,
    cache: Path,
    max_frames: int = 150,
    exclude: frozenset[str] = frozenset(),
) -> list[Path]:
    """Build (or reuse) the cache of every clip whose identity is not excluded."""
    out = []
    for clip, identity in discover_clips(videos):
        if identity in exclude:
            continue
        target = cache / f"{identity}__{clip.stem}.npz"
        if not target.exists():
            try:
                data = with_drive(build_clip(clip, identity, max_frames))
            except VisageError as exc:
                log.warning("skipping %s: %s", clip.name, exc)
                continue
            save_clip(data, target)
            log.info(
                "cached %s (%d frames, hr=%s)", target.name, data.frames, data.crops_hr is not None
            )
        elif not _has_drive(target):  # cached before the app's targets were recorded
            try:
                save_clip(with_drive(load_clip(target)), target)
            except VisageError as exc:
                log.warning("skipping %s: %s", clip.name, exc)
                continue
            log.info("recorded the app's targets for %s", target.name)
        out.append(target)
    return out

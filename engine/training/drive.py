"""The app's own target landmarks for training pairs: a clip's frame as the portrait, the
clip's frames as the driver, through the engine's real Pipeline.

A network trained on targets that differ from what the app computes learns corrections the
app never needs (and applies them where they hurt). So the targets are recorded by running
the same code the app runs: the portrait's still-image landmarks (`prepare_portrait`), the
driver's tracked and smoothed landmarks (`Pipeline.track`), motion relative to the source
frame as the neutral face and retargeting onto the portrait (`Pipeline.drive`,
`Pipeline.target_landmarks`). Everything is in the clip's crop coordinates, since the frames
are the clip's crops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import NoFaceError
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Frame

log = logging.getLogger(__name__)

DRIVE_FPS = 25.0  # timestamps for the smoother (the cache keeps no frame rate)
DRIVE_SOURCES = 4  # source frames recorded per clip, spread over it


@dataclass(frozen=True)
class Drive:
    """Recorded targets of K source frames over a clip of N frames.

    sources: (K,) frame indices. portrait: (K, 478, 3) each source's portrait landmarks.
    targets: (K, N, 478, 3) the app's target landmarks when frame n drives source k.
    valid: (K, N) the driver's face was tracked in frame n.
    All coordinates are the clip's crop pixels (z as the engine keeps it; only its order is used).
    """

    sources: npt.NDArray[np.int64]
    portrait: npt.NDArray[np.float32]
    targets: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]

    def index(self, source: int) -> int | None:
        """Position of a source frame in `sources`, None when it was not recorded."""
        hits = np.flatnonzero(self.sources == source)
        return int(hits[0]) if len(hits) else None


def spread_sources(valid: npt.NDArray[np.bool_], count: int = DRIVE_SOURCES) -> list[int]:
    """`count` tracked frames spread evenly over a clip (its first tracked frame included)."""
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return []
    picks = np.linspace(0, len(idx) - 1, min(count, len(idx))).round().astype(int)
    return sorted({int(idx[i]) for i in picks})


@dataclass(frozen=True)
class Run:
    """One recorded run: portrait (478, 3) landmarks, targets (N, 478, 3), valid (N,)."""

    portrait: npt.NDArray[np.float32]
    targets: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]


def record_run(
    portrait_image: npt.NDArray[np.uint8],
    neutral: npt.NDArray[np.uint8],
    driver: npt.NDArray[np.uint8],
    controls: Controls | None = None,
    name: str = "portrait",
) -> Run | None:
    """Run the engine with `portrait_image` (S, S, 3) as the portrait, `neutral` (S, S, 3) as the
    driver's neutral face and the frames `driver` (N, S, S, 3) in order. None (logged) when no
    face is found in the portrait or in the neutral frame. Coordinates: the portrait's pixels.
    """
    controls = controls or Controls()
    n, size = len(driver), portrait_image.shape[0]
    try:
        portrait = prepare_portrait(portrait_image, output_size=(size, size), name=name)
    except NoFaceError as err:
        log.warning("%s left out: %s", name, err)
        return None
    pipeline = Pipeline(portrait)
    try:
        if pipeline.neutral_from(Frame(neutral, 0, 0.0)) is None:
            log.warning("%s left out: no face tracked in the neutral frame", name)
            return None
        targets = np.zeros((n, 478, 3), np.float32)
        valid = np.zeros(n, bool)
        for i in range(n):
            frame = Frame(driver[i], i, i / DRIVE_FPS)
            landmarks = pipeline.track(frame, controls.smoothing)
            motion = pipeline.drive(landmarks, frame.timestamp_s)
            valid[i] = landmarks is not None
            targets[i] = pipeline.target_landmarks(motion, controls)
    finally:
        pipeline.close()
    return Run(portrait.landmarks.points.astype(np.float32), targets, valid)


def record_drive(
    crops: npt.NDArray[np.uint8],
    sources: Sequence[int],
    controls: Controls | None = None,
) -> Drive:
    """Run the engine with each source crop as the portrait, driven by all crops in order.

    crops: (N, S, S, 3) uint8 frames of one clip. A source frame in which no face is found, as a
    portrait or as the driver's neutral, is left out (logged); `Drive.sources` lists the rest.
    """
    kept, runs = [], []
    for s in sources:
        run = record_run(crops[s], crops[s], crops, controls, name=f"source frame {s}")
        if run is not None:
            kept.append(s)
            runs.append(run)
    return drive_of(kept, runs, len(crops))


def drive_of(sources: Sequence[int], runs: Sequence[Run], frames: int) -> Drive:
    """The Drive of recorded runs (one per source), each over `frames` driver frames."""
    return Drive(
        sources=np.asarray(sources, np.int64),
        portrait=np.stack([r.portrait for r in runs])
        if runs
        else np.zeros((0, 478, 3), np.float32),
        targets=(
            np.stack([r.targets for r in runs])
            if runs
            else np.zeros((0, frames, 478, 3), np.float32)
        ),
        valid=np.stack([r.valid for r in runs]) if runs else np.zeros((0, frames), bool),
    )

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


def record_drive(
    crops: npt.NDArray[np.uint8],
    sources: Sequence[int],
    controls: Controls | None = None,
) -> Drive:
    """Run the engine with each source crop as the portrait, driven by all crops in order.

    crops: (N, S, S, 3) uint8 frames of one clip. A source frame in which no face is found, as a
    portrait or as the driver's neutral, is left out (logged); `Drive.sources` lists the rest.
    """
    controls = controls or Controls()
    n, size = len(crops), crops.shape[1]
    kept, portraits, targets, valids = [], [], [], []
    for s in sources:
        try:
            portrait = prepare_portrait(crops[s], output_size=(size, size), name=f"frame {s}")
        except NoFaceError as err:
            log.warning("source frame %d left out: %s", s, err)
            continue
        pipeline = Pipeline(portrait)
        try:
            if pipeline.neutral_from(Frame(crops[s], s, s / DRIVE_FPS)) is None:
                log.warning("source frame %d left out: no face tracked as the neutral", s)
                continue
            tgt = np.zeros((n, 478, 3), np.float32)
            ok = np.zeros(n, bool)
            for i in range(n):
                frame = Frame(crops[i], i, i / DRIVE_FPS)
                landmarks = pipeline.track(frame, controls.smoothing)
                motion = pipeline.drive(landmarks, frame.timestamp_s)
                ok[i] = landmarks is not None
                tgt[i] = pipeline.target_landmarks(motion, controls)
        finally:
            pipeline.close()
        kept.append(s)
        portraits.append(portrait.landmarks.points.astype(np.float32))
        targets.append(tgt)
        valids.append(ok)
    return Drive(
        sources=np.asarray(kept, np.int64),
        portrait=np.stack(portraits) if portraits else np.zeros((0, 478, 3), np.float32),
        targets=np.stack(targets) if targets else np.zeros((0, n, 478, 3), np.float32),
        valid=np.stack(valids) if valids else np.zeros((0, n), bool),
    )

"""Cross-identity evaluation: held-out portraits driven by held-out people's clips.

This is the app's own situation (someone else's face drives the portrait), but no frame shows
the truth, so only what must carry over is scored, for each method on the same frames:
  id_sim      cosine of the output's identity descriptor to the portrait's (every ID_EVERY-th
              frame): the portrait must stay who it is;
  mouth_corr  correlation over the clip of the driver's and the output's mouth opening;
  eye_corr    the same for eye opening.
The driver's most neutral frame (engine.personalize.source.most_neutral) is its neutral face
(the app's calibration); every frame drives the portrait.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.errors import VisageError
from engine.evaluation.metrics import correlation, difference_line
from engine.evaluation.reenactment import GEOMETRIC, ID_EVERY, field_mean
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import eye_opening, mouth_opening
from engine.models.embedding import identity_embedding
from engine.models.identity import IdentityEncoder, load_identity_encoder
from engine.personalize.source import most_neutral
from engine.portrait import prepare_portrait
from engine.runtime.neural import NeuralModels
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, ImageArray, Landmarks

log = logging.getLogger(__name__)

OUTPUT = (512, 512)


@dataclass(frozen=True)
class CrossScores:
    """Higher is better for each (see the module docstring)."""

    id_sim: float
    mouth_corr: float
    eye_corr: float


@dataclass(frozen=True)
class CrossResult:
    """scores: method name -> CrossScores, in the order the methods were given."""

    portrait: str
    driver: str
    frames: int
    scores: dict[str, CrossScores]


def cross_pairs(
    portraits: Sequence[Path], clips: Sequence[Path], count: int
) -> list[tuple[Path, Path]]:
    """The first `count` portraits, each driven by the next clip in turn."""
    if not portraits or not clips:
        return []
    return [(p, c) for p, c in zip(portraits[:count], itertools.cycle(clips), strict=False)]


def evaluate_cross(
    portrait_path: Path,
    clip: Path,
    methods: dict[str, NeuralModels | None],
    max_frames: int = 60,
    device: str = "cpu",
    backend: str = "auto",
) -> CrossResult:
    """Score each method (None = geometric path) when `clip` drives the portrait.

    Raises VisageError when the portrait has no face or the clip is unusable."""
    with VideoFileSource(clip, max_frames=max_frames) as source:
        frames = list(source)
    if len(frames) < 4:
        raise VisageError(f"{clip.name}: too short to evaluate ({len(frames)} frames)")
    portrait = prepare_portrait(portrait_path, output_size=OUTPUT)
    encoder = load_identity_encoder()
    ref_id = identity_embedding(encoder, [portrait.image], [portrait.landmarks.points])
    with FaceTracker() as tracker:
        driver = [tracker.track(f.image) for f in frames]
    if all(d is None for d in driver):
        raise VisageError(f"{clip.name}: no face tracked")
    neutral = frames[most_neutral([f.image for f in frames], driver)]
    scores: dict[str, CrossScores] = {}
    for method, models in methods.items():
        pipeline = Pipeline(portrait, neural=models, device=device, backend=backend)
        try:
            if pipeline.neutral_from(neutral) is None:
                raise VisageError(f"{clip.name}: no face tracked in its neutral frame")
            outputs = [pipeline.process(f, Controls()).image for f in frames]
        finally:
            pipeline.close()
        scores[method] = _score(outputs, driver, ref_id, encoder)
    return CrossResult(portrait_path.name, clip.name, len(frames), scores)


def _score(
    outputs: list[ImageArray],
    driver: list[Landmarks | None],
    ref_id: np.ndarray,
    encoder: IdentityEncoder,
) -> CrossScores:
    """outputs: the method's frames; driver: the driving frames' landmarks (None: no face)."""
    mouth_d, mouth_o, eye_d, eye_o, ids = [], [], [], [], []
    with FaceTracker() as tracker:
        for i, (out, d) in enumerate(zip(outputs, driver, strict=True)):
            found = tracker.track(out)
            if found is None or d is None:
                continue
            mouth_d.append(mouth_opening(d.points))
            mouth_o.append(mouth_opening(found.points))
            eye_d.append(eye_opening(d.points))
            eye_o.append(eye_opening(found.points))
            if i % ID_EVERY == 0:
                emb = identity_embedding(encoder, [out], [found.points])
                ids.append(float(np.dot(emb, ref_id)))
    nan = float("nan")
    return CrossScores(
        id_sim=float(np.mean(ids)) if ids else nan,
        mouth_corr=correlation(mouth_d, mouth_o) if len(mouth_o) >= 3 else nan,
        eye_corr=correlation(eye_d, eye_o) if len(eye_o) >= 3 else nan,
    )


def mean_cross(results: list[CrossResult], method: str) -> CrossScores:
    """Field-wise mean over results (NaNs ignored)."""
    return field_mean([r.scores[method] for r in results])


def format_cross_table(results: list[CrossResult]) -> str:
    """A markdown table of each method's means, and per-pair wins over the geometric path."""
    methods = list(results[0].scores)
    lines = [
        f"cross-identity: {len(results)} portraits, frames scored: "
        f"{sum(r.frames for r in results)}",
        "",
        "| method | identity sim to portrait ↑ | mouth corr with driver ↑ "
        "| eye corr with driver ↑ |",
        "|---|---|---|---|",
    ]
    for name in methods:
        s = mean_cross(results, name)
        lines.append(f"| {name} | {s.id_sim:.4f} | {s.mouth_corr:.3f} | {s.eye_corr:.3f} |")
    for name in methods:
        if name == GEOMETRIC or GEOMETRIC not in methods:
            continue
        wins = []
        for f in fields(CrossScores):
            n = sum(
                getattr(r.scores[name], f.name) > getattr(r.scores[GEOMETRIC], f.name)
                for r in results
            )
            wins.append(f"{f.name} {n}/{len(results)}")
        lines += ["", f"{name} better than {GEOMETRIC} on: " + ", ".join(wins)]
        pairs = [(r.scores[name], r.scores[GEOMETRIC]) for r in results]
        lines += ["", difference_line(name, GEOMETRIC, pairs, "portrait")]
    return "\n".join(lines)

"""Self-reenactment evaluation: frame 0 of a clip is the portrait, the rest drive it.

Each output frame is compared with the real frame it should reproduce. Methods are compared
side by side on the same frames: the static baseline (frame 0 throughout), the geometric
engine, and the neural tiers. Identity similarity is the cosine between identity descriptors
(engine.models.identity) of the output and of the portrait, every ID_EVERY-th frame.

The mouth and eye correlations and the landmark error come from MediaPipe tracking the outputs,
which answers slightly differently to images that look the same. With `control`, the geometric
path's outputs are scored a second time after a JPEG round trip at CONTROL_QUALITY (a change
nobody can see): how far that moves a score is how far it moves by chance.

The real frames' own identity similarity to the portrait (REAL) is reported beside the methods:
expressions and head turns move the descriptor, so an exact reproduction would score that, not 1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.config import EngineConfig
from engine.errors import VisageError
from engine.evaluation.metrics import (
    correlation,
    difference_line,
    landmark_error,
    psnr,
    ssim,
)
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import eye_opening, mouth_opening
from engine.models.embedding import identity_embedding
from engine.models.identity import IdentityEncoder, load_identity_encoder
from engine.portrait import prepare_portrait
from engine.runtime.neural import NeuralModels
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Frame, ImageArray, Landmarks

log = logging.getLogger(__name__)

STATIC = "static portrait"
GEOMETRIC = "geometric engine"
CONTROL_QUALITY = 95
CONTROL = f"geometric, JPEG q{CONTROL_QUALITY} (control)"
REAL = "real frames (reference)"
ID_EVERY = 10

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a frozen dataclass of float scores


@dataclass(frozen=True)
class Scores:
    """Means over scored frames (correlations over the clip). Higher is better except lmk_err."""

    psnr: float
    ssim: float
    lmk_err: float
    mouth_corr: float
    eye_corr: float
    id_sim: float


@dataclass(frozen=True)
class ClipResult:
    """scores: method name -> Scores, in the order the methods were given (static first).
    person: the clip's identity (its folder name)."""

    clip: str
    frames: int
    scores: dict[str, Scores]
    person: str = ""

    @property
    def engine(self) -> Scores:
        return self.scores[GEOMETRIC]

    @property
    def static(self) -> Scores:
        return self.scores[STATIC]


@dataclass
class _Track:
    """Per-frame measurements of one method on one clip."""

    psnr: list[float]
    ssim: list[float]
    err: list[float]
    mouth: list[float]
    eye: list[float]
    mouth_true: list[float]
    eye_true: list[float]
    ids: list[float]

    @staticmethod
    def new() -> _Track:
        return _Track([], [], [], [], [], [], [], [])

    def scores(self) -> Scores:
        return Scores(
            psnr=float(np.mean(self.psnr)),
            ssim=float(np.mean(self.ssim)),
            lmk_err=float(np.mean(self.err)) if self.err else float("nan"),
            mouth_corr=correlation(self.mouth_true, self.mouth)
            if len(self.mouth) >= 3
            else float("nan"),
            eye_corr=correlation(self.eye_true, self.eye) if len(self.eye) >= 3 else float("nan"),
            id_sim=float(np.mean(self.ids)) if self.ids else float("nan"),
        )


def _truth(frames: list[Frame]) -> list[np.ndarray | None]:
    with FaceTracker() as tracker:
        out = []
        for f in frames:
            lm = tracker.track(f.image)
            out.append(None if lm is None else lm.points)
        return out


def _score_outputs(
    outputs: list[ImageArray],
    frames: list[Frame],
    truth: list[np.ndarray | None],
    ref_id: np.ndarray,
    encoder: IdentityEncoder,
    fixed: np.ndarray | None = None,
) -> Scores:
    """fixed: the outputs' landmarks when known exactly (the static baseline), else tracked."""
    track = _Track.new()
    with FaceTracker() as tracker:
        for i, (out, frame, lt) in enumerate(zip(outputs, frames, truth, strict=True)):
            track.psnr.append(psnr(out, frame.image))
            track.ssim.append(ssim(out, frame.image))
            lo = fixed if fixed is not None else _points(tracker.track(out))
            if lt is None or lo is None:
                continue
            track.err.append(landmark_error(lo, lt))
            track.mouth_true.append(mouth_opening(lt))
            track.mouth.append(mouth_opening(lo))
            track.eye_true.append(eye_opening(lt))
            track.eye.append(eye_opening(lo))
            if i % ID_EVERY == 0:
                track.ids.append(_identity_sim(encoder, out, lo, ref_id))
    return track.scores()


def _real_identity(
    frames: list[Frame],
    truth: list[np.ndarray | None],
    ref_id: np.ndarray,
    encoder: IdentityEncoder,
) -> Scores:
    """The real frames scored as an output would be for identity (every ID_EVERY-th frame with
    a tracked face); its other scores are NaN (an exact reproduction's, by definition)."""
    ids = [
        _identity_sim(encoder, f.image, lt, ref_id)
        for i, (f, lt) in enumerate(zip(frames, truth, strict=True))
        if i % ID_EVERY == 0 and lt is not None
    ]
    nan = float("nan")
    return Scores(nan, nan, nan, nan, nan, _nanmean(ids))


def _identity_sim(
    encoder: IdentityEncoder, image: ImageArray, points: np.ndarray, ref_id: np.ndarray
) -> float:
    """Cosine similarity of `image`'s identity descriptor (its face at `points`) to `ref_id`."""
    return float(np.dot(identity_embedding(encoder, [image], [points]), ref_id))


def jpeg_round_trip(image: ImageArray, quality: int = CONTROL_QUALITY) -> ImageArray:
    """(H, W, 3) uint8 RGB, encoded as JPEG at `quality` and decoded again."""
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VisageError("JPEG encoding failed")
    decoded: ImageArray = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(decoded)


def _points(landmarks: Landmarks | None) -> np.ndarray | None:
    return None if landmarks is None else landmarks.points


def evaluate_clip(
    clip: Path,
    max_frames: int = 150,
    controls: Controls | None = None,
    config: EngineConfig | None = None,
    methods: dict[str, NeuralModels | None] | None = None,
    device: str = "cpu",
    backend: str = "auto",
    control: bool = False,
) -> ClipResult:
    """Score the static baseline and each method (None = geometric path) on one clip, and the
    JPEG control after the geometric path when `control` (see the module's docstring).

    Raises VisageError when the clip is unusable (too short, no face in frame 0).
    """
    with VideoFileSource(clip, max_frames=max_frames + 1) as source:
        frames = list(source)
    if len(frames) < 4:
        raise VisageError(f"{clip.name}: too short to evaluate ({len(frames)} frames)")
    methods = methods if methods is not None else {GEOMETRIC: None}
    scores = evaluate_frames(
        frames[0],
        frames[1:],
        methods,
        clip.name,
        controls,
        config,
        device,
        backend,
        control=control,
        real=True,
    )
    return ClipResult(
        clip=clip.name, frames=len(frames) - 1, scores=scores, person=clip.parent.name
    )


def evaluate_frames(
    source: Frame,
    driving: list[Frame],
    methods: dict[str, NeuralModels | None],
    name: str = "clip",
    controls: Controls | None = None,
    config: EngineConfig | None = None,
    device: str = "cpu",
    backend: str = "auto",
    static: bool = True,
    control: bool = False,
    real: bool = False,
) -> dict[str, Scores]:
    """Scores of each method (and of the static baseline unless static=False) when `source`
    (a frame of the same person, also their neutral face) is driven by `driving`; with
    `control`, the geometric path's outputs after a JPEG round trip too (as CONTROL); with
    `real`, the real frames' identity similarity last (as REAL, see _real_identity)."""
    controls = controls or Controls()
    h, w = source.image.shape[:2]
    portrait = prepare_portrait(
        source.image, output_size=(w, h), grid=(config or EngineConfig()).grid, name=name
    )
    encoder = load_identity_encoder()
    ref_id = identity_embedding(encoder, [portrait.image], [portrait.landmarks.points])
    truth = _truth(driving)
    scores: dict[str, Scores] = {}
    if static:
        static_out = [portrait.image] * len(driving)
        fixed = portrait.landmarks.points
        scores[STATIC] = _score_outputs(static_out, driving, truth, ref_id, encoder, fixed)
    for method, models in methods.items():
        pipeline = Pipeline(portrait, config, neural=models, device=device, backend=backend)
        try:
            if pipeline.neutral_from(source) is None:
                raise VisageError(f"{name}: no face tracked in the source frame")
            outputs = [pipeline.process(f, controls).image for f in driving]
        finally:
            pipeline.close()
        scores[method] = _score_outputs(outputs, driving, truth, ref_id, encoder)
        if control and models is None:
            again = [jpeg_round_trip(o) for o in outputs]
            scores[CONTROL] = _score_outputs(again, driving, truth, ref_id, encoder)
    if real:
        scores[REAL] = _real_identity(driving, truth, ref_id, encoder)
    return scores


def _nanmean(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN; NaN (without numpy's warning) when none is."""
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def field_mean(rows: Sequence[T]) -> T:
    """Field-wise mean of several score dataclasses of one type (NaNs ignored)."""
    kind = type(rows[0])
    return kind(**{f.name: _nanmean([getattr(s, f.name) for s in rows]) for f in fields(kind)})


def mean_scores(results: list[ClipResult], method: str) -> Scores:
    """Mean over clips of one method's scores (NaNs ignored)."""
    return field_mean([r.scores[method] for r in results])


def person_mean_scores(results: list[ClipResult], method: str) -> Scores:
    """Mean over people of each person's mean over their clips (every person counts once)."""
    people = sorted({r.person for r in results})
    return field_mean([mean_scores([r for r in results if r.person == p], method) for p in people])


def _row(name: str, s: Scores) -> str:
    return (
        f"| {name} | {s.psnr:.2f} | {s.ssim:.4f} | {s.lmk_err:.4f} | "
        f"{s.mouth_corr:.3f} | {s.eye_corr:.3f} | {s.id_sim:.3f} |"
    )


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if metric == "lmk_err" else a > b


def _comparisons(methods: list[str]) -> list[tuple[str, str]]:
    """(reference, method) for each method after the first: the method before it, except that
    the control is only ever compared with the geometric path."""
    out = []
    for i in range(1, len(methods)):
        prev = [m for m in methods[:i] if m != CONTROL][-1]
        out.append((GEOMETRIC if methods[i] == CONTROL else prev, methods[i]))
    return out


def _real_line(results: list[ClipResult]) -> str:
    """The real frames' identity similarity, over clips and over people (REAL has no other
    score)."""
    by_clip = mean_scores(results, REAL).id_sim
    by_person = person_mean_scores(results, REAL).id_sim
    return (
        f"{REAL}: identity sim {by_clip:.4f} to the portrait (over people "
        f"{by_person:.4f}): what reproducing them exactly would score"
    )


def format_table(results: list[ClipResult]) -> str:
    """A markdown table of every method's means over clips (and, with several people, over
    people: each person's clips averaged first), and per-clip win counts and differences of
    each method over the one before it (static < geometric < neural tiers; the control, if
    any, against the geometric path only)."""
    methods = [m for m in results[0].scores if m != REAL]
    header = [
        "| method | PSNR dB ↑ | SSIM ↑ | landmark err (IOD) ↓ | mouth corr ↑ | eye corr ↑ "
        "| identity sim ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = [f"clips: {len(results)}, frames scored: {sum(r.frames for r in results)}", ""]
    lines += header + [_row(name, mean_scores(results, name)) for name in methods]
    people = sorted({r.person for r in results})
    if len(people) > 1:
        lines += ["", f"mean over {len(people)} people ({', '.join(people)}):", ""]
        lines += header + [_row(name, person_mean_scores(results, name)) for name in methods]
    if REAL in results[0].scores:
        lines += ["", _real_line([r for r in results if REAL in r.scores])]
    for prev, cur in _comparisons(methods):
        wins = []
        for f in fields(Scores):
            if prev == STATIC and f.name == "id_sim":
                continue  # the static portrait is the reference itself
            n = sum(
                _better(f.name, getattr(r.scores[cur], f.name), getattr(r.scores[prev], f.name))
                for r in results
            )
            wins.append(f"{f.name} {n}/{len(results)}")
        lines += ["", f"{cur} better than {prev} on: " + ", ".join(wins)]
        if prev != STATIC:
            pairs = [(r.scores[cur], r.scores[prev]) for r in results]
            lines += ["", difference_line(cur, prev, pairs, "clip")]
    return "\n".join(lines)

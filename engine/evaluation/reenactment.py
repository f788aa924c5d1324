"""Self-reenactment evaluation: frame 0 of a clip is the portrait, the rest drive it.

Each output frame is compared with the real frame it should reproduce; the static baseline
shows frame 0 throughout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.config import EngineConfig
from engine.errors import VisageError
from engine.evaluation.metrics import correlation, landmark_error, psnr, ssim
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import eye_opening, mouth_opening
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Controls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scores:
    """Means over scored frames (correlations over the clip). Higher is better except lmk_err."""

    psnr: float
    ssim: float
    lmk_err: float
    mouth_corr: float
    eye_corr: float


@dataclass(frozen=True)
class ClipResult:
    clip: str
    frames: int
    engine: Scores
    static: Scores


def _scores(
    psnrs: list[float],
    ssims: list[float],
    errs: list[float],
    mouth: tuple[list[float], list[float]],
    eyes: tuple[list[float], list[float]],
) -> Scores:
    return Scores(
        psnr=float(np.mean(psnrs)),
        ssim=float(np.mean(ssims)),
        lmk_err=float(np.mean(errs)) if errs else float("nan"),
        mouth_corr=correlation(*mouth) if len(mouth[0]) >= 3 else float("nan"),
        eye_corr=correlation(*eyes) if len(eyes[0]) >= 3 else float("nan"),
    )


def evaluate_clip(
    clip: Path,
    max_frames: int = 150,
    controls: Controls | None = None,
    config: EngineConfig | None = None,
) -> ClipResult:
    """Score the engine and the static baseline on one clip (raises VisageError if unusable)."""
    controls = controls or Controls()
    with VideoFileSource(clip, max_frames=max_frames + 1) as source:
        frames = list(source)
    if len(frames) < 4:
        raise VisageError(f"{clip.name}: too short to evaluate ({len(frames)} frames)")
    first = frames[0].image
    h, w = first.shape[:2]
    portrait = prepare_portrait(
        first, output_size=(w, h), grid=(config or EngineConfig()).grid, name=clip.name
    )
    pipeline = Pipeline(portrait, config)
    truth_tracker, out_tracker = FaceTracker(), FaceTracker()
    try:
        if pipeline.neutral_from(frames[0]) is None:
            raise VisageError(f"{clip.name}: no face tracked in frame 0")
        truth_tracker.track(first)
        static_lm = portrait.landmarks.points
        e_psnr, e_ssim, e_err, s_psnr, s_ssim, s_err = [], [], [], [], [], []
        mouth_t, mouth_e, eye_t, eye_e = [], [], [], []
        for frame in frames[1:]:
            out = pipeline.process(frame, controls).image
            truth = frame.image
            e_psnr.append(psnr(out, truth))
            e_ssim.append(ssim(out, truth))
            s_psnr.append(psnr(first, truth))
            s_ssim.append(ssim(first, truth))
            lt = truth_tracker.track(truth)
            lo = out_tracker.track(out)
            if lt is None or lo is None:
                continue
            e_err.append(landmark_error(lo.points, lt.points))
            s_err.append(landmark_error(static_lm, lt.points))
            mouth_t.append(mouth_opening(lt.points))
            mouth_e.append(mouth_opening(lo.points))
            eye_t.append(eye_opening(lt.points))
            eye_e.append(eye_opening(lo.points))
    finally:
        pipeline.close()
        truth_tracker.close()
        out_tracker.close()
    const_mouth = [mouth_opening(static_lm)] * len(mouth_t)
    const_eye = [eye_opening(static_lm)] * len(eye_t)
    return ClipResult(
        clip=clip.name,
        frames=len(frames) - 1,
        engine=_scores(e_psnr, e_ssim, e_err, (mouth_t, mouth_e), (eye_t, eye_e)),
        static=_scores(s_psnr, s_ssim, s_err, (mouth_t, const_mouth), (eye_t, const_eye)),
    )


def mean_scores(results: list[ClipResult], which: str) -> Scores:
    """Mean over clips of the 'engine' or 'static' scores (NaNs ignored)."""
    rows = [getattr(r, which) for r in results]
    return Scores(
        **{f.name: float(np.nanmean([getattr(s, f.name) for s in rows])) for f in fields(Scores)}
    )


def format_table(results: list[ClipResult]) -> str:
    """A markdown table: engine vs static means, and on how many clips the engine wins."""
    eng, sta = mean_scores(results, "engine"), mean_scores(results, "static")
    lines = [
        f"clips: {len(results)}, frames scored: {sum(r.frames for r in results)}",
        "",
        "| method | PSNR dB ↑ | SSIM ↑ | landmark err (IOD) ↓ | mouth corr ↑ | eye corr ↑ |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in (("geometric engine", eng), ("static portrait", sta)):
        lines.append(
            f"| {name} | {s.psnr:.2f} | {s.ssim:.4f} | {s.lmk_err:.4f} | "
            f"{s.mouth_corr:.3f} | {s.eye_corr:.3f} |"
        )
    wins = []
    for f in fields(Scores):
        better = (lambda e, s: e < s) if f.name == "lmk_err" else (lambda e, s: e > s)
        n = sum(better(getattr(r.engine, f.name), getattr(r.static, f.name)) for r in results)
        wins.append(f"{f.name} {n}/{len(results)}")
    lines += ["", "engine better than static on: " + ", ".join(wins)]
    return "\n".join(lines)

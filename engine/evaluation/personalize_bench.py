"""`visage bench-personalize`: does fine-tuning help, and does the meta-learned start help faster?

For each held-out person (never seen in training): the first part of a clip is the "recording"
(the most neutral frame of it becomes the avatar's source; pairs source -> its other frames are
fine-tuned on), and frames from the rest of the clip are the test: the source driven by them
must reproduce them. Quality (PSNR, SSIM, landmark error, identity similarity) is measured
after 0, 5, 10, ... fine-tune steps from each start (the plain pretrained weights, the
meta-learned ones), against the fine-tune seconds spent (evaluation time excluded).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.capture.video_source import VideoFileSource
from engine.evaluation.reenactment import GEOMETRIC, Scores, evaluate_frames
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.models.identity import load_identity_encoder
from engine.personalize.capture import assess_frame
from engine.personalize.source import pick_source
from engine.runtime.neural import NeuralModels
from engine.training.clips import clip_from_frames, with_drive
from engine.training.finetune import FineTuneConfig, FineTuner, load_generator
from engine.training.identities import clip_identities
from engine.training.pairs import PairSampler

log = logging.getLogger(__name__)

CHECKPOINTS = (0, 5, 10, 20, 40, 80)
ADAPT_FRACTION = 0.6


@dataclass(frozen=True)
class CurvePoint:
    """Scores after `steps` fine-tune steps (`seconds` of fine-tuning) from `start`."""

    start: str
    steps: int
    seconds: float
    scores: Scores


@dataclass(frozen=True)
class PersonResult:
    person: str
    clip: str
    adapt_frames: int
    test_frames: int
    geometric: Scores
    points: tuple[CurvePoint, ...]


def bench_person(
    clip: Path,
    person: str,
    starts: dict[str, Path],
    checkpoints: tuple[int, ...] = CHECKPOINTS,
    max_frames: int = 150,
    test_frames: int = 30,
    device: str = "cpu",
    tier: str = "cpu",
) -> PersonResult:
    with VideoFileSource(clip, max_frames=max_frames) as video:
        frames = list(video)
    cut = int(len(frames) * ADAPT_FRACTION)
    adapt, test = frames[:cut], frames[cut:][:test_frames]
    images = [f.image for f in adapt]
    with FaceTracker() as tracker:
        tracked = [tracker.track(img) for img in images]
    checks = [
        assess_frame(img, [lm] if lm else []) for img, lm in zip(images, tracked, strict=True)
    ]
    usable = [i for i, c in enumerate(checks) if c.faces == 1]
    src = pick_source(images, tracked, checks, usable)
    data = with_drive(clip_from_frames(person, person, images, tracked, src), [src])
    idents = clip_identities([data], load_identity_encoder())
    source = adapt[src]
    geometric = evaluate_frames(source, test, {GEOMETRIC: None}, person, static=False)[GEOMETRIC]
    points = []
    cfg = FineTuneConfig()
    for name, folder in starts.items():
        generator = load_generator(folder, device)
        tuner = FineTuner(generator, cfg, torch.device(device))
        sampler = PairSampler([data], idents, seed=0, source=src)
        done, seconds = 0, 0.0
        for target in checkpoints:
            t0 = time.perf_counter()
            while done < target:
                tuner.step(sampler.sample(cfg.batch))
                done += 1
            seconds += time.perf_counter() - t0
            generator.eval()
            assert generator.fusion is not None
            models = NeuralModels(tier, generator.warp_net, generator.fusion, None, None)
            scores = evaluate_frames(
                source, test, {name: models}, person, backend="eager", static=False
            )[name]
            generator.train()
            points.append(CurvePoint(name, done, seconds, scores))
            log.info(
                "%s, %s start, %d steps (%.1f s): PSNR %.2f SSIM %.4f",
                person,
                name,
                done,
                seconds,
                scores.psnr,
                scores.ssim,
            )
    return PersonResult(person, clip.name, len(adapt), len(test), geometric, tuple(points))


def _mean(results: list[PersonResult], start: str, steps: int) -> tuple[float, Scores]:
    pts = [p for r in results for p in r.points if p.start == start and p.steps == steps]
    seconds = float(np.mean([p.seconds for p in pts]))
    fields = Scores.__dataclass_fields__
    return seconds, Scores(
        **{f: float(np.nanmean([getattr(p.scores, f) for p in pts])) for f in fields}
    )


def format_results(results: list[PersonResult], starts: list[str]) -> str:
    steps = sorted({p.steps for r in results for p in r.points})
    lines = [
        f"held-out people: {', '.join(r.person for r in results)}; "
        f"adapt on the first {int(ADAPT_FRACTION * 100)}% of each clip, test on "
        f"{sum(r.test_frames for r in results)} later frames",
        "",
        "| start | steps | fine-tune s | PSNR dB ↑ | SSIM ↑ | landmark err ↓ | identity sim ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    geo = [r.geometric for r in results]
    lines.append(
        f"| geometric path (no networks) | - | - | {np.mean([g.psnr for g in geo]):.2f} | "
        f"{np.mean([g.ssim for g in geo]):.4f} | {np.nanmean([g.lmk_err for g in geo]):.4f} | "
        f"{np.nanmean([g.id_sim for g in geo]):.3f} |"
    )
    for start in starts:
        for n in steps:
            sec, s = _mean(results, start, n)
            lines.append(
                f"| {start} | {n} | {sec:.1f} | {s.psnr:.2f} | {s.ssim:.4f} | {s.lmk_err:.4f} "
                f"| {s.id_sim:.3f} |"
            )
    lines += ["", f"(a) no fine-tuning is the {starts[0]} start at 0 steps."]
    if len(starts) == 2:
        plain, meta = starts
        final_sec, final = _mean(results, plain, steps[-1])
        reach = next((n for n in steps if _mean(results, meta, n)[1].psnr >= final.psnr), None)
        if reach is None:
            lines += ["", f"{meta} never reached {plain}'s final PSNR ({final.psnr:.2f} dB)."]
        else:
            sec = _mean(results, meta, reach)[0]
            lines += [
                "",
                f"{meta} reaches {plain}'s final PSNR ({final.psnr:.2f} dB after {steps[-1]} "
                f"steps, {final_sec:.1f} s) after {reach} steps ({sec:.1f} s).",
            ]
    return "\n".join(lines)


def plot_results(results: list[PersonResult], starts: list[str], path: Path) -> None:
    """PSNR (mean over people) against fine-tune seconds, one line per start, PNG."""
    w, h, m = 900, 540, 70
    img = np.full((h, w, 3), 255, np.uint8)
    steps = sorted({p.steps for r in results for p in r.points})
    curves = {s: [_mean(results, s, n) for n in steps] for s in starts}
    geo = float(np.mean([r.geometric.psnr for r in results]))
    xs = [sec for c in curves.values() for sec, _ in c]
    ys = [sc.psnr for c in curves.values() for _, sc in c] + [geo]
    x1 = max(xs) * 1.05 or 1.0
    y0, y1 = min(ys) - 0.3, max(ys) + 0.3

    def at(x: float, y: float) -> tuple[int, int]:
        return (int(m + (w - 2 * m) * x / x1), int(h - m - (h - 2 * m) * (y - y0) / (y1 - y0)))

    black, grey = (0, 0, 0), (170, 170, 170)
    cv2.line(img, at(0, y0), at(x1, y0), black, 1)
    cv2.line(img, at(0, y0), at(0, y1), black, 1)
    for k in range(6):
        x, y = x1 * k / 5, y0 + (y1 - y0) * k / 5
        cv2.putText(img, f"{x:.0f}", (*at(x, y0)[0:1], h - m + 20), 0, 0.45, black, 1)
        cv2.putText(img, f"{y:.1f}", (10, at(0, y)[1] + 5), 0, 0.45, black, 1)
    cv2.line(img, at(0, geo), at(x1, geo), grey, 1, cv2.LINE_AA)
    cv2.putText(img, "geometric path", (*at(0, geo)[0:1], at(0, geo)[1] - 6), 0, 0.45, grey, 1)
    colours = [(200, 90, 30), (40, 40, 220), (40, 160, 40)]
    for (name, curve), colour in zip(curves.items(), colours, strict=False):
        pts = [at(sec, sc.psnr) for sec, sc in curve]
        for a, b in itertools.pairwise(pts):
            cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 4, colour, -1, cv2.LINE_AA)
        row = 30 + 22 * list(curves).index(name)
        cv2.line(img, (w - 300, row - 5), (w - 270, row - 5), colour, 2)
        cv2.putText(img, f"from {name}", (w - 260, row), 0, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(img, "fine-tune seconds", (w // 2 - 70, h - 20), 0, 0.55, black, 1, cv2.LINE_AA)
    cv2.putText(img, "PSNR dB (held-out frames)", (m, 30), 0, 0.55, black, 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode the plot")
    tmp = path.with_suffix(".tmp.png")
    tmp.write_bytes(png.tobytes())
    tmp.replace(path)

"""Pack what a lent GPU machine needs into `.gpu/` (git-ignored, carried by the device tool).

That machine has torch + CUDA but no MediaPipe, no stlpips-pytorch, no ffmpeg and no access to
`../shared`, and at most 64 MiB travel with the repository. So this writes:

  .gpu/mediapipe.npz   MediaPipe's answers for the GPU run's inputs (see engine/tools/mp_replay)
  .gpu/site/stlpips_pytorch/...  the AlexNet weights of the perceptual loss (its package layout)
  .gpu/clips/*.npz     the training clips, subsampled to --frames frames each, crops as JPEG,
                       with the app's recorded targets (engine.training.drive) for the kept
                       frames, as int8 offsets from the tracked landmarks

Usage: python -m engine.tools.device_pack --cache ~/.cache/visage/train [--frames 32]
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np

from engine.paths import bundled_portraits, sample_driving_clip
from engine.tools.mp_replay import recording
from engine.training.clips import load_clip
from engine.training.command import HELD_OUT

log = logging.getLogger(__name__)

BENCH_PORTRAIT_SIZE = 512
BENCH_DRIVING_SIZE = 256


def record_mediapipe(out: Path) -> None:
    """Every MediaPipe call of the GPU run: bundled portraits at 512², the sample clip at 256²."""
    from engine.landmarks.mediapipe_tracker import FaceTracker
    from engine.portrait import prepare_portrait

    cap = cv2.VideoCapture(str(sample_driving_clip()))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        size = (BENCH_DRIVING_SIZE, BENCH_DRIVING_SIZE)
        frames.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    cap.release()
    with recording(out):
        for path in bundled_portraits():
            prepare_portrait(path, output_size=(BENCH_PORTRAIT_SIZE, BENCH_PORTRAIT_SIZE))
        with FaceTracker() as tracker:
            for image in frames:
                tracker.track(image)


DRIVE_SCALE = 4.0  # recorded targets travel as int8 quarter pixels from the tracked points


def packed_frames(valid: np.ndarray, sources: list[int], frames: int) -> np.ndarray:
    """Up to `frames` tracked frame indices, spread evenly, always including `sources`."""
    idx = np.flatnonzero(valid)
    count = max(min(frames, len(idx)) - len(sources), 1) if len(idx) else 0
    picks = np.linspace(0, len(idx) - 1, count).round().astype(int)
    return np.array(sorted(set(idx[picks].tolist()) | set(sources)), dtype=np.int64)


def pack_clips(cache: Path, out: Path, frames: int, quality: int) -> int:
    """Training clips (held-out people excluded) with about `frames` evenly spaced tracked
    frames, the recorded targets' source frames among them."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted(cache.glob("*.npz")):
        clip = load_clip(path)
        if clip.identity in HELD_OUT:
            continue
        sources = [int(i) for i in clip.drive.sources] if clip.drive is not None else []
        keep = packed_frames(clip.valid, sources, frames)
        jpegs = [
            cv2.imencode(
                ".jpg",
                cv2.cvtColor(clip.crops[i], cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, quality],
            )[1]
            for i in keep
        ]
        points = clip.points[keep].astype(np.float16)
        arrays = {
            "jpeg": np.concatenate(jpegs),
            "offsets": np.cumsum([0] + [len(j) for j in jpegs]),
            "points": points,
            "person": np.round(clip.person * 255).astype(np.uint8),
            "name": np.array(clip.name),
            "identity": np.array(clip.identity),
        }
        if clip.drive is not None:
            delta = (clip.drive.targets[:, keep] - points.astype(np.float32)[None]) * DRIVE_SCALE
            arrays |= {
                "drive_sources": np.searchsorted(keep, clip.drive.sources),
                "drive_portrait": clip.drive.portrait.astype(np.float16),
                "drive_delta": np.clip(np.round(delta), -127, 127).astype(np.int8),
                "drive_valid": clip.drive.valid[:, keep],
                "drive_scale": np.array(DRIVE_SCALE),
            }
        target = out / path.name
        np.savez_compressed(target, **arrays)
        total += target.stat().st_size
    return total


def copy_perceptual_weights(site: Path) -> None:
    src = importlib.resources.files("stlpips_pytorch").joinpath(
        "weights", "vST0.0", "alex_shift_tolerant.pth"
    )
    dst = site / "stlpips_pytorch" / "weights" / "vST0.0" / "alex_shift_tolerant.pth"
    dst.parent.mkdir(parents=True, exist_ok=True)
    (site / "stlpips_pytorch" / "__init__.py").write_text("")
    with src.open("rb") as fh, open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True, help="visage train's clip cache")
    ap.add_argument("--out", default=".gpu")
    ap.add_argument("--frames", type=int, default=32, help="frames kept per clip")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the crops")
    args = ap.parse_args()
    out = Path(args.out)
    record_mediapipe(out / "mediapipe.npz")
    copy_perceptual_weights(out / "site")
    size = pack_clips(Path(args.cache), out / "clips", args.frames, args.quality)
    log.info("packed clips: %.1f MB", size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

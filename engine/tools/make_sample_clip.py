"""Make the bundled driving sample: a public-domain portrait moved by a public-domain track.

1. `extract`: track MediaPipe landmarks on a US presidential address (a US federal government
   work) and save them as a motion track (no pixels):
     python -m engine.tools.make_sample_clip extract \
         --video ../shared/data/faces/videos/obama/EDTalk__test_data_uncrop_Obama.mp4 \
         --seconds 12 --out assets/driving/address_track.npz
2. `render`: drive a bundled public-domain portrait with that track:
     python -m engine.tools.make_sample_clip render --track assets/driving/address_track.npz \
         --portrait assets/portraits/grace_hopper.jpg --size 480x480 --out assets/driving/sample.mp4
"""

from __future__ import annotations

import argparse
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.capture.video_source import VideoFileSource
from engine.capture.video_writer import VideoWriter
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.smoothing import LandmarkSmoother
from engine.landmarks.topology import inter_ocular, load_topology
from engine.motion.decompose import MotionEstimator
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Controls, Landmarks

log = logging.getLogger("make_sample_clip")


def extract(video: Path, seconds: float, out: Path) -> None:
    points = []
    with VideoFileSource(video) as src, FaceTracker() as tracker:
        fps = src.info.fps
        limit = int(seconds * fps)
        size = (src.info.width, src.info.height)
        for frame in src:
            if frame.index >= limit:
                break
            lm = tracker.track(frame.image)
            if lm is None:
                raise SystemExit(f"no face in frame {frame.index}: pick a clip with a steady face")
            points.append(lm.points / np.array([size[0], size[0], size[0]], np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        points=np.stack(points).astype(np.float16),
        fps=np.array([fps.numerator, fps.denominator]),
        width=size[0],
        height=size[1],
    )
    log.info("wrote %s: %d frames at %s fps", out, len(points), fps)


def render(track: Path, portrait_path: Path, size: tuple[int, int], out: Path) -> None:
    with np.load(track) as d:
        pts = d["points"].astype(np.float32) * float(d["width"])
        fps = Fraction(int(d["fps"][0]), int(d["fps"][1]))
        image_size = (int(d["width"]), int(d["height"]))
    portrait = prepare_portrait(portrait_path, output_size=size)
    pipeline = Pipeline(portrait)
    estimator = MotionEstimator(load_topology())
    smoother = LandmarkSmoother(0.3)
    controls = Controls()
    with VideoWriter(out, size=size, fps=fps, crf=20, preset="slow") as writer:
        for i, p in enumerate(pts):
            p = smoother(p, inter_ocular(p), i / float(fps))
            motion = estimator.estimate(Landmarks(points=p, image_size=image_size))
            writer.write(pipeline.render_motion(motion, controls).image)
    log.info("wrote %s: %d frames at %s fps", out, len(pts), fps)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--video", type=Path, required=True)
    e.add_argument("--seconds", type=float, default=12.0)
    e.add_argument("--out", type=Path, default=Path("assets/driving/address_track.npz"))
    r = sub.add_parser("render")
    r.add_argument("--track", type=Path, default=Path("assets/driving/address_track.npz"))
    r.add_argument("--portrait", type=Path, default=Path("assets/portraits/grace_hopper.jpg"))
    r.add_argument("--size", default="480x480")
    r.add_argument("--out", type=Path, default=Path("assets/driving/sample.mp4"))
    args = ap.parse_args()
    if args.cmd == "extract":
        extract(args.video, args.seconds, args.out)
    else:
        w, h = (int(v) for v in args.size.split("x"))
        render(args.track, args.portrait, (w, h), args.out)


if __name__ == "__main__":
    main()

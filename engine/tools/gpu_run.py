"""Entry point on a lent GPU machine (see engine/tools/gpu_check.sh and device_pack.py).

That machine has no MediaPipe and no ffmpeg: when `import mediapipe` fails, MediaPipe's answers
are replayed from `.gpu/mediapipe.npz` (recorded here by device_pack), and the bench decodes
its clip with OpenCV alone.

  python -m engine.tools.gpu_run unpack .gpu/clips CACHE     JPEG-packed clips -> clip cache
  python -m engine.tools.gpu_run pytest [ARGS...]            pytest with the replay installed
  python -m engine.tools.gpu_run bench [--tiers cpu,gpu] [--backends eager,auto] [--frames N]
  python -m engine.tools.gpu_run visage [ARGS...]            the visage CLI, replay installed
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from engine.types import Frame

log = logging.getLogger(__name__)

RECORDING = Path(os.environ.get("VISAGE_MP_REPLAY", ".gpu/mediapipe.npz"))


def ensure_mediapipe() -> None:
    """Replay MediaPipe when it is missing (or when VISAGE_MP_REPLAY_FORCE=1, to test this)."""
    if (
        os.environ.get("VISAGE_MP_REPLAY_FORCE") == "1"
        or importlib.util.find_spec("mediapipe") is None
    ):
        from engine.tools.mp_replay import install_replay

        install_replay(RECORDING)


class Cv2Clip:
    """A video file decoded by OpenCV alone (RGB frames, nominal 30 fps timestamps)."""

    def __init__(self, path: Path) -> None:
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise OSError(f"OpenCV cannot open {path}")

    def __enter__(self) -> Cv2Clip:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cap.release()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                return
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / 30.0)
            index += 1


def unpack(src: Path, dst: Path) -> None:
    from engine.training.clips import ClipData, save_clip
    from engine.training.drive import Drive

    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.npz")):
        with np.load(path, allow_pickle=False) as d:
            blob, offsets = d["jpeg"], d["offsets"]
            crops = np.stack(
                [
                    cv2.cvtColor(cv2.imdecode(blob[a:b], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                    for a, b in itertools.pairwise(offsets)
                ]
            )
            points = d["points"].astype(np.float32)
            drive = None
            if "drive_sources" in d.files:
                drive = Drive(
                    sources=d["drive_sources"].astype(np.int64),
                    portrait=d["drive_portrait"].astype(np.float32),
                    targets=points[None] + d["drive_delta"] / np.float32(d["drive_scale"]),
                    valid=d["drive_valid"],
                )
            clip = ClipData(
                name=str(d["name"]),
                identity=str(d["identity"]),
                crops=crops,
                crops_hr=None,
                points=points,
                valid=np.ones(len(crops), bool),
                person=d["person"].astype(np.float32) / 255.0,
                drive=drive,
            )
        save_clip(clip, dst / path.name)
    log.info("unpacked %d clips into %s", len(list(dst.glob("*.npz"))), dst)


def bench(tiers: list[str], backends: list[str], frames: int, device: str = "cuda") -> None:
    from engine.errors import ConfigError
    from engine.evaluation.bench import format_bench, run_bench
    from engine.paths import portraits_dir, sample_driving_clip
    from engine.runtime.neural import NeuralModels, load_models, untrained_models

    portrait = portraits_dir() / "mona_lisa.jpg"
    driving = sample_driving_clip()
    runs: list[tuple[str, NeuralModels | None, str]] = [("geometric path", None, "eager")]
    for tier in tiers:
        try:
            nets, note = load_models(tier), ""
        except ConfigError:
            nets, note = untrained_models(tier), " (untrained weights: timing only)"
        runs += [(f"{tier} tier on {device}{note}", nets, b) for b in backends]
    for label, models, backend in runs:
        try:
            result = run_bench(
                portrait,
                driving,
                frames=frames,
                neural=models,
                device=device,
                backend=backend,
                label=label,
                open_source=Cv2Clip,
            )
        except Exception:  # one failed configuration must not cost the others' figures
            log.exception("bench of %s (%s) failed", label, backend)
            continue
        print(format_bench(result, portrait.name, driving.name) + "\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb == "unpack":
        unpack(Path(rest[0]), Path(rest[1]))
        return 0
    ensure_mediapipe()
    if verb == "pytest":
        import pytest

        return int(pytest.main(rest))
    if verb == "visage":
        from engine.cli import main as visage

        return visage(rest)
    if verb == "bench":
        ap = argparse.ArgumentParser(prog="gpu_run bench")
        ap.add_argument("--tiers", default="cpu,gpu")
        ap.add_argument("--backends", default="eager,auto")
        ap.add_argument("--frames", type=int, default=150)
        ap.add_argument("--device", default="cuda")
        a = ap.parse_args(rest)
        bench(a.tiers.split(","), a.backends.split(","), a.frames, a.device)
        return 0
    print(f"unknown verb {verb!r}\n{__doc__}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

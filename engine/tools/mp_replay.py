"""Record MediaPipe's answers on this machine and replay them where MediaPipe cannot be installed.

The lent GPU machine (see `engine/tools/gpu_check.sh`) runs Python 3.12 with numpy 2 and cannot
fetch packages, and MediaPipe 0.10.21 needs numpy 1.x. Landmarks are CPU work anyway; what the
GPU run measures is everything after them. So:

- here, `recording(path)` wraps MediaPipe's three solutions (Face Mesh, selfie segmentation,
  face detection) and saves every call's input thumbnail and answer to one .npz;
- there, `install_replay(path)` puts a stand-in `mediapipe` module into `sys.modules` whose
  solutions answer each call with the recorded answer of the nearest recorded image (same
  solution, same mode, same image size; nearest 16x16 thumbnail, so that small decoder
  differences between OpenCV builds do not matter). An image of a size never recorded is an
  error, never a guess.

Dev tooling only: the product never imports this module.
"""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

THUMB = 16
F32 = npt.NDArray[np.float32]


def thumbnail(image: npt.NDArray[np.uint8]) -> F32:
    """(H, W, 3) uint8 -> (THUMB*THUMB*3,) float32 area-averaged thumbnail."""
    small = cv2.resize(image, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32).reshape(-1)


@dataclass
class Entry:
    """One recorded call. kind: 'mesh-static', 'mesh-stream', 'selfie' or 'detect'.
    answer: mesh (F, 478, 3) normalized x, y, z; selfie (H, W) uint8 mask * 255; detect (n, 4)
    relative xmin, ymin, width, height."""

    kind: str
    shape: tuple[int, ...]
    thumb: F32
    answer: np.ndarray


@dataclass
class Recording:
    entries: list[Entry] = field(default_factory=list)

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        index = []
        for i, e in enumerate(self.entries):
            index.append({"kind": e.kind, "shape": list(e.shape)})
            arrays[f"t{i}"] = e.thumb
            arrays[f"a{i}"] = e.answer
        arrays["index"] = np.array(json.dumps(index))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Recording:
        with np.load(path, allow_pickle=False) as d:
            index = json.loads(str(d["index"]))
            entries = [
                Entry(item["kind"], tuple(item["shape"]), d[f"t{i}"], d[f"a{i}"])
                for i, item in enumerate(index)
            ]
        return cls(entries)

    def lookup(self, kind: str, image: npt.NDArray[np.uint8]) -> np.ndarray:
        candidates = [e for e in self.entries if e.kind == kind and e.shape == image.shape]
        if not candidates:
            raise RuntimeError(
                f"MediaPipe replay: no {kind} call on a {image.shape} image was recorded; "
                "record this workload first (engine/tools/device_pack.py)"
            )
        thumb = thumbnail(image)
        dists = [float(np.sum((e.thumb - thumb) ** 2)) for e in candidates]
        return candidates[int(np.argmin(dists))].answer


# -- recording (real MediaPipe) ----------------------------------------------------------------
@contextmanager
def recording(path: Path) -> Iterator[Recording]:
    """Record every MediaPipe solution call made inside the block; saved to `path` at exit."""
    import mediapipe as mp

    rec = Recording()
    sols = mp.solutions
    originals = (
        sols.face_mesh.FaceMesh,
        sols.selfie_segmentation.SelfieSegmentation,
        sols.face_detection.FaceDetection,
    )
    real_mesh, real_selfie, real_detect = originals

    class _Recorder:
        def __init__(self, real: Any, kind: str) -> None:
            self._real, self._kind = real, kind

        def process(self, image: npt.NDArray[np.uint8]) -> Any:
            result = self._real.process(image)
            rec.entries.append(
                Entry(self._kind, image.shape, thumbnail(image), _answer(self._kind, result))
            )
            return result

        def close(self) -> None:
            self._real.close()

        def __enter__(self) -> _Recorder:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def mesh(**kw: Any) -> _Recorder:
        kind = "mesh-static" if kw.get("static_image_mode") else "mesh-stream"
        return _Recorder(real_mesh(**kw), kind)

    sols.face_mesh.FaceMesh = mesh
    sols.selfie_segmentation.SelfieSegmentation = lambda **kw: _Recorder(
        real_selfie(**kw), "selfie"
    )
    sols.face_detection.FaceDetection = lambda **kw: _Recorder(real_detect(**kw), "detect")
    try:
        yield rec
    finally:
        (
            sols.face_mesh.FaceMesh,
            sols.selfie_segmentation.SelfieSegmentation,
            sols.face_detection.FaceDetection,
        ) = originals
        rec.save(path)
        log.info("recorded %d MediaPipe calls to %s", len(rec.entries), path)


def _answer(kind: str, result: Any) -> np.ndarray:
    if kind.startswith("mesh"):
        faces = result.multi_face_landmarks or []
        return np.array([[(p.x, p.y, p.z) for p in f.landmark] for f in faces], np.float32).reshape(
            -1, 478, 3
        )
    if kind == "selfie":
        mask = result.segmentation_mask
        return (
            np.zeros((0, 0), np.uint8)
            if mask is None
            else np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)
        )
    boxes = []
    for d in result.detections or []:
        b = d.location_data.relative_bounding_box
        boxes.append((b.xmin, b.ymin, b.width, b.height))
    return np.array(boxes, np.float32).reshape(-1, 4)


# -- replay (no MediaPipe) ---------------------------------------------------------------------
class _Replayer:
    def __init__(self, rec: Recording, kind: str) -> None:
        self._rec, self._kind = rec, kind

    def process(self, image: npt.NDArray[np.uint8]) -> Any:
        answer = self._rec.lookup(self._kind, image)
        ns = types.SimpleNamespace
        if self._kind.startswith("mesh"):
            faces = [ns(landmark=[ns(x=x, y=y, z=z) for x, y, z in f.tolist()]) for f in answer]
            return ns(multi_face_landmarks=faces or None)
        if self._kind == "selfie":
            mask = answer.astype(np.float32) / 255.0 if answer.size else None
            return ns(segmentation_mask=mask)
        dets = [
            ns(location_data=ns(relative_bounding_box=ns(xmin=x, ymin=y, width=w, height=h)))
            for x, y, w, h in answer.tolist()
        ]
        return ns(detections=dets or None)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def install_replay(path: Path) -> None:
    """Make `import mediapipe` return a stand-in that replays the recording at `path`."""
    rec = Recording.load(path)
    mp = types.ModuleType("mediapipe")
    mp.__version__ = f"replay of a recording ({len(rec.entries)} calls)"  # type: ignore[attr-defined]

    def mesh(**kw: Any) -> _Replayer:
        return _Replayer(rec, "mesh-static" if kw.get("static_image_mode") else "mesh-stream")

    mp.solutions = types.SimpleNamespace(  # type: ignore[attr-defined]
        face_mesh=types.SimpleNamespace(FaceMesh=mesh),
        selfie_segmentation=types.SimpleNamespace(
            SelfieSegmentation=lambda **kw: _Replayer(rec, "selfie")
        ),
        face_detection=types.SimpleNamespace(FaceDetection=lambda **kw: _Replayer(rec, "detect")),
    )
    sys.modules["mediapipe"] = mp
    log.info("MediaPipe replaced by a replay of %d recorded calls (%s)", len(rec.entries), path)

"""MediaPipe Face Mesh (478 points with iris). The only module that imports MediaPipe.

Two modes: `detect_faces` for still images (every face, largest first) and `FaceTracker.track`
for streams (one face, MediaPipe's own detector-then-tracker loop). `person_mask` separates the
person from the background (selfie segmentation) so that the background stays still.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

NUM_POINTS = 478


def _check_image(image: ImageArray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def _to_landmarks(face: Any, width: int, height: int) -> Landmarks:
    """MediaPipe NormalizedLandmarkList -> pixel Landmarks (z scaled like x)."""
    pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)  # (478, 3)
    pts *= np.array([width, height, width], dtype=np.float32)
    pts[:, :2] -= 0.5  # pixel-centre convention: (0, 0) is the centre of the top-left pixel
    return Landmarks(points=pts, image_size=(width, height))


def mediapipe_version() -> str:
    import mediapipe as mp

    return str(mp.__version__)


def face_area(landmarks: Landmarks) -> float:
    """Area of the landmarks' 2-D bounding box, in square pixels."""
    xy = landmarks.points[:, :2]
    w, h = xy.max(axis=0) - xy.min(axis=0)
    return float(w * h)


class _Mesh:
    def __init__(self, static: bool, max_faces: int, min_confidence: float) -> None:
        import mediapipe as mp  # imported lazily: it is slow to import and pulls in OpenCV

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def process(self, image: ImageArray) -> list[Landmarks]:
        _check_image(image)
        h, w = image.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image))
        faces = result.multi_face_landmarks or []
        return [_to_landmarks(f, w, h) for f in faces]

    def close(self) -> None:
        self._mesh.close()


def detect_faces(
    image: ImageArray, max_faces: int = 5, min_confidence: float = 0.5
) -> list[Landmarks]:
    """All faces in a still image, largest first. image: (H, W, 3) uint8 RGB."""
    mesh = _Mesh(static=True, max_faces=max_faces, min_confidence=min_confidence)
    try:
        faces = mesh.process(image)
    finally:
        mesh.close()
    return sorted(faces, key=face_area, reverse=True)


class FaceTracker:
    """Streaming tracker for one face: cheap frame-to-frame tracking after a first detection."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        self._mesh = _Mesh(static=False, max_faces=1, min_confidence=min_confidence)

    def track(self, image: ImageArray) -> Landmarks | None:
        """Landmarks of the tracked face in an (H, W, 3) uint8 RGB frame, or None if no face."""
        faces = self._mesh.process(image)
        return faces[0] if faces else None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def person_mask(image: ImageArray) -> npt.NDArray[np.float32]:
    """(H, W) float32 in [0, 1]: how likely each pixel shows the person (head, hair, body).

    MediaPipe selfie segmentation on an (H, W, 3) uint8 RGB image.
    """
    import mediapipe as mp

    _check_image(image)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        result = seg.process(np.ascontiguousarray(image))
    mask = result.segmentation_mask
    if mask is None:
        return np.zeros(image.shape[:2], np.float32)
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def face_boxes(
    image: ImageArray, min_confidence: float = 0.5
) -> list[tuple[float, float, float, float]]:
    """Face boxes (x0, y0, x1, y1) in pixels from MediaPipe's full-range face detector.

    A second opinion for still images: it finds small faces in wide shots that Face Mesh misses,
    and it does not answer for most animal faces, which Face Mesh sometimes does.
    """
    import mediapipe as mp

    _check_image(image)
    h, w = image.shape[:2]
    with mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=min_confidence
    ) as det:
        result = det.process(np.ascontiguousarray(image))
    boxes = []
    for d in result.detections or []:
        b = d.location_data.relative_bounding_box
        x0, y0 = b.xmin * w, b.ymin * h
        boxes.append((x0, y0, x0 + b.width * w, y0 + b.height * h))
    return boxes

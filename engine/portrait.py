"""Portrait preparation (done once per portrait): face, output framing, crop box, warp-mesh source.

Coordinates: "image" = the output image (portrait resized/cropped to the output size);
"grid" = the square flow grid of side `grid` laid over the crop box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from engine.capture.image_file import load_image
from engine.errors import NoFaceError
from engine.geometry.mesh import mesh_source
from engine.geometry.mouth import lip_color
from engine.landmarks.mediapipe_tracker import detect_faces, face_boxes, person_mask
from engine.landmarks.topology import FaceTopology, load_topology
from engine.motion.head import FaceShape
from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

DETECT_MAX_SIDE = 1280  # faces are found on a copy at most this large
DEFAULT_MAX_SIDE = 1920  # default output resolution cap
BOX_FACE_RATIO = 2.2  # crop box side / face size (room for hair, neck and head motion)


@dataclass(frozen=True)
class CropBox:
    """Square region of the output image: top-left (x0, y0), side `size` pixels."""

    x0: int
    y0: int
    size: int

    def to_grid(self, xy: F64, grid: int) -> F64:
        """(N, 2) image coordinates -> flow-grid coordinates (pixel centres)."""
        return (xy - np.array([self.x0, self.y0]) + 0.5) * (grid / self.size) - 0.5


@dataclass(frozen=True)
class Portrait:
    """A prepared portrait.

    image: (H, W, 3) uint8 RGB at the output size. landmarks: in image coordinates.
    face: pose + canonical shape of the portrait's face.
    box: crop box holding the head. grid: flow grid side.
    source_grid: (V, 2) warp-mesh vertices in grid coordinates (see geometry.mesh).
    follow: (R*36,) head-follow weight of each support vertex.
    mouth_color: (3,) float mean RGB of the lips (tints the synthesized mouth interior).
    notes: things worth telling the user (several faces, downscaling).
    """

    image: ImageArray
    landmarks: Landmarks
    face: FaceShape
    box: CropBox
    grid: int
    source_grid: F64
    follow: F64
    mouth_color: F64
    name: str
    notes: tuple[str, ...]


def _fit_output(
    image: ImageArray, points: F64, size: tuple[int, int] | None
) -> tuple[ImageArray, F64, list[str]]:
    """Resize (cover, no stretching) and crop around the face to `size` (width, height)."""
    h, w = image.shape[:2]
    notes: list[str] = []
    if size is None:
        side = max(w, h)
        if side <= DEFAULT_MAX_SIDE:
            return image, points, notes
        scale = DEFAULT_MAX_SIDE / side
        size = (round(w * scale), round(h * scale))
        notes.append(f"output limited to {size[0]}x{size[1]}")
    out_w, out_h = size
    scale = max(out_w / w, out_h / h)
    rw, rh = max(out_w, round(w * scale)), max(out_h, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (rw, rh), interpolation=interp)
    pts = (points + 0.5) * np.array([rw / w, rh / h, rw / w]) - np.array([0.5, 0.5, 0.0])
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    x0 = int(np.clip(round(cx - out_w / 2), 0, rw - out_w))
    y0 = int(np.clip(round(cy - out_h / 2), 0, rh - out_h))
    crop = np.ascontiguousarray(resized[y0 : y0 + out_h, x0 : x0 + out_w])
    return crop, pts - np.array([x0, y0, 0.0]), notes


def crop_box(points: F64, topo: FaceTopology) -> CropBox:
    """The square head box of a face: BOX_FACE_RATIO x its size, centred a little above."""
    oval = points[topo.oval, :2]
    face_size = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
    side = max(32, round(face_size * BOX_FACE_RATIO))
    cx, cy = oval.mean(axis=0)
    return CropBox(x0=round(cx - side / 2), y0=round(cy - side / 2 - 0.04 * side), size=side)


def grid_mask(image: ImageArray, box: CropBox, grid: int) -> npt.NDArray[np.float32]:
    """The person mask resampled onto the flow grid over `box` (outside the image: background)."""
    mask = person_mask(image)
    scale = box.size / grid
    affine = np.array(
        [[scale, 0, box.x0 + 0.5 * scale - 0.5], [0, scale, box.y0 + 0.5 * scale - 0.5]]
    )
    return cv2.warpAffine(
        mask,
        affine,
        (grid, grid),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )


Box = tuple[float, float, float, float]


def _inside(points: npt.NDArray[np.floating], box: Box) -> bool:
    cx, cy = points[:, 0].mean(), points[:, 1].mean()
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _mesh_in_box(image: ImageArray, box: Box) -> list[Landmarks]:
    """Face Mesh on a square crop around a detector box (small faces in wide shots)."""
    h, w = image.shape[:2]
    side = 2.2 * max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x1, y1 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
    zoom = max(1.0, 384 / max(x1 - x0, y1 - y0))
    crop = cv2.resize(image[y0:y1, x0:x1], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    half = np.array([0.5, 0.5, 0.0])
    out = []
    for face in detect_faces(crop):
        pts = (face.points.astype(np.float64) + half) / zoom - half + np.array([x0, y0, 0.0])
        out.append(Landmarks(points=pts.astype(np.float32), image_size=(w, h)))
    return out


def _find_faces(image: ImageArray) -> tuple[list[Landmarks], int]:
    """Faces confirmed by both Face Mesh and the full-range face detector, largest first.

    The detector vetoes meshes fitted to animals; where the mesh misses a face the detector
    saw (small faces in a wide shot), the mesh is re-run on a crop around it.
    """
    boxes = face_boxes(image)
    if not boxes:
        return [], 0
    faces = [f for f in detect_faces(image) if any(_inside(f.points, b) for b in boxes)]
    if not faces:
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        faces = [f for f in _mesh_in_box(image, largest) if _inside(f.points, largest)]
    return faces, max(len(faces), len(boxes))


def _detect(image: ImageArray, name: str) -> tuple[Landmarks, int]:
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = (
        image
        if scale == 1.0
        else cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    )
    faces, count = _find_faces(small)
    if not faces:
        raise NoFaceError(
            f"No face found in {name}. Choose a photo or painting with one clearly visible face, "
            "roughly facing the camera and at least about 100 pixels wide."
        )
    pts = faces[0].points.astype(np.float64)
    if scale != 1.0:
        pts = (pts + np.array([0.5, 0.5, 0.0])) / scale - np.array([0.5, 0.5, 0.0])
    return Landmarks(points=pts.astype(np.float32), image_size=(w, h)), count


def prepare_portrait(
    source: str | Path | ImageArray,
    output_size: tuple[int, int] | None = None,
    grid: int = 256,
    name: str | None = None,
) -> Portrait:
    """Load (if a path), find the face (largest if several) and precompute the warp source."""
    if isinstance(source, (str, Path)):
        image = load_image(source)
        name = name or Path(source).name
    else:
        image = source
        name = name or "portrait"
    topo = load_topology()
    found, count = _detect(image, name)
    notes = []
    if count > 1:
        notes.append(f"{count} faces found in {name}; animating the largest")
        log.warning(notes[-1])
    out_img, pts, fit_notes = _fit_output(image, found.points.astype(np.float64), output_size)
    notes += fit_notes
    h, w = out_img.shape[:2]
    landmarks = Landmarks(points=pts.astype(np.float32), image_size=(w, h))
    box = crop_box(pts, topo)
    face_grid = box.to_grid(pts[:, :2], grid)
    source_grid, follow = mesh_source(face_grid, grid, topo, grid_mask(out_img, box, grid))
    return Portrait(
        image=out_img,
        landmarks=landmarks,
        face=FaceShape.of(pts, topo),
        box=box,
        grid=grid,
        source_grid=source_grid,
        follow=follow,
        mouth_color=lip_color(out_img, pts, topo),
        name=name,
        notes=tuple(notes),
    )

"""Face chips for the identity encoder: dlib's `get_face_chip` alignment from MediaPipe landmarks.

dlib aligns a face by a least-squares similarity transform from a 5-point template (two corners of
each eye and the base of the nose, on the unit square) to the detected points:

    template (padded) = (padding + T) / (1 + 2 * padding) * size      (`get_face_chip_details`)

and then samples the chip through a rectangle of side `size * scale - 1` image pixels centred on
the template's centre, so the chip's pixels 0 .. size-1 span that side (`centered_drect` and
`get_mapping_to_chip`). `chip_transform` reproduces that mapping exactly (checked against
dlib 20.0.1 on synthetic ramps); MediaPipe's points stand in for dlib's 5-point predictor.

When the face is more than twice the chip's size dlib samples from an image pyramid; `face_chip`
does the same with cv2.pyrDown. dlib's pyramid path also moves its sampling points by
(2^L - 1) / 2 source pixels left and down at pyramid level L (measured: 0.5 px at L=1, 1.5 px at
L=2: a fifth to a quarter of a chip pixel); that quirk is not reproduced.

Coordinates are pixels with (0, 0) at the centre of the top-left pixel, as in
engine.types.Landmarks and in dlib.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from engine.types import ImageArray

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# dlib's 5-point template (dlib/image_transforms/interpolation.h, get_face_chip_details), in the
# order of dlib's 5-point predictor: the outer and inner corner of the eye on the image's right
# (the subject's left eye), the outer and inner corner of the other eye, the base of the nose.
DLIB_TEMPLATE_5: F64 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

# The MediaPipe Face Mesh points nearest to dlib's five (eye corners and subnasale).
MEDIAPIPE_5 = (263, 362, 33, 133, 2)

# Where those MediaPipe points sit on average in dlib's template frame: dlib's template plus the
# mean offset measured on 140 real portraits (../shared/data/faces/portraits/real_portrait and the
# bundled portraits) between MediaPipe's points and dlib's 5-point predictor, both mapped by
# dlib's own alignment. MediaPipe's eye corners sit slightly inside dlib's; its point 2 slightly
# above dlib's nose point.
MEDIAPIPE_TEMPLATE_5: F64 = DLIB_TEMPLATE_5 + np.array(
    [
        [0.0071, -0.0002],
        [-0.0103, 0.0015],
        [-0.0046, -0.0008],
        [0.0133, -0.0004],
        [-0.0013, -0.0214],
    ]
)


def similarity_fit(src: F64, dst: F64) -> F64:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) taking the
    (K, 2) points `src` onto (K, 2) `dst`, as a (2, 3) matrix: dst ~ M[:, :2] @ src + M[:, 2].
    Minimizes the squared error in `dst`'s space (dlib's find_similarity_transform)."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    ms, md = zs.mean(), zd.mean()
    spread = float(np.sum(np.abs(zs - ms) ** 2))
    if spread <= 1e-12:
        raise ValueError("similarity_fit: the source points coincide")
    a = np.sum(np.conj(zs - ms) * (zd - md)) / spread
    b = md - a * ms
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def invert_affine(m: F64) -> F64:
    """(2, 3) affine -> its (2, 3) inverse."""
    linear = np.linalg.inv(m[:, :2])
    return np.concatenate([linear, -linear @ m[:, 2:]], axis=1)


def chip_transform_from(
    points: F64, template: F64, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> F64:
    """dlib's image -> chip affine, (2, 3), for (K, 2) image points matching (K, 2) unit-square
    template points."""
    padded = (padding + template) / (2.0 * padding + 1.0) * size
    tform = similarity_fit(padded, points)  # template frame -> image
    scale = float(np.hypot(tform[0, 0], tform[1, 0]))
    # dlib's chip rectangle has side size*scale - 1 and spans chip pixels 0 .. size-1.
    linear = tform[:, :2] * ((size * scale - 1.0) / ((size - 1.0) * scale))
    centre = tform[:, :2] @ np.array([size / 2.0, size / 2.0]) + tform[:, 2]
    shift = centre - linear @ np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    return invert_affine(np.concatenate([linear, shift[:, None]], axis=1))


def chip_transform(
    points: npt.NDArray[np.floating], size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> F64:
    """(478, 3) or (478, 2) MediaPipe landmarks in pixels -> (2, 3) affine image -> chip pixels,
    aligned like dlib.get_face_chip(img, shape, size, padding)."""
    if points.ndim != 2 or points.shape[0] != 478 or points.shape[1] not in (2, 3):
        raise ValueError(f"chip_transform expects (478, 3) landmarks, got {points.shape}")
    pts = np.asarray(points, dtype=np.float64)[list(MEDIAPIPE_5), :2]
    return chip_transform_from(pts, MEDIAPIPE_TEMPLATE_5, size, padding)


def warp_chip(image: npt.NDArray[Any], img_to_chip: F64, size: int = CHIP_SIZE) -> npt.NDArray[Any]:
    """Sample the (size, size[, C]) chip of an (H, W[, C]) image (uint8 or float32) through a
    (2, 3) image -> chip affine: bilinear, black outside the image, from a pyramid level when
    the face is more than twice the chip's size (as dlib does)."""
    chip_to_img = invert_affine(img_to_chip)
    scale = float(np.sqrt(abs(np.linalg.det(chip_to_img[:, :2]))))  # image px per chip px
    levels = 0
    while scale / 2.0 ** (levels + 1) > 1.0:
        levels += 1
    src = image
    if levels:
        # Only the chip's footprint (plus the filters' margin) goes through the pyramid.
        corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
        foot = corners @ chip_to_img.T
        margin = 2 ** (levels + 1) + 2
        x0 = int(max(np.floor(foot[:, 0].min()) - margin, 0))
        y0 = int(max(np.floor(foot[:, 1].min()) - margin, 0))
        x1 = int(min(np.ceil(foot[:, 0].max()) + margin, image.shape[1]))
        y1 = int(min(np.ceil(foot[:, 1].max()) + margin, image.shape[0]))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((size, size, *image.shape[2:]), dtype=image.dtype)
        src = image[y0:y1, x0:x1]
        chip_to_img = chip_to_img - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
        for _ in range(levels):  # pyrDown's pixel j sits on pixel 2j of its input
            src = cv2.pyrDown(src)
        chip_to_img = chip_to_img / 2.0**levels
    chip = cv2.warpAffine(
        np.ascontiguousarray(src),
        chip_to_img,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return np.asarray(chip, dtype=image.dtype).reshape(size, size, *image.shape[2:])


def face_chip(
    image: ImageArray,
    points: npt.NDArray[np.floating],
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> ImageArray:
    """(H, W, 3) uint8 RGB image + (478, 3) MediaPipe landmarks -> (size, size, 3) uint8 RGB chip
    for the identity encoder (dlib's get_face_chip alignment)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"face_chip expects an (H, W, 3) uint8 image, got {image.shape} {image.dtype}"
        )
    return warp_chip(image, chip_transform(points, size, padding), size)


def chip_grid(img_to_chip: Tensor, image_hw: tuple[int, int], size: int = CHIP_SIZE) -> Tensor:
    """Sampling grid for torch.nn.functional.grid_sample(images, grid, align_corners=False).

    img_to_chip: (B, 2, 3) affines from image pixels to chip pixels (chip_transform, batched).
    image_hw: (H, W) of the images that will be sampled. Returns (B, size, size, 2) normalized
    (x, y) image coordinates of every chip pixel's centre; differentiable in `img_to_chip`.
    No anti-aliasing: keep the face within about twice the chip's size in those images.
    """
    if img_to_chip.ndim != 3 or tuple(img_to_chip.shape[1:]) != (2, 3):
        raise ValueError(f"chip_grid expects (B, 2, 3) affines, got {tuple(img_to_chip.shape)}")
    a, b, tx = img_to_chip[:, 0, 0], img_to_chip[:, 0, 1], img_to_chip[:, 0, 2]
    c, d, ty = img_to_chip[:, 1, 0], img_to_chip[:, 1, 1], img_to_chip[:, 1, 2]
    det = a * d - b * c
    # inverse: chip -> image
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    it_x = -(ia * tx + ib * ty)
    it_y = -(ic * tx + id_ * ty)
    coords = torch.arange(size, dtype=img_to_chip.dtype, device=img_to_chip.device)
    v, u = torch.meshgrid(coords, coords, indexing="ij")  # (size, size) rows, columns

    def per_batch(t: Tensor) -> Tensor:
        return t[:, None, None]

    x = per_batch(ia) * u + per_batch(ib) * v + per_batch(it_x)
    y = per_batch(ic) * u + per_batch(id_) * v + per_batch(it_y)
    h, w = image_hw
    return torch.stack([(2.0 * x + 1.0) / w - 1.0, (2.0 * y + 1.0) / h - 1.0], dim=-1)

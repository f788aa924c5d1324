"""The inside of the mouth: teeth that follow the jaw, and a cavity where the opening is new.

The warp mesh fills the mouth opening with a fan, which stretches whatever the portrait shows
there: a closed mouth's lip line smears into the opening, and a smiling portrait's teeth grow
with it. Real teeth do not stretch: the upper teeth move with the upper lip, the lower teeth
with the jaw, and opening the mouth wider than the portrait's reveals a gap between them.

So inside the target opening (all in the mouth's own frame, see `LipProfile`):
- `follow_jaw` maps the band under the upper lip, as deep as half the portrait's own opening,
  onto the same depth under the portrait's upper lip; likewise above the lower lip. An opening
  up to the portrait's is squeezed or stretched evenly, and between that and RIGID times the
  portrait's the two blend, so a mouth opening a little more never shows a seam.
- what lies between the two bands (the revealed gap) samples the portrait's mid line, and
  `paint_mouth_interior` fills it: with the portrait's own inside, evened out and no brighter
  than its lips allow, where the portrait's mouth is open; with a painted dark cavity and a
  hint of upper teeth where it is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from engine.landmarks.topology import (
    MOUTH_CORNERS,
    MOUTH_UPPER_INNER,
    FaceTopology,
    load_topology,
)
from engine.types import ImageArray

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

MIN_WIDTH = 2.0  # pixels: narrower mouths are left alone
CAVITY_MAX = 0.5  # a mouth's inside is at most this bright, relative to its lips
LUMA = np.array([0.299, 0.587, 0.114])
RIGID = 1.5  # target opening / portrait opening from which the teeth stop stretching
CLOSED = 4.0  # pixels: a portrait mouth opening narrower than this shows nothing inside


@lru_cache(maxsize=1)
def arc_positions() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Positions in the inner-lip loop of its upper and lower arcs, corner to corner."""
    loop = [int(i) for i in load_topology().lips_inner]
    a, b = loop.index(MOUTH_CORNERS[0]), loop.index(MOUTH_CORNERS[1])
    n = len(loop)
    one = [(a + k) % n for k in range((b - a) % n + 1)]
    other = [(b + k) % n for k in range((a - b) % n + 1)]
    upper_first = loop.index(MOUTH_UPPER_INNER) in one
    upper, lower = (one, other) if upper_first else (other, one)
    return np.array(upper), np.array(lower)


@dataclass(frozen=True)
class LipProfile:
    """An inner-lip loop in the mouth's own frame: u runs from one corner to the other
    (0..width), v is perpendicular to it, growing towards the lower lip.

    origin, ax, ay: (2,) the frame in image (or grid) pixels. upper, lower: (K, 2) the (u, v)
    of the two arcs, sorted by u."""

    origin: F64
    ax: F64
    ay: F64
    width: float
    upper: F64
    lower: F64

    @classmethod
    def of(cls, loop: F64) -> LipProfile:
        """loop: (20, 2) the inner-lip points (topology order) in image pixels."""
        up, low = arc_positions()
        origin, end = loop[up[0]], loop[up[-1]]
        width = float(np.linalg.norm(end - origin))
        ax = (end - origin) / max(width, 1e-9)
        ay = np.array([-ax[1], ax[0]])
        if width > 0 and float(np.dot(loop[low].mean(0) - loop[up].mean(0), ay)) < 0:
            ay = -ay  # mirrored landmarks: keep v growing towards the lower lip

        def arc(idx: npt.NDArray[np.intp]) -> F64:
            d = loop[idx] - origin
            uv = np.stack([d @ ax, d @ ay], axis=1)
            return uv[np.argsort(uv[:, 0], kind="stable")]

        return cls(origin, ax, ay, width, arc(up), arc(low))

    def local(self, xy: F64) -> F64:
        """(N, 2) image pixels -> (N, 2) (u, v)."""
        d = xy - self.origin
        return np.stack([d @ self.ax, d @ self.ay], axis=1)

    def image(self, uv: F64) -> F64:
        """(N, 2) (u, v) -> (N, 2) image pixels."""
        return self.origin + uv[:, :1] * self.ax + uv[:, 1:] * self.ay

    def lips(self, u: F64) -> tuple[F64, F64]:
        """v of the upper and lower lip at each u (N,); lower >= upper."""
        vu = np.interp(u, self.upper[:, 0], self.upper[:, 1])
        vl = np.interp(u, self.lower[:, 0], self.lower[:, 1])
        return vu, np.maximum(vl, vu)


@dataclass(frozen=True)
class JawSplit:
    """Target points (N,) inside the target opening, split between teeth bands and gap.

    source: (N, 2) the (u, v) each samples in the portrait. depth: (N,) how deep each lies
    inside the revealed gap, in target pixels (<= 0: on a teeth band, or nothing revealed).
    upper, lower: (N,) v of the target's upper and lower lip at each point's u. portrait_gap:
    (N,) the portrait's opening there, in target pixels."""

    source: F64
    depth: F64
    upper: F64
    lower: F64
    portrait_gap: F64


def jaw_split(source: LipProfile, target: LipProfile, uv: F64) -> JawSplit:
    """Where target points (N, 2) (u, v) inside the target opening sample the source.

    An opening up to the portrait's is squeezed or stretched evenly; one RIGID times the
    portrait's or more keeps its teeth bands rigid, with the gap between them; in between the
    two blend, so that a mouth opening slightly more than the portrait's never shows a seam."""
    k = source.width / target.width  # source pixels per target pixel
    u_s = uv[:, 0] * k
    up_t, low_t = target.lips(uv[:, 0])
    up_s, low_s = source.lips(u_s)
    gap_t = np.maximum(low_t - up_t, 1e-6)
    gap_s = low_s - up_s
    d = np.clip(uv[:, 1] - up_t, 0.0, gap_t)  # depth under the target upper lip
    half = gap_s / (2 * k)  # half the source opening, in target pixels
    even = up_s + d / gap_t * gap_s
    rigid = np.where(
        d < half,
        up_s + d * k,
        np.where(gap_t - d < half, low_s - (gap_t - d) * k, up_s + gap_s / 2),
    )
    ratio = gap_t / np.maximum(2 * half, 1e-6)
    w = np.clip((ratio - 1.0) / (RIGID - 1.0), 0.0, 1.0)
    v_s = even + w * (rigid - even)
    depth = w * (np.minimum(d, gap_t - d) - half)
    return JawSplit(np.stack([u_s, v_s], axis=1), depth, up_t, low_t, 2 * half)


def _inside(loop: F64, shape: tuple[int, int]) -> tuple[npt.NDArray[np.intp], ...] | None:
    """Pixel rows/cols (N,) inside the polygon `loop` (K, 2) within an image of `shape`."""
    box = mouth_box(loop, shape)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.round((loop - (x0, y0)) * 4).astype(np.int32)  # 2 bits of sub-pixel precision
    cv2.fillPoly(mask, [poly], 1, cv2.LINE_8, shift=2)
    ys, xs = np.nonzero(mask)
    return ys + y0, xs + x0


def follow_jaw(gmap: F32, source_loop: F64, target_loop: F64) -> None:
    """Remap the target mouth opening of a backward map (S, S, 2) in place (see module doc).

    source_loop, target_loop: (20, 2) inner-lip points in the map's pixels (topology order)."""
    target = LipProfile.of(target_loop)
    source = LipProfile.of(source_loop)
    if target.width < MIN_WIDTH or source.width < MIN_WIDTH:
        return
    inside = _inside(target_loop, (gmap.shape[0], gmap.shape[1]))
    if inside is None:
        return
    ys, xs = inside
    uv = target.local(np.stack([xs, ys], axis=1).astype(np.float64))
    gmap[ys, xs] = source.image(jaw_split(source, target, uv).source).astype(np.float32)


@dataclass(frozen=True)
class MouthFill:
    """The painted cavity over image[y0:y0+h, x0:x0+w]: alpha (h, w) in [0, 1] and its colour
    (h, w, 3) RGB in 0..255."""

    y0: int
    x0: int
    alpha: F32
    colour: F64

    def apply(self, image: ImageArray) -> None:
        """Blend the cavity into `image` (H, W, 3) uint8, in place."""
        h, w = self.alpha.shape
        roi = image[self.y0 : self.y0 + h, self.x0 : self.x0 + w].astype(np.float32)
        a = self.alpha[..., None]
        out = np.clip(roi * (1 - a) + self.colour * a, 0, 255)
        image[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = out.astype(np.uint8)

    def layer(self, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)) -> F32:
        """(H, W, 4) float32 over the part of the image of `shape` (H, W) that starts at
        `origin` (y, x): RGB premultiplied by alpha, in [0, 1], then alpha; image * (1 - alpha)
        + RGB is the painted image."""
        out = np.zeros((*shape, 4), np.float32)
        h, w = self.alpha.shape
        y0, x0 = self.y0 - origin[0], self.x0 - origin[1]
        view = out[y0 : y0 + h, x0 : x0 + w]
        view[..., :3] = self.colour * (self.alpha[..., None] / 255.0)  # float32 on assignment
        view[..., 3] = self.alpha
        return out


def mouth_fill_in_box(
    pixels: ImageArray,
    box: tuple[int, int, int, int],
    source_loop: F64,
    target_loop: F64,
    lip_color: F64,
) -> MouthFill | None:
    """`mouth_fill` for an image of which only the mouth's box was made: `box` (x0, y0, x1, y1)
    is mouth_box(target_loop, image shape) and `pixels` (y1 - y0, x1 - x0, 3) its content. The
    loops are in the whole image's pixels, and so is the fill returned: the same as mouth_fill
    over the whole image (which reads nothing outside that box)."""
    x0, y0 = box[0], box[1]
    shift = np.array([x0, y0], np.float64)
    fill = mouth_fill(pixels, source_loop - shift, target_loop - shift, lip_color)
    return None if fill is None else replace(fill, y0=fill.y0 + y0, x0=fill.x0 + x0)


def paint_mouth_interior(
    image: ImageArray, source_loop: F64, target_loop: F64, lip_color: F64
) -> None:
    """Paint a cavity into the revealed gap of the target opening of `image` (in place).

    source_loop, target_loop: (20, 2) inner-lip points in `image` pixels (topology order):
    the portrait's own mouth and the one to draw. lip_color: (3,) RGB of the portrait's lips.
    """
    fill = mouth_fill(image, source_loop, target_loop, lip_color)
    if fill is not None:
        fill.apply(image)


def mouth_box(target_loop: F64, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) a box around a (20, 2) inner-lip loop, clipped to an image of `shape`
    (H, W, ...): every pixel `follow_jaw` remaps or `mouth_fill` paints for it. None when that
    is (next to) nothing."""
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(target_loop.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(target_loop.max(axis=0)).astype(int) + 3, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def mouth_fill(
    image: ImageArray, source_loop: F64, target_loop: F64, lip_color: F64
) -> MouthFill | None:
    """The cavity `paint_mouth_interior` paints (arguments as there), or None where there is
    nothing to paint. `image` is only read: an open portrait mouth's own inside is sampled
    from it."""
    target = LipProfile.of(target_loop)
    source = LipProfile.of(source_loop)
    box = mouth_box(target_loop, image.shape[:2])
    if target.width < MIN_WIDTH or source.width < MIN_WIDTH or box is None:
        return None
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1]
    uv = target.local(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    split = jaw_split(source, target, uv)
    depth, up_t, low_t, gap_s = split.depth, split.upper, split.lower, split.portrait_gap
    opening = float(np.max(low_t - up_t))
    if opening <= 0:
        return None
    shut_px = np.clip(1.0 - gap_s / CLOSED, 0.0, 1.0)
    # The cavity fades in from the lips (a closed portrait mouth) or from the teeth bands (an
    # open one: over most of the gap's half-height, so that no hard dark line crosses it).
    revealed = np.maximum(low_t - up_t - gap_s, 0.0)
    soft = np.maximum(1.0, shut_px * 0.12 * opening + (1 - shut_px) * 0.4 * revealed)
    soft = np.minimum(soft, np.maximum(revealed / 2, 0.25))  # a thin gap is still solid
    gap = np.clip(depth / soft, 0.0, 1.0).reshape(ys.shape).astype(np.float32)
    polygon = np.zeros(ys.shape, np.float32)
    cv2.fillPoly(polygon, [np.round((target_loop - (x0, y0)) * 4).astype(np.int32)], 1.0,
                 cv2.LINE_AA, shift=2)  # fmt: skip
    alpha = gap * polygon
    if not alpha.any():
        return None
    roi = image[y0:y1, x0:x1].astype(np.float32)
    mid = 0.5 * (up_t + low_t)
    centre = (1.0 - np.clip(np.abs(uv[:, 1] - mid) / max(opening / 2, 1.0), 0.0, 1.0)).reshape(
        ys.shape
    )[..., None]
    # A closed portrait mouth: the lip colour, much darker, darkest in the middle, with a soft
    # light band of upper teeth under the upper lip once the mouth is open enough.
    closed = lip_color[None, None, :] * (0.22 - 0.12 * centre)
    band = np.clip(1.0 - (uv[:, 1] - up_t) / max(opening * 0.32, 1.0), 0.0, 1.0)
    teeth = (band.reshape(ys.shape) * np.clip(opening / 16 - 0.4, 0, 0.8))[..., None]
    # Teeth take the portrait's own light: a pale tint of the lip colour, never pure white.
    tooth_color = 0.45 * lip_color + 0.55 * np.array([225.0, 218.0, 205.0])
    closed = closed * (1 - teeth) + tooth_color * teeth
    shut = shut_px.reshape(ys.shape)[..., None]
    cavity = closed
    if shut.min() < 1.0:  # a closed portrait mouth (the common case) needs none of this
        # An open one: its own inside, as the gap samples it along the portrait's mid line
        # (the cavity, or the dark line where its rows of teeth meet). One row stretched is
        # streaky, so the gap takes the mean of its darkest fifth (no brighter than CAVITY_MAX
        # of the lips), slightly darker towards the middle.
        core = alpha > 0.5
        if core.sum() >= 8:
            inner = roi[core]
            luma = inner @ LUMA.astype(np.float32)
            own = inner[luma <= np.percentile(luma, 20)].mean(axis=0)
            # An inside is darker than the lips around it, even where the mid line is teeth.
            own = own * min(1.0, CAVITY_MAX * float(lip_color @ LUMA) / max(float(own @ LUMA), 1))
        else:
            own = closed.reshape(-1, 3).mean(axis=0)
        opened = own[None, None, :] * (1.0 - 0.15 * centre)
        cavity = shut * closed + (1 - shut) * opened
    colour = np.broadcast_to(cavity, (*alpha.shape, 3)).astype(np.float64)
    return MouthFill(int(y0), int(x0), alpha.astype(np.float32), colour)


def lip_color(image: ImageArray, points: F64, topo: FaceTopology) -> F64:
    """(3,) mean RGB of the lips (between the outer and inner loops of `points`, in `image`
    pixels); a plain red where they cover almost nothing."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[topo.lips_outer, :2]).astype(np.int32)], 1)
    cv2.fillPoly(mask, [np.round(points[topo.lips_inner, :2]).astype(np.int32)], 0)
    if mask.sum() < 4:
        return np.array([120.0, 50.0, 50.0])
    return image[mask.astype(bool)].mean(axis=0).astype(np.float64)

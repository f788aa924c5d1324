"""The mouth interior: teeth follow the lips, a cavity fills only the newly revealed gap."""

from __future__ import annotations

import numpy as np
import pytest

from engine.capture.video_source import VideoFileSource
from engine.geometry.mouth import (
    LipProfile,
    arc_positions,
    follow_jaw,
    jaw_split,
    mouth_box,
    mouth_fill,
    mouth_fill_in_box,
    paint_mouth_interior,
)
from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import load_topology
from engine.personalize.source import most_neutral
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Controls
from tests.conftest import shared_clip

CENTRE = np.array([64.0, 64.0])
WIDTH = 40.0


def lip_loop(gap: float, width: float = WIDTH, centre: np.ndarray = CENTRE) -> np.ndarray:
    """(20, 2) inner-lip loop in topology order: two arcs `gap` apart at the middle."""
    up, low = arc_positions()
    loop = np.zeros((20, 2))
    for idx, sign in ((up, -1.0), (low, 1.0)):
        u = np.linspace(0.0, width, len(idx))
        v = sign * gap / 2 * np.sin(np.pi * u / width)
        loop[idx] = np.stack([u - width / 2, v], axis=1) + centre
    return loop


def identity_map(size: int = 128) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def test_lip_profile_round_trips_and_orders_the_lips() -> None:
    p = LipProfile.of(lip_loop(10.0))
    assert p.width == pytest.approx(WIDTH)
    xy = np.array([[60.0, 61.0], [70.0, 66.0]])
    np.testing.assert_allclose(p.image(p.local(xy)), xy)
    up, low = p.lips(np.array([WIDTH / 2]))
    assert up[0] == pytest.approx(-5.0) and low[0] == pytest.approx(5.0)


def test_teeth_keep_their_size_and_the_gap_opens_between_them() -> None:
    gmap = identity_map()
    before = gmap.copy()
    follow_jaw(gmap, lip_loop(8.0), lip_loop(20.0))
    x = 64
    # 2 px under the target's upper lip samples 2 px under the portrait's (the fan: 5 px).
    assert gmap[64 - 10 + 2, x, 1] == pytest.approx(64 - 4 + 2, abs=0.05)
    # Likewise above the lower lip, and the gap samples the portrait's mid line.
    assert gmap[64 + 10 - 2, x, 1] == pytest.approx(64 + 4 - 2, abs=0.05)
    assert gmap[64, x, 1] == pytest.approx(64.0, abs=0.05)
    assert gmap[64 - 10 + 2, x, 0] == pytest.approx(x, abs=0.05)
    # Outside the opening nothing moves.
    changed = np.any(gmap != before, axis=-1)
    assert not changed[:50].any() and not changed[80:].any()
    assert not changed[:, :40].any() and not changed[:, 90:].any()


def test_an_opening_near_the_portraits_is_squeezed_or_stretched_evenly() -> None:
    uv = np.array([[WIDTH / 2, -1.0], [WIDTH / 2, 1.0]])  # 1 px from each lip of a 4 px opening
    split = jaw_split(LipProfile.of(lip_loop(8.0)), LipProfile.of(lip_loop(4.0)), uv)
    np.testing.assert_allclose(split.source[:, 1], [-2.0, 2.0], atol=1e-6)
    assert np.all(split.depth <= 0)  # nothing revealed, nothing painted
    # Slightly wider than the portrait's (9 px for 8): close to an even stretch, no seam.
    uv = np.array([[WIDTH / 2, -4.5 + 2.0], [WIDTH / 2, 0.0]])
    split = jaw_split(LipProfile.of(lip_loop(8.0)), LipProfile.of(lip_loop(9.0)), uv)
    assert split.source[0, 1] == pytest.approx(-4.0 + 2.0 * 8 / 9, abs=0.1)
    assert split.depth[1] < 0.2


def test_cavity_only_in_the_revealed_gap() -> None:
    lip = np.array([150.0, 60.0, 60.0])
    image = np.full((128, 128, 3), 180, np.uint8)
    image[64 - 10 + 1 : 64 - 10 + 3, 50:78] = 40  # the portrait's own dark inside, upper band
    image[61:68, 51:77:2] = 230  # the gap's stretched mid line: streaks
    before = image.copy()
    paint_mouth_interior(image, lip_loop(8.0), lip_loop(20.0), lip)
    gap = image[64, 56:73].astype(float)
    assert gap.mean() < 60 and gap.std() < 5  # dark and even: the portrait's own inside
    np.testing.assert_array_equal(image[64 - 10 + 3, 60:69], before[64 - 10 + 3, 60:69])
    np.testing.assert_array_equal(image[64 + 10 - 2, 60:69], before[64 + 10 - 2, 60:69])
    assert np.all(image[:50] == 180) and np.all(image[80:] == 180)
    # A portrait with no opening of its own: a cavity in the lip colour, with light upper teeth.
    closed = np.full((128, 128, 3), 180, np.uint8)
    paint_mouth_interior(closed, lip_loop(0.5), lip_loop(24.0), lip)
    assert closed[64, 64].mean() < 60
    assert closed[64 - 12 + 5, 64].mean() > closed[64, 64].mean() + 40  # the teeth hint
    # An opening no wider than the portrait's reveals nothing.
    same = np.full((128, 128, 3), 180, np.uint8)
    paint_mouth_interior(same, lip_loop(8.0), lip_loop(8.0), lip)
    assert np.all(same == 180)


def test_the_fill_as_a_layer_paints_what_paint_mouth_interior_paints() -> None:
    """The networks' input takes the cavity as a premultiplied layer over a float image: it
    must be the same cavity the app paints into its uint8 frame."""
    lip = np.array([150.0, 60.0, 60.0])
    rng = np.random.default_rng(0)
    for source_gap, target_gap in ((0.5, 24.0), (8.0, 20.0)):
        image = rng.integers(90, 220, (128, 128, 3)).astype(np.uint8)
        painted = image.copy()
        paint_mouth_interior(painted, lip_loop(source_gap), lip_loop(target_gap), lip)
        fill = mouth_fill(image, lip_loop(source_gap), lip_loop(target_gap), lip)
        assert fill is not None
        layer = fill.layer((128, 128))
        assert layer.shape == (128, 128, 4) and layer.min() >= 0 and layer[..., 3].max() <= 1
        over = image / 255.0 * (1 - layer[..., 3:]) + layer[..., :3]
        assert np.abs(over * 255.0 - painted).max() <= 1.0
        assert (layer[..., 3] > 0).sum() >= (painted != image).any(axis=2).sum() > 50
    assert mouth_fill(image, lip_loop(8.0), lip_loop(8.0), lip) is None  # nothing revealed


def test_the_fill_of_the_mouth_box_alone_is_the_fill_of_the_whole_image() -> None:
    """The renderer and the training pairs make only the mouth's box of the warp: the cavity
    must be the one the whole image gets, at the same place."""
    lip = np.array([150.0, 60.0, 60.0])
    rng = np.random.default_rng(1)
    for source_gap, target_gap, dx in ((0.5, 24.0, 0.0), (8.0, 20.0, 17.3), (0.5, 24.0, -58.0)):
        image = rng.integers(60, 220, (128, 128, 3)).astype(np.uint8)
        src, dst = lip_loop(source_gap), lip_loop(target_gap) + np.array([dx, 3.7])
        whole = mouth_fill(image, src, dst, lip)
        box = mouth_box(dst, image.shape)
        assert whole is not None and box is not None
        x0, y0, x1, y1 = box
        part = mouth_fill_in_box(image[y0:y1, x0:x1], box, src, dst, lip)
        assert part is not None and (part.y0, part.x0) == (whole.y0, whole.x0)
        np.testing.assert_array_equal(part.alpha, whole.alpha)
        np.testing.assert_array_equal(part.colour, whole.colour)
        np.testing.assert_array_equal(part.layer((128, 128)), whole.layer((128, 128)))
        # The box's own layer is that layer's crop.
        crop = whole.layer((128, 128))[y0:y1, x0:x1]
        np.testing.assert_array_equal(part.layer((y1 - y0, x1 - x0), (y0, x0)), crop)


def test_a_smiling_portrait_keeps_its_teeth_when_the_driver_opens_wide() -> None:
    """deepface img22 smiles with her teeth showing; mead_W009 bares hers. Her upper teeth
    must stay teeth (bright, their own size) above a dark gap, not stretch and darken."""
    portrait_path = shared_clip("portraits/real_portrait/deepface__tests_unit_dataset_img22.jpg")
    clip = shared_clip(
        "videos/mead_W009/dreamtalk__data_style_clip_video_W009_front_angry_level3_001.mp4"
    )
    with VideoFileSource(clip, max_frames=60) as src:
        frames = list(src)
    with FaceTracker() as tracker:
        tracked = [tracker.track(f.image) for f in frames]
    neutral = frames[most_neutral([f.image for f in frames], tracked)]
    portrait = prepare_portrait(portrait_path, output_size=(512, 512))
    pipeline = Pipeline(portrait, neural=None)
    try:
        assert pipeline.neutral_from(neutral) is not None
        renders = []
        for f in frames:
            motion = pipeline.drive(pipeline.track(f, 0.5), f.timestamp_s)
            renders.append(pipeline.render_motion(motion, Controls()))
    finally:
        pipeline.close()
    loop = load_topology().lips_inner
    source = LipProfile.of(portrait.landmarks.points[loop, :2].astype(np.float64))
    profiles = [LipProfile.of(r.target[loop, :2]) for r in renders]
    mid = [p.lips(np.array([p.width / 2])) for p in profiles]
    widest = int(np.argmax([low[0] - up[0] for up, low in mid]))
    target, out = profiles[widest], renders[widest].image
    s_up, s_low = source.lips(np.array([source.width / 2]))
    t_up, t_low = mid[widest]
    k = source.width / target.width
    assert (t_low - t_up)[0] * k > 1.5 * (s_low - s_up)[0]  # opened well beyond the portrait

    def luma(image: np.ndarray, profile: LipProfile, vs: np.ndarray) -> float:
        us = np.linspace(0.35, 0.65, 7) * profile.width
        uv = np.stack(np.meshgrid(us, vs), axis=-1).reshape(-1, 2)
        xy = np.round(profile.image(uv)).astype(int)
        return float(image[xy[:, 1], xy[:, 0]].astype(float).mean())

    half_s = (s_low - s_up)[0] / 2
    teeth_portrait = luma(portrait.image, source, s_up[0] + np.linspace(0.3, 0.7, 5) * half_s)
    teeth_out = luma(out, target, t_up[0] + np.linspace(0.3, 0.7, 5) * half_s / k)
    gap_out = luma(out, target, np.array([(t_up + t_low)[0] / 2]))
    assert teeth_portrait > 150  # the portrait does show teeth there
    assert teeth_out > 0.85 * teeth_portrait
    assert gap_out < 0.4 * teeth_out

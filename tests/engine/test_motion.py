"""Head pose, expression, retargeting and the face-lost policy, on real landmarks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.landmarks.mediapipe_tracker import FaceTracker
from engine.landmarks.topology import inter_ocular, load_topology, mouth_opening
from engine.motion.decompose import MotionEstimator
from engine.motion.head import FaceShape
from engine.motion.presence import PresenceGate
from engine.motion.procrustes import fit_similarity
from engine.motion.retarget import retarget
from engine.motion.rotation import exp_rotation, log_rotation, scale_rotation
from engine.types import Controls, Frame, Landmarks, Motion

TOPO = load_topology()
EXTENT = TOPO.canonical_extent()


@pytest.fixture(scope="module")
def tracked(sample_frames: list[Frame]) -> list[Landmarks]:
    with FaceTracker() as tracker:
        out = [tracker.track(f.image) for f in sample_frames]
    assert all(lm is not None for lm in out), "the bundled sample must be tracked throughout"
    return [lm for lm in out if lm is not None]


def _rotation(yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    return exp_rotation(np.radians([pitch_deg, yaw_deg, roll_deg]))


def _transform(lm: Landmarks, rot: np.ndarray, stretch_y: float = 1.0) -> Landmarks:
    c = lm.points.mean(axis=0)
    pts = (lm.points - c) @ rot.T
    pts[:, 1] *= stretch_y
    return Landmarks(points=(pts + c).astype(np.float32), image_size=lm.image_size)


def test_fit_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3))
    rot = _rotation(20, -10, 5)
    dst = 3.5 * src @ rot.T + np.array([10.0, -4.0, 2.0])
    scale, r, t = fit_similarity(src, dst)
    assert scale == pytest.approx(3.5)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [10.0, -4.0, 2.0], atol=1e-9)
    with pytest.raises(ValueError):
        fit_similarity(src[:2], dst[:2])


def test_rotation_maps_round_trip_and_scale() -> None:
    rot = _rotation(25, 10, -8)
    np.testing.assert_allclose(exp_rotation(log_rotation(rot)), rot, atol=1e-12)
    half = scale_rotation(rot, 0.5)
    np.testing.assert_allclose(half @ half, rot, atol=1e-9)
    np.testing.assert_allclose(scale_rotation(rot, 0.0), np.eye(3), atol=1e-12)


def test_neutral_face_gives_no_motion(tracked: list[Landmarks]) -> None:
    est = MotionEstimator(TOPO)
    est.set_neutral(tracked[0])
    m = est.estimate(tracked[0])
    assert np.abs(m.expression).max() < 1e-5
    np.testing.assert_allclose(m.rotation, np.eye(3), atol=1e-6)
    assert m.scale_ratio == pytest.approx(1.0)


def test_head_rotation_is_pose_not_expression(tracked: list[Landmarks]) -> None:
    est = MotionEstimator(TOPO)
    est.set_neutral(tracked[0])
    rot = _rotation(18, 6, 4)
    m = est.estimate(_transform(tracked[0], rot))
    np.testing.assert_allclose(m.rotation, rot, atol=1e-6)
    assert np.abs(m.expression).max() < 1e-4


def test_auto_neutral_from_first_frames(tracked: list[Landmarks]) -> None:
    est = MotionEstimator(TOPO, auto_frames=5)
    assert not est.calibrated
    for lm in tracked[:5]:
        est.estimate(lm)
    assert est.calibrated
    est.calibrate()
    assert not est.calibrated


def _portrait_shape(tracked: list[Landmarks]) -> FaceShape:
    # A different face: the sample's neutral made rounder (wider) and turned a little.
    lm = _transform(tracked[0], _rotation(-8))
    pts = lm.points.copy()
    pts[:, 0] = (pts[:, 0] - pts[:, 0].mean()) * 1.2 + pts[:, 0].mean()
    return FaceShape.of(pts, TOPO)


def test_retarget_with_zero_strength_is_the_portrait(tracked: list[Landmarks]) -> None:
    portrait = _portrait_shape(tracked)
    est = MotionEstimator(TOPO)
    est.set_neutral(tracked[0])
    motion = est.estimate(_transform(tracked[40], _rotation(15)))
    target = retarget(portrait, EXTENT, motion, Controls(0.0, 0.0, 0.5))
    own = portrait.shape * portrait.pose.scale @ portrait.pose.rotation.T
    np.testing.assert_allclose(target, own + portrait.pose.translation, atol=1e-6)


def test_self_reenactment_reproduces_the_driver(tracked: list[Landmarks]) -> None:
    """Portrait == the driver's neutral face: the target is the driver's own landmarks."""
    est = MotionEstimator(TOPO)
    est.set_neutral(tracked[0])
    portrait = FaceShape.of(tracked[0].points, TOPO)
    for lm in tracked[10::15]:
        target = retarget(portrait, EXTENT, est.estimate(lm), Controls())
        err = np.linalg.norm(target[:, :2] - lm.points[:, :2], axis=1).max()
        assert err < 1e-3 * inter_ocular(lm.points)


def test_long_faced_driver_does_not_stretch_the_portrait(tracked: list[Landmarks]) -> None:
    portrait = _portrait_shape(tracked)
    plain, long = MotionEstimator(TOPO), MotionEstimator(TOPO)
    plain.set_neutral(tracked[0])
    long.set_neutral(_transform(tracked[0], np.eye(3), stretch_y=1.3))
    # At the driver's neutral, the portrait keeps its own face exactly.
    neutral_target = retarget(
        portrait, EXTENT, long.estimate(_transform(tracked[0], np.eye(3), 1.3)), Controls()
    )
    own = (
        portrait.shape * portrait.pose.scale @ portrait.pose.rotation.T + portrait.pose.translation
    )
    np.testing.assert_allclose(neutral_target, own, atol=1e-3)
    iod = inter_ocular(own)
    gaps = []
    for lm in tracked[5::10]:
        a = retarget(portrait, EXTENT, plain.estimate(lm), Controls(pose_strength=0.0))
        b = retarget(
            portrait,
            EXTENT,
            long.estimate(_transform(lm, np.eye(3), 1.3)),
            Controls(pose_strength=0.0),
        )
        gaps.append(np.linalg.norm(a[:, :2] - b[:, :2], axis=1))
    # A 30% longer driver moves the portrait's landmarks by about 1% of its eye distance.
    assert np.mean(gaps) < 0.012 * iod and np.max(gaps) < 0.06 * iod


def test_expression_strength_scales_the_mouth(tracked: list[Landmarks]) -> None:
    est = MotionEstimator(TOPO)
    est.set_neutral(tracked[0])
    opening = [mouth_opening(lm.points) for lm in tracked]
    widest = tracked[int(np.argmax(opening))]
    assert max(opening) > opening[0] + 0.02, "the sample clip must open its mouth"
    portrait = FaceShape.of(tracked[0].points, TOPO)
    motion = est.estimate(widest)
    gaps = [
        mouth_opening(retarget(portrait, EXTENT, motion, Controls(expression_strength=s)))
        for s in (0.0, 0.5, 1.0, 2.0)
    ]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0] + 0.03


def _motion(value: float) -> Motion:
    return Motion(
        rotation=np.eye(3),
        translation=np.array([value, 0, 0]),
        scale_ratio=1.0,
        expression=np.full((478, 3), value, np.float32),
    )


def test_face_lost_holds_then_eases_to_neutral_within_a_second() -> None:
    gate = PresenceGate(hold_s=0.3, ease_out_s=0.5, ease_in_s=0.2)
    fps = 30
    for i in range(30):
        out = gate.update(_motion(1.0), i / fps)
    assert out.presence == pytest.approx(1.0)
    weights = []
    for i in range(30, 70):  # face gone from t = 1.0 s
        out = gate.update(None, i / fps)
        weights.append(out.presence)
        assert out.translation[0] == 1.0  # the last motion is kept, only its weight changes
    t = np.arange(30, 70) / fps - 1.0
    assert all(w == pytest.approx(1.0) for w, s in zip(weights, t, strict=True) if s <= 0.3)
    assert all(a >= b for a, b in itertools.pairwise(weights))
    assert all(w == 0.0 for w, s in zip(weights, t, strict=True) if s >= 0.8)
    # The face returns: ease back in, no jump.
    back = [gate.update(_motion(2.0), (70 + i) / fps).presence for i in range(8)]
    assert back[0] < 0.5 and back[-1] == pytest.approx(1.0)


def test_never_seen_a_face_stays_neutral() -> None:
    gate = PresenceGate()
    out = gate.update(None, 0.0)
    assert out.presence == 0.0 and np.abs(out.expression).max() == 0.0

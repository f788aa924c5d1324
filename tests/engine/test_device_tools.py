"""The GPU-machine tooling, exercised on this CPU: MediaPipe record/replay, the packed training
clips, and the training loop's background pair workers and time limit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.capture.image_file import load_image
from engine.evaluation.metrics import psnr
from engine.landmarks.mediapipe_tracker import FaceTracker, detect_faces
from engine.models.identity import load_identity_encoder
from engine.tools.device_pack import pack_clips, packed_frames
from engine.tools.gpu_run import unpack
from engine.tools.mp_replay import install_replay, recording
from engine.training.clips import load_clip, save_clip, with_drive
from engine.training.identities import clip_identities
from engine.training.pairs import batch_stream
from engine.training.trainer import TrainConfig, run
from engine.types import Frame
from tests.engine.training_tools import sample_clip_data


def test_replay_answers_like_mediapipe_and_refuses_unrecorded_sizes(
    portraits_dir: Path, sample_frames: list[Frame], tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    image = load_image(portraits_dir / "grace_hopper.jpg")
    frames = [f.image for f in sample_frames[:6]]
    path = tmp_path / "mp.npz"
    with recording(path):
        still = detect_faces(image)
        with FaceTracker() as tracker:
            tracked = [tracker.track(f) for f in frames]
    assert len(still) == 1 and all(t is not None for t in tracked)

    monkeypatch.setitem(sys.modules, "mediapipe", sys.modules.get("mediapipe"))  # restored after
    install_replay(path)
    assert "replay" in sys.modules["mediapipe"].__version__
    # Another decoder's rounding: the nearest recorded image still answers.
    noisy = np.clip(
        image.astype(np.int16) + np.random.default_rng(0).integers(-2, 3, image.shape), 0, 255
    )
    again = detect_faces(noisy.astype(np.uint8))
    np.testing.assert_allclose(again[0].points, still[0].points, atol=1e-3)
    with FaceTracker() as tracker:
        for i in (4, 1):
            got = tracker.track(frames[i])
            assert got is not None and tracked[i] is not None
            np.testing.assert_allclose(got.points, tracked[i].points, atol=1e-3)
    with pytest.raises(RuntimeError, match="no mesh-static call on a"):
        detect_faces(np.zeros((64, 48, 3), np.uint8))


def test_packed_clips_unpack_close_to_the_cache(tmp_path: Path) -> None:
    clip = with_drive(sample_clip_data(), sources=[0, 13])
    assert clip.drive is not None
    save_clip(clip, tmp_path / "cache" / f"{clip.identity}__{clip.name}.npz")
    size = pack_clips(tmp_path / "cache", tmp_path / "packed", frames=10, quality=90)
    assert 0 < size < clip.crops.nbytes / 5  # JPEG: several times smaller
    unpack(tmp_path / "packed", tmp_path / "out")
    got = load_clip(next((tmp_path / "out").glob("*.npz")))
    keep = packed_frames(clip.valid, [0, 13], 10)
    assert 13 in keep and got.frames == len(keep) <= 10
    assert got.identity == clip.identity and got.crops_hr is None
    assert min(psnr(a, b) for a, b in zip(got.crops, clip.crops[keep], strict=True)) > 32
    np.testing.assert_allclose(got.points, clip.points[keep], atol=0.13)  # float16 at 256 px
    np.testing.assert_allclose(got.person, clip.person, atol=1 / 255)
    # The recorded targets travel too: the same source frames, the same targets (int8 steps).
    assert got.drive is not None
    np.testing.assert_array_equal(keep[got.drive.sources], clip.drive.sources)
    np.testing.assert_array_equal(got.drive.valid, clip.drive.valid[:, keep])
    np.testing.assert_allclose(got.drive.portrait, clip.drive.portrait, atol=0.13)
    ok = clip.drive.valid[:, keep]
    np.testing.assert_allclose(got.drive.targets[ok], clip.drive.targets[:, keep][ok], atol=0.13)


def test_background_workers_draw_different_pairs() -> None:
    clip = sample_clip_data()
    idents = clip_identities([clip], load_identity_encoder())
    stream = batch_stream([clip], idents, seed=3, batch=2, workers=2)
    a, b = next(stream), next(stream)  # one from each worker
    assert a.source.shape == (2, 3, 256, 256) and a.grid.shape == (2, 256, 256, 2)
    assert not (a.source.equal(b.source) and a.driving.equal(b.driving))


def test_time_limit_stops_and_saves(tmp_path: Path) -> None:
    clip = sample_clip_data()
    idents = clip_identities([clip], load_identity_encoder())
    cfg = TrainConfig(stage="warp", steps=10_000, batch=1, workers=1, max_minutes=0.05)
    run(cfg, [clip], idents, tmp_path, device="cpu")
    meta = json.loads((tmp_path / "train.json").read_text())
    assert 1 <= meta["step"] < 10_000
    assert (tmp_path / "warp" / "model.safetensors").is_file()

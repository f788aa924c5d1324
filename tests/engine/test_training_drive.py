"""Training pairs carry the app's own targets (engine.training.drive), recorded by running the
real Pipeline on a real clip's crops; caches from before are upgraded in place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.geometry.drawing import landmark_maps
from engine.landmarks.topology import mouth_opening
from engine.models.blocks import warp
from engine.paths import sample_driving_clip
from engine.training.clips import cache_clips, load_clip, save_clip, with_drive
from engine.training.drive import record_drive, spread_sources
from engine.training.pairs import PairSampler
from tests.engine.training_tools import sample_clip_data


@pytest.fixture(scope="module")
def clip():  # type: ignore[no-untyped-def]
    return with_drive(sample_clip_data(), [0, 12])


def test_spread_sources_covers_the_clip() -> None:
    valid = np.ones(150, bool)
    valid[:3] = False
    assert spread_sources(valid, 4) == [3, 52, 100, 149]
    assert spread_sources(np.zeros(5, bool)) == []
    assert spread_sources(np.array([False, True]), 4) == [1]


def test_recorded_targets_follow_the_driver(clip) -> None:  # type: ignore[no-untyped-def]
    drive = clip.drive
    assert drive is not None
    n = clip.frames
    assert list(drive.sources) == [0, 12]
    assert drive.portrait.shape == (2, 478, 3) and drive.targets.shape == (2, n, 478, 3)
    assert drive.valid.all()
    for k, s in enumerate(drive.sources):
        # Driven by itself, the portrait stays where it is (within a pixel on average) ...
        still = np.abs(drive.targets[k, s, :, :2] - drive.portrait[k, :, :2]).mean()
        assert still < 1.0
        # ... and driven by the clip, the target moves with the driver's own landmarks.
        moved = np.abs(drive.targets[k, ..., :2] - drive.portrait[k, None, :, :2]).mean((1, 2))
        truth = np.abs(clip.points[..., :2] - clip.points[s, None, :, :2]).mean((1, 2))
        assert np.corrcoef(moved, truth)[0, 1] > 0.8
    mouths_t = [mouth_opening(p) for p in drive.targets[0]]
    mouths_d = [mouth_opening(p) for p in clip.points]
    assert np.corrcoef(mouths_t, mouths_d)[0, 1] > 0.8


def test_sources_without_a_face_are_left_out(clip) -> None:  # type: ignore[no-untyped-def]
    crops = clip.crops.copy()
    crops[5] = 0
    drive = record_drive(crops[:8], [5, 0])
    assert list(drive.sources) == [0]
    assert drive.index(0) == 0 and drive.index(5) is None
    assert drive.targets.shape == (1, 8, 478, 3) and not drive.valid[0, 5]


def test_pairs_use_the_recorded_targets(clip) -> None:  # type: ignore[no-untyped-def]
    idents = {clip.name: np.ones(128, np.float32) / np.sqrt(128)}
    sampler = PairSampler([clip], idents, seed=3)
    for _ in range(20):  # random picks: sources are the recorded frames only
        _, s, d = sampler.pick()
        assert s in (0, 12) and d != s
    grid, smap, tmap = sampler.pair_arrays(clip, 12, 3)
    size = clip.crops.shape[1]
    np.testing.assert_allclose(smap, landmark_maps(clip.drive.portrait[1], size))
    np.testing.assert_allclose(tmap, landmark_maps(clip.drive.targets[1, 3], size))
    # The recorded geometry moves the portrait towards the driving frame.
    b = sampler.collate([(clip, 12, d) for d in (0, 3, 20)])
    geo = (warp(b.source, b.grid) - b.driving).abs().mean()
    assert geo < (b.source - b.driving).abs().mean()
    assert torch.isfinite(b.grid).all() and grid.shape == (size, size, 2)


def test_cache_round_trip_and_upgrade(clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    save_clip(clip, tmp_path / "c.npz")
    back = load_clip(tmp_path / "c.npz")
    assert back.drive is not None
    for field in dataclasses.fields(back.drive):
        name = field.name
        np.testing.assert_array_equal(getattr(back.drive, name), getattr(clip.drive, name))
    # A cache written before the app's targets existed gains them on the next cache_clips.
    videos = tmp_path / "videos" / "grace_hopper"
    videos.mkdir(parents=True)
    (videos / "sample.mp4").symlink_to(sample_driving_clip())
    cache = tmp_path / "cache"
    old = dataclasses.replace(clip, drive=None)
    save_clip(old, cache / "grace_hopper__sample.npz")
    assert load_clip(cache / "grace_hopper__sample.npz").drive is None
    paths = cache_clips(tmp_path / "videos", cache, max_frames=24)
    assert paths == [cache / "grace_hopper__sample.npz"]
    upgraded = load_clip(paths[0])
    assert upgraded.drive is not None and len(upgraded.drive.sources) == 4
    np.testing.assert_array_equal(upgraded.crops, clip.crops)

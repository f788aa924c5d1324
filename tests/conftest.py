"""Shared fixtures: bundled assets (always present) and the development face data (optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.capture.video_source import VideoFileSource
from engine.paths import assets_dir, shared_faces_dir
from engine.types import Frame

REPO = Path(__file__).resolve().parents[1]


def faces_dir() -> Path:
    """../shared/data/faces, or skip the test with the reason."""
    path = shared_faces_dir()
    if not path.is_dir():
        pytest.skip(f"development face data not found at {path} (absent on a fresh clone)")
    return path


def shared_clip(relative: str) -> Path:
    path = faces_dir() / relative
    if not path.exists():
        pytest.skip(f"{relative} missing from the development face data")
    return path


@pytest.fixture(scope="session")
def portraits_dir() -> Path:
    return assets_dir() / "portraits"


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    return assets_dir() / "driving" / "sample.mp4"


@pytest.fixture(scope="session")
def sample_frames(sample_clip: Path) -> list[Frame]:
    """The first 80 frames of the bundled sample clip (a real, moving face)."""
    with VideoFileSource(sample_clip, max_frames=80) as src:
        return list(src)


@pytest.fixture(scope="session")
def obama_frames() -> list[Frame]:
    """120 frames of a real 256x256 talking-head clip from the development data."""
    clip = shared_clip("videos/obama/styletalk__samples_source_video_video_Obama_clip1.mp4")
    with VideoFileSource(clip, max_frames=120) as src:
        return list(src)


def blank_like(frame: Frame) -> Frame:
    """The same frame with the picture replaced by flat grey (no face)."""
    grey = np.full_like(frame.image, 127)
    return Frame(image=grey, index=frame.index, timestamp_s=frame.timestamp_s)

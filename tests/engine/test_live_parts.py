"""The live path's small parts: depth-1 slots, camera listing, looping playback, frame layout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.capture.cameras import CameraInfo, linux_cameras
from engine.capture.frame_layout import FrameLayout, backdrop, fit_inside
from engine.capture.playback import LoopingVideo
from engine.capture.video_source import VideoFileSource
from engine.capture.virtual_camera import VirtualCameraSettings, visage_device
from engine.paths import portraits_dir
from engine.runtime.slots import LatestSlot

# --- slots ------------------------------------------------------------------------------------


def test_slot_keeps_only_the_newest_and_counts_the_dropped() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.peek() == 4 and slot.dropped == 4
    assert slot.take() == 4
    assert slot.take() is None and slot.peek() is None


def test_slot_take_waits_for_a_producer() -> None:
    slot: LatestSlot[str] = LatestSlot()
    threading.Timer(0.05, lambda: slot.put("frame")).start()
    started = time.monotonic()
    assert slot.take(timeout=2.0) == "frame"
    assert time.monotonic() - started < 1.0
    assert slot.take(timeout=0.05) is None


# --- cameras ----------------------------------------------------------------------------------


def _node(sysfs: Path, dev: Path, n: int, name: str, index: int) -> None:
    (sysfs / f"video{n}").mkdir(parents=True)
    (sysfs / f"video{n}" / "name").write_text(name + "\n")
    (sysfs / f"video{n}" / "index").write_text(f"{index}\n")
    (dev / f"video{n}").touch()


def test_linux_cameras_lists_capture_nodes_and_never_our_own_output(tmp_path: Path) -> None:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    _node(sysfs, dev, 0, "Integrated Camera: Integrated C", 0)
    _node(sysfs, dev, 1, "Integrated Camera: Integrated C", 1)  # its metadata node
    _node(sysfs, dev, 4, "Visage", 0)  # our v4l2loopback output
    _node(sysfs, dev, 2, "USB Webcam", 0)
    (sysfs / "video9").mkdir()  # listed by the kernel but its device file is gone (unplugged)
    cams = linux_cameras(sysfs, dev)
    assert cams == (
        CameraInfo(0, "Integrated Camera: Integrated C", str(dev / "video0")),
        CameraInfo(2, "USB Webcam", str(dev / "video2")),
    )
    assert linux_cameras(tmp_path / "missing", dev) == ()
    assert visage_device(sysfs) == "/dev/video4"
    assert visage_device(tmp_path / "missing") is None


# --- looping playback -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_looping_video_plays_at_its_measured_rate_and_loops(sample_clip: Path) -> None:
    """Frames are due every 1/fps (the file's measured 25 fps); at the end it starts over with
    timestamps still increasing; a late reader is not sent a burst of stale frames."""
    with VideoFileSource(sample_clip) as source:
        count = sum(1 for _ in source)
        first = next(iter(source)).image
    clock = FakeClock()
    video = LoopingVideo(sample_clip, clock=clock, sleep=clock.sleep)
    assert video.fps == 25.0
    frames = [video.read() for _ in range(count + 3)]
    assert all(f is not None for f in frames)
    stamps = np.array([f.timestamp_s for f in frames if f is not None])
    assert np.allclose(np.diff(stamps), 1 / 25)
    assert video.loops == 1
    assert np.array_equal(frames[count].image, first)  # frame 0 again
    assert [f.index for f in frames if f is not None] == list(range(count + 3))
    clock.now += 5.0  # the reader stalled: the schedule restarts at "now"
    late = video.read()
    assert late is not None and late.timestamp_s == clock.now
    video.close()


# --- frame layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((743, 1155), (1280, 720), (408, 0, 463, 720)),
        ((512, 512), (640, 480), (80, 0, 480, 480)),
        ((1920, 1080), (640, 480), (0, 60, 640, 360)),
    ],
)
def test_fit_inside_keeps_the_aspect(
    src: tuple[int, int], dst: tuple[int, int], expected: tuple[int, int, int, int]
) -> None:
    p = fit_inside(src, dst)
    assert (p.x, p.y, p.width, p.height) == expected


def test_layout_centres_the_avatar_and_fills_the_rest_with_its_own_background() -> None:
    portrait = np.asarray(Image.open(portraits_dir() / "mona_lisa.jpg").convert("RGB"))
    layout = FrameLayout((1280, 720))
    frame = layout.compose(portrait, "mona")
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
    p = layout.placement
    assert p is not None and (p.x, p.width, p.height) == (408, 463, 720)
    inner = frame[:, p.x : p.x + p.width].astype(np.float64)
    resized = np.asarray(Image.fromarray(portrait).resize((463, 720), Image.Resampling.BOX))
    assert np.abs(inner - resized).mean() < 4.0  # the avatar itself, whole and unstretched
    sides = np.concatenate([frame[:, : p.x], frame[:, p.x + p.width :]], axis=1)
    assert sides.mean() > 15.0  # filled, not black bars
    colour = portrait.reshape(-1, 3).mean(axis=0)
    assert np.abs(sides.reshape(-1, 3).mean(axis=0) - 0.7 * colour).max() < 25.0  # its palette
    assert np.abs(np.diff(sides.astype(np.float64), axis=1)).mean() < 1.5  # blurred: no detail
    again = layout.compose(portrait, "mona")
    assert np.array_equal(again, frame)


def test_backdrop_covers_any_frame_size() -> None:
    tall = np.full((900, 300, 3), 200, np.uint8)
    assert backdrop(tall, (640, 480)).shape == (480, 640, 3)
    assert backdrop(tall, (17, 999)).shape == (999, 17, 3)


def test_virtual_camera_settings_are_validated() -> None:
    assert (VirtualCameraSettings().width, VirtualCameraSettings().height) == (1280, 720)
    with pytest.raises(ValueError):
        VirtualCameraSettings(width=8)
    with pytest.raises(ValueError):
        VirtualCameraSettings(fps=0.5)

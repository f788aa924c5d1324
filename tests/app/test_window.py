"""The whole window on the real engine (offscreen): the sample clip animating Mona Lisa, a slow
engine, portraits that cannot be used, the virtual camera, an unplugged camera, engine errors."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QElapsedTimer, QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from engine.api import bundled_portraits, install_hint
from engine.runtime import pipeline as pipeline_module
from tests.live_tools import (
    RecordingBackend,
    Socket,
    camera_parts,
    register_recording_backend,
    slow_pipeline,
    unregister_recording_backend,
)

OpenWindow = Callable[..., MainWindow]
MONA, GRACE = (str(p) for p in bundled_portraits()[:1] + bundled_portraits()[2:3])


def _wait_frames(qtbot: Any, window: MainWindow, more: int = 1, timeout: int = 20000) -> Any:
    model = window.controller.preview
    start = model.frame.sequence if model.frame is not None else 0
    qtbot.waitUntil(
        lambda: model.frame is not None and model.frame.sequence >= start + more, timeout=timeout
    )
    return model.frame


def _drop(window: MainWindow, path: Path) -> None:
    """Drag a file onto the window and drop it. Qt delivers a drop only inside a drag session
    of its own (none offscreen), so the window's handlers get the real events directly."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    point, action = QPointF(200, 200), Qt.DropAction.CopyAction
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(point, action, mime, buttons, modifiers)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(point, action, mime, buttons, modifiers)
    window.dropEvent(drop)
    assert drop.isAccepted()


def test_window_animates_mona_lisa_with_the_sample_clip(
    qtbot: Any, live_window: OpenWindow
) -> None:
    window = live_window()
    c = window.controller
    first = _wait_frames(qtbot, window)
    qtbot.waitUntil(lambda: c.gallery.selected is not None, timeout=10000)
    assert Path(c.gallery.selected).name == "mona_lisa.jpg"
    assert window.gallery.list.currentItem().text() == "Mona Lisa"
    assert "sample.mp4" in window.camera.status.text()
    assert c.messages.current is not None and c.messages.current.action == "calibrate"
    later = _wait_frames(qtbot, window, more=25)
    avatar = window.preview.avatar
    assert avatar.image is not None and (avatar.image.width(), avatar.image.height()) == (743, 1155)
    assert np.abs(later.avatar.astype(int) - first.avatar.astype(int)).mean() > 0.05  # moving
    bar = window.statusBar()
    qtbot.waitUntil(lambda: float(bar.fps.text().split()[0]) > 0.0, timeout=5000)
    assert "geometric path" in bar.compute.text() and "landmarks" in bar.stages.text()


def test_window_stays_responsive_while_the_engine_is_slow(
    qtbot: Any, live_window: OpenWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each engine frame takes 300 ms more; a 20 ms GUI timer keeps firing on time."""
    slow_pipeline(monkeypatch, 0.3)
    window = live_window()
    _wait_frames(qtbot, window)
    clock = QElapsedTimer()
    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(clock.elapsed()))
    clock.start()
    timer.start()
    start = window.controller.preview.frame.sequence
    qtbot.wait(3000)
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 0.8 * 3000 / 20, len(ticks)
    assert gaps.max() < 120, gaps.max()  # never frozen for even a tenth of a second
    shown = window.controller.preview.frame.sequence - start
    assert 5 <= shown <= 12  # ~3 avatar frames per second, each shown
    qtbot.keyClick(window, Qt.Key.Key_L)  # and it answers the keyboard at once
    assert window.controller.preview.show_landmarks


def test_a_portrait_without_a_face_is_refused_and_mona_lisa_stays(
    qtbot: Any, live_window: OpenWindow, tmp_path: Path
) -> None:
    window = live_window()
    c = window.controller
    _wait_frames(qtbot, window, 5)
    landscape = tmp_path / "landscape.png"
    Image.open(MONA).crop((0, 0, 300, 260)).save(landscape)
    _drop(window, landscape)
    qtbot.waitUntil(
        lambda: c.messages.current is not None and c.messages.current.level == "error",
        timeout=20000,
    )
    text = window.banner.text.text()
    assert "landscape.png was not loaded: No face found" in text
    assert "The current portrait stays" in text
    assert window.gallery.list.count() == 3 and Path(c.gallery.selected).name == "mona_lisa.jpg"
    later = _wait_frames(qtbot, window, 10)
    assert later.portrait == "mona_lisa.jpg"


def test_own_portrait_joins_the_gallery_and_is_remembered(
    qtbot: Any, live_window: OpenWindow, tmp_path: Path, config_dir: Path
) -> None:
    window = live_window()
    c = window.controller
    _wait_frames(qtbot, window, 3)
    mine = tmp_path / "me.jpg"
    shutil.copy(GRACE, mine)
    _drop(window, mine)
    qtbot.waitUntil(lambda: c.gallery.selected == str(mine), timeout=20000)
    assert window.gallery.list.count() == 4 and window.gallery.list.currentItem().text() == "me"
    qtbot.waitUntil(lambda: c.preview.frame.portrait == "me.jpg", timeout=5000)
    assert c.preview.frame.avatar.shape == (600, 512, 3)
    window.close()
    saved = SettingsStore(config_dir / "settings.json").load()
    assert saved.user_portraits == (str(mine),) and saved.portrait == str(mine)
    again = live_window()  # the next run starts where this one stopped
    assert again.gallery.list.count() == 4
    assert again.controller.startup_portrait() == str(mine)
    qtbot.waitUntil(lambda: again.controller.gallery.selected == str(mine), timeout=20000)
    again.gallery.list.setCurrentItem(again.gallery.item_for(str(mine)))
    again.gallery.remove_button.click()
    assert again.gallery.list.count() == 3
    qtbot.waitUntil(
        lambda: Path(again.controller.gallery.selected or "").name == "mona_lisa.jpg",
        timeout=20000,
    )


def test_virtual_camera_from_the_window(qtbot: Any, live_window: OpenWindow) -> None:
    """V starts pyvirtualcam (here a recording backend, tried after v4l2loopback found no
    device) at 1280x720; V stops it; without any backend the banner says what to install."""
    register_recording_backend()
    try:
        window = live_window()
        c = window.controller
        _wait_frames(qtbot, window, 3)
        qtbot.keyClick(window, Qt.Key.Key_V)
        qtbot.waitUntil(lambda: c.vcam.running, timeout=5000)
        assert window.vcam.button.text() == "Stop virtual camera (V)"
        assert "recording" in window.vcam.message.text()
        backend = RecordingBackend.last
        assert backend is not None and backend.is_rgb
        qtbot.waitUntil(lambda: len(backend.snapshot()[0]) >= 20, timeout=5000)
        _, frames = backend.snapshot()
        assert frames[-1].shape == (720, 1280, 3)
        qtbot.keyClick(window, Qt.Key.Key_V)
        qtbot.waitUntil(lambda: not c.vcam.running and not c.vcam.busy, timeout=5000)
        assert backend.closed and window.vcam.button.text() == "Start virtual camera (V)"
    finally:
        unregister_recording_backend()
    qtbot.keyClick(window, Qt.Key.Key_V)
    qtbot.waitUntil(lambda: c.messages.current is not None and c.messages.current.level == "error")
    assert install_hint() in window.banner.text.text()
    assert install_hint() in window.vcam.message.text()
    _wait_frames(qtbot, window, 10)  # the app keeps working


def test_unplugged_camera_keeps_the_last_avatar_and_comes_back(
    qtbot: Any, live_window: OpenWindow, sample_clip: Path
) -> None:
    socket = Socket()
    window = live_window(**camera_parts(sample_clip, socket))
    c = window.controller
    _wait_frames(qtbot, window, 10)
    assert "Test camera" in window.camera.status.text()
    assert window.camera.source.itemText(1) == "Test camera (/dev/video0)"
    socket.plugged = False
    qtbot.waitUntil(lambda: c.camera.lost, timeout=5000)
    assert window.preview.webcam.note == "Camera lost: retrying…"
    assert "stopped delivering frames" in window.banner.text.text()
    held = c.preview.frame.sequence
    qtbot.wait(800)
    assert c.preview.frame.sequence == held and window.preview.avatar.image is not None
    socket.plugged = True
    _wait_frames(qtbot, window, 5, timeout=5000)
    assert not c.camera.lost and window.preview.webcam.note == ""
    assert "is back" in window.banner.text.text()


def test_engine_error_is_shown_with_its_cause_and_the_app_recovers(
    qtbot: Any, live_window: OpenWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = pipeline_module.Pipeline.finish
    calls = {"n": 0}

    def flaky(self: Any, begun: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 30:
            raise ValueError("simulated warp failure")
        return original(self, begun)

    monkeypatch.setattr(pipeline_module.Pipeline, "finish", flaky)
    window = live_window()
    qtbot.waitUntil(lambda: calls["n"] > 30, timeout=20000)
    qtbot.waitUntil(lambda: "simulated" in window.banner.text.text(), timeout=5000)
    assert "Avatar engine error: ValueError: simulated warp failure" in window.banner.text.text()
    _wait_frames(qtbot, window, 10)


def test_calibrate_shortcut_sets_the_neutral_face(qtbot: Any, live_window: OpenWindow) -> None:
    window = live_window()
    c = window.controller
    _wait_frames(qtbot, window, 3)
    qtbot.keyClick(window, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: "Calibrated" in (c.messages.current.text if c.messages.current else ""))
    qtbot.keyClick(window, Qt.Key.Key_N)  # next portrait
    qtbot.waitUntil(lambda: c.gallery.selected is not None and c.gallery.selected != MONA)

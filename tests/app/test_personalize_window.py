"""Personalization and profiles in the whole window on the real engine (offscreen): the sample
clip recorded as a demo and turned down with reasons, a cancel during the fine-tune that leaves
an existing profile byte for byte, a new profile listed, animated and remembered, and a real
profile loaded, renamed and deleted from the sidebar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from app.main_window import MainWindow
from app.models.personalize import SAMPLE_NOTE
from app.settings_store import SettingsStore
from engine.api import PersonalizeOptions, bundled_portraits
from engine.capture.image_file import load_image
from tests.personalize_tools import accept_any_recording, make_profile, tree_digest

OpenWindow = Callable[..., MainWindow]
MONA = str(bundled_portraits()[0])


def _ready(qtbot: Any, window: MainWindow) -> None:
    """The sample clip animates Mona Lisa and the profiles have been listed."""
    c = window.controller
    qtbot.waitUntil(lambda: c.preview.frame is not None and c.profiles.listed, timeout=20000)
    qtbot.waitUntil(lambda: c.camera.playing_file(), timeout=5000)


def _record(qtbot: Any, window: MainWindow, name: str = "Me") -> Any:
    qtbot.keyClick(window, Qt.Key.Key_P)
    dialog = window.personalize_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.name.setText(name)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert window.controller.personalize.phase == "recording"
    return dialog


def test_sample_clip_is_recorded_as_a_demo_and_turned_down_with_reasons(
    qtbot: Any, live_window: OpenWindow, data_dir: Path
) -> None:
    window = live_window(record_seconds=3.0)
    _ready(qtbot, window)
    model = window.controller.personalize
    dialog = _record(qtbot, window)
    assert dialog.note.isVisible() and dialog.note.text() == SAMPLE_NOTE
    qtbot.waitUntil(lambda: model.step.index >= 2, timeout=5000)  # the guidance moves on
    assert dialog.guidance.text() == model.step.text and model.frames > 5
    assert dialog.check.text() == "✓ One face, close enough, well lit"  # the live check
    assert dialog.camera.image is not None
    qtbot.waitUntil(lambda: model.phase == "rejected", timeout=60000)
    shown = [dialog.reasons.item(i).text() for i in range(dialog.reasons.count())]
    assert any("record at least 10 s" in r for r in shown) and shown == list(model.reasons)
    assert dialog.outcome.text() == "The recording cannot be used:"
    assert not (data_dir / "profiles").exists() or not any((data_dir / "profiles").iterdir())
    qtbot.mouseClick(dialog.again_button, Qt.MouseButton.LeftButton)  # Record again
    assert model.phase == "recording" and dialog.pages.currentIndex() == 1
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert model.phase == "ready" and window.bridge is not None
    assert window.bridge.recording_status() is None  # the engine stopped recording


@pytest.mark.slow  # ~20 s: two fine-tune steps (~5 s each beside the live avatar on 2 cores)
def test_cancel_during_the_fine_tune_leaves_the_existing_profile_byte_identical(
    qtbot: Any, live_window: OpenWindow, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_any_recording(monkeypatch)
    root = data_dir / "profiles"
    existing = make_profile(root / "me", "Me")
    before = tree_digest(existing.folder)
    window = live_window(record_seconds=2.0, personalize=PersonalizeOptions(budget_s=600.0))
    _ready(qtbot, window)
    model = window.controller.personalize
    dialog = _record(qtbot, window, "Me")
    qtbot.waitUntil(lambda: dialog.detail.text().startswith("Step 1 "), timeout=60000)
    assert "about" in dialog.detail.text() and dialog.status.text() == "Learning your face…"
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "Cancelling…"
    qtbot.waitUntil(lambda: model.phase == "failed", timeout=60000)
    assert dialog.outcome.text() == (
        "Cancelled: no profile was written. Your earlier profiles are untouched."
    )
    assert tree_digest(existing.folder) == before
    assert sorted(p.name for p in root.iterdir()) == ["me"]  # no new folder, no debris
    assert [e.name for e in window.controller.profiles.entries] == ["Me"]


def test_a_new_profile_is_listed_animated_and_remembered(
    qtbot: Any,
    live_window: OpenWindow,
    data_dir: Path,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accept_any_recording(monkeypatch)
    window = live_window(record_seconds=2.0, personalize=PersonalizeOptions(max_steps=1))
    _ready(qtbot, window)
    c = window.controller
    dialog = _record(qtbot, window, "Work me")
    qtbot.waitUntil(lambda: c.personalize.phase == "done", timeout=90000)
    folder = str(data_dir / "profiles" / "work-me")
    assert dialog.outcome.text().startswith("Profile “Work me” is ready (1 steps in")
    qtbot.waitUntil(lambda: c.profiles.active == folder, timeout=20000)
    assert (
        window.profiles.list.count() == 1 and window.profiles.list.currentItem().text() == "Work me"
    )
    qtbot.waitUntil(lambda: c.preview.frame.portrait == "Work me", timeout=10000)
    assert window.preview.avatar.caption == "Avatar · Work me"
    source = load_image(Path(folder) / "source.png")
    assert c.preview.frame.avatar.shape == source.shape  # the recorded frame is the avatar
    dialog.close_button.click()
    window.close()
    saved = SettingsStore(config_dir / "settings.json").load()
    assert saved.profile == folder and Path(saved.portrait or MONA).name == "mona_lisa.jpg"
    again = live_window()  # the next run starts with the profile
    qtbot.waitUntil(lambda: again.controller.profiles.active == folder, timeout=20000)
    assert again.controller.gallery.selected is None


def test_a_real_profile_is_loaded_renamed_and_deleted_from_the_sidebar(
    qtbot: Any, live_window: OpenWindow, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = make_profile(data_dir / "profiles" / "sample", "Sample person")
    window = live_window()
    _ready(qtbot, window)
    c = window.controller
    widget = window.profiles
    assert widget.list.count() == 1 and widget.list.item(0).text() == "Sample person"
    item = widget.item_for(str(info.folder))
    rect = widget.list.visualItemRect(item)
    qtbot.mouseClick(widget.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: c.preview.frame.portrait == "Sample person", timeout=20000)
    assert c.gallery.selected is None and window.gallery.list.currentItem() is None
    # the avatar shows the profile's face, not Mona Lisa
    avatar = c.preview.frame.avatar.astype(int)
    source = load_image(info.source)
    mona = cv2.resize(load_image(MONA), source.shape[1::-1])
    assert avatar.shape == source.shape
    assert np.abs(avatar - source).mean() < 0.5 * np.abs(avatar - mona).mean()
    # rename
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Work me", True))
    widget.rename_button.click()
    qtbot.waitUntil(lambda: widget.list.item(0).text() == "Work me", timeout=5000)
    assert window.preview.avatar.caption == "Avatar · Work me"
    # delete: declined, then confirmed
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    widget.delete_button.click()
    qtbot.wait(300)
    assert info.folder.is_dir() and widget.list.count() == 1
    widget.delete_button.click()
    qtbot.waitUntil(lambda: widget.list.count() == 0 and widget.empty.isVisible(), timeout=5000)
    assert not info.folder.exists()
    qtbot.waitUntil(lambda: c.preview.frame.portrait == "mona_lisa.jpg", timeout=20000)
    assert c.gallery.selected == MONA and c.profiles.active is None

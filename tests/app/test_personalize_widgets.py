"""The personalization dialog and the profiles list, driven through their models (and back),
with real PySide6 widgets offscreen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.models.personalize import GOOD_TEXT, SAMPLE_NOTE, PersonalizeModel
from app.models.preview import PreviewModel
from app.models.profiles import ProfilesModel
from app.qt_image import to_array
from app.widgets.personalize_dialog import BAD_STYLE, OK_STYLE, PersonalizeDialog
from app.widgets.preview import PreviewPanel, display_name
from app.widgets.profiles import EMPTY_HINT, ProfilesWidget
from engine.api import Controls, FrameCheck, LiveFrame, RecordingStatus, bundled_portraits
from engine.personalize.profile import ProfileInfo
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.training.finetune import Progress
from engine.types import Frame
from tests.personalize_tools import make_profile


@pytest.fixture(scope="module")
def live(sample_frames: list[Frame]) -> LiveFrame:
    pipeline = Pipeline(prepare_portrait(bundled_portraits()[0]))
    for frame in sample_frames[:4]:
        result = pipeline.process(frame, Controls())
    pipeline.close()
    return LiveFrame(frame.image, None, result, "mona_lisa.jpg", 4, 40.0, 25.0)


@pytest.fixture
def dialog(qtbot: Any) -> tuple[PersonalizeDialog, PersonalizeModel, PreviewModel, list[int]]:
    model, preview, polls = PersonalizeModel(record_seconds=3.0), PreviewModel(), []
    widget = PersonalizeDialog(model, preview, lambda: polls.append(1))
    qtbot.addWidget(widget)
    widget.show()
    return widget, model, preview, polls


def test_dialog_shows_each_phase_of_its_model(
    qtbot: Any, dialog: Any, live: LiveFrame, tmp_path: Path
) -> None:
    widget, model, preview, polls = dialog
    assert widget.pages.currentIndex() == 0 and widget.camera.isVisible()
    assert (
        "records about 3 s of you" in widget.intro.text() and "60 s on a CPU" in widget.intro.text()
    )
    qtbot.waitUntil(lambda: len(polls) >= 2, timeout=2000)  # the controller is polled
    preview.show(live)
    assert widget.camera.image is not None
    assert np.array_equal(to_array(widget.camera.image), live.driving)  # the camera, not the avatar
    widget.name.setText(" Work me ")
    with qtbot.waitSignal(model.start_requested) as asked:
        qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["Work me"]
    # recording: guidance, countdown, bar, live check
    model.recording_started(SAMPLE_NOTE)
    assert widget.pages.currentIndex() == 1 and widget.note.isVisible()
    assert widget.note.text() == SAMPLE_NOTE
    model.recorded(RecordingStatus(20, 1.2, FrameCheck(1, 0.02, 130.0, 0.0, 0.0, 0.1, 0.3), False))
    assert widget.guidance.text() == "Look up, then down"
    assert widget.step.text() == "Step 4 of 8 · 2 s left · 20 frames recorded"
    assert widget.record_bar.value() == 400
    assert widget.check.text() == "✖ Your face is small in the picture: move closer to the camera."
    assert widget.check.styleSheet() == BAD_STYLE
    assert widget.coverage.text() == f"Moved so far: {model.coverage.text}"
    assert widget.coverage.text().startswith("Moved so far: side to side 0/12°")
    model.recorded(RecordingStatus(30, 2.0, FrameCheck(1, 0.2, 130.0, 0.0, 0.0, 0.1, 0.3), False))
    assert widget.check.text() == GOOD_TEXT and widget.check.styleSheet() == OK_STYLE
    # learning: status, progress, Cancel
    model.working()
    model.training_started("cpu", 60.0)
    model.progress(Progress(7, 0.0912, 14.2, 45.8, 0.25))
    assert widget.pages.currentIndex() == 2 and not widget.camera.isVisible()
    assert widget.status.text() == "Learning your face…"
    assert widget.detail.text() == "Step 7 · loss 0.0912 · 14 s done, about 46 s left"
    assert widget.work_bar.value() == 250
    with qtbot.waitSignal(model.cancel_requested) as cancelled:
        widget.cancel_button.click()
    assert cancelled.args == ["working"] and not widget.cancel_button.isEnabled()
    assert widget.status.text() == "Cancelling…"
    model.failed("Cancelled: no profile was written.", cancelled=True)
    assert widget.pages.currentIndex() == 3 and widget.again_button.isVisible()
    assert widget.outcome.text().startswith("Cancelled: no profile was written.")
    assert not widget.reasons.isVisible()
    # rejected: the reasons as a list, and Record again
    model.recording_started("")
    model.working()
    reasons = ("Turn your head further to the left and to the right.", "Blink a few times.")
    model.rejected(reasons)
    assert widget.outcome.text() == "The recording cannot be used:"
    assert [widget.reasons.item(i).text() for i in range(widget.reasons.count())] == list(reasons)
    with qtbot.waitSignal(model.start_requested) as again:
        widget.again_button.click()
    assert again.args == ["Work me"]
    # done
    model.recording_started("")
    model.working()
    model.finished(make_profile(tmp_path / "me", "Work me"))
    assert widget.pages.currentIndex() == 3 and not widget.again_button.isVisible()
    assert widget.outcome.text() == (
        "Profile “Work me” is ready (0 steps in 0 s) and now animates the avatar."
    )
    widget.close_button.click()
    assert not widget.isVisible() and model.phase == "done"


def test_closing_the_dialog_stops_a_recording(qtbot: Any, dialog: Any) -> None:
    widget, model, _, polls = dialog
    cancels: list[str] = []
    model.cancel_requested.connect(cancels.append)
    model.recording_started("")
    qtbot.keyClick(widget, Qt.Key.Key_Escape)
    assert cancels == ["recording"] and model.phase == "ready" and not widget.isVisible()
    count = len(polls)
    qtbot.wait(300)
    assert len(polls) == count  # not polled while hidden


@pytest.fixture(scope="module")
def two_profiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProfileInfo, ProfileInfo]:
    root = tmp_path_factory.mktemp("profiles")
    return make_profile(root / "one", "One"), make_profile(root / "two", "Two")


def test_profiles_widget_follows_its_model(qtbot: Any, two_profiles: Any) -> None:
    one, two = two_profiles
    model = ProfilesModel()
    widget = ProfilesWidget(model)
    qtbot.addWidget(widget)
    widget.show()
    assert widget.empty.isVisible() and widget.empty.text() == EMPTY_HINT
    assert not widget.list.isVisible() and not widget.rename_button.isEnabled()
    model.set_entries((one, two))
    assert not widget.empty.isVisible() and widget.list.count() == 2
    assert widget.list.item(0).text() == "One" and not widget.list.item(0).icon().isNull()
    assert "not fine-tuned" in widget.list.item(1).toolTip()
    item = widget.item_for(str(two.folder))
    assert item is not None
    rect = widget.list.visualItemRect(item)
    qtbot.mouseClick(widget.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert model.requested == str(two.folder) and item.text() == "Two  (loading…)"
    model.loaded(str(two.folder))
    assert widget.list.currentItem().text() == "Two" and widget.rename_button.isEnabled()
    with qtbot.waitSignal(widget.rename_requested) as rename:
        widget.rename_button.click()
    with qtbot.waitSignal(widget.delete_requested) as delete:
        widget.delete_button.click()
    assert rename.args == delete.args == [str(two.folder)]
    with qtbot.waitSignal(widget.personalize_requested):
        widget.personalize_button.click()
    model.deactivate()
    assert widget.list.currentItem() is None and not widget.delete_button.isEnabled()


def test_avatar_caption_names_a_profile_as_it_is(qtbot: Any, live: LiveFrame) -> None:
    assert display_name("mona_lisa.jpg") == "Mona Lisa"
    assert display_name("Work me") == "Work me"
    model = PreviewModel()
    panel = PreviewPanel(model)
    qtbot.addWidget(panel)
    model.show(live)
    assert panel.avatar.caption == "Avatar · Mona Lisa"
    model.set_avatar_name("Work me")
    assert panel.avatar.caption == "Avatar · Work me"

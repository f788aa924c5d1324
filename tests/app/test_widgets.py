"""Each widget driven through its model (and back), with real PySide6 widgets offscreen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QWidget

from app.models.camera import CameraModel, SourceChoice
from app.models.controls import ControlsModel
from app.models.gallery import GalleryModel
from app.models.messages import Message, MessagesModel
from app.models.preview import PreviewModel
from app.models.stats import StatsModel
from app.models.vcam import VirtualCameraModel
from app.qt_image import to_array, to_qimage
from app.settings_store import default_settings_path
from app.widgets.banner import Banner
from app.widgets.camera_picker import CameraPicker
from app.widgets.controls_panel import ControlsPanel
from app.widgets.gallery import GalleryWidget
from app.widgets.preview import LANDMARK_COLOUR, PreviewPanel
from app.widgets.stats_bar import StatsBar
from app.widgets.vcam_panel import VirtualCameraPanel
from engine.api import CameraInfo, Controls, LiveFrame, bundled_portraits
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Frame

BUNDLED = [str(p) for p in bundled_portraits()]


@pytest.fixture(scope="module")
def live(sample_frames: list[Frame]) -> LiveFrame:
    """A real live result: sample frames through the real pipeline."""
    pipeline = Pipeline(prepare_portrait(BUNDLED[0]))
    for frame in sample_frames[:8]:
        result = pipeline.process(frame, Controls())
    assert pipeline.last_landmarks is not None
    points = pipeline.last_landmarks.points
    pipeline.close()
    return LiveFrame(frame.image, points, result, "mona_lisa.jpg", 8, 40.0, 25.0)


def test_qimage_round_trip(live: LiveFrame) -> None:
    image = to_qimage(live.avatar)
    assert (image.width(), image.height()) == (743, 1155)
    assert np.array_equal(to_array(image), live.avatar)
    with pytest.raises(ValueError):
        to_qimage(live.avatar[..., 0])


def _pane_pixels(pane: Any) -> np.ndarray:
    return to_array(pane.grab().toImage())


def test_preview_panes_show_the_model(qtbot: Any, live: LiveFrame) -> None:
    model = PreviewModel()
    panel = PreviewPanel(model)
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    panel.show()
    assert panel.webcam.note == "Starting the camera…" and panel.avatar.image is None
    model.show(live)
    model.set_notes(webcam="", avatar="")
    avatar = panel.avatar
    rect = avatar.image_rect()
    assert abs(rect.width() / rect.height() - 743 / 1155) < 0.01  # fitted, not stretched
    shot = _pane_pixels(avatar)[rect.y() : rect.bottom() + 1, rect.x() : rect.right() + 1]
    expected = to_array(to_qimage(live.avatar).scaled(rect.width(), rect.height()))
    body = (slice(shot.shape[0] // 3, None), slice(None))  # below the caption
    assert np.abs(shot[body].astype(int) - expected[body].astype(int)).mean() < 6.0
    assert avatar.caption == "Avatar · Mona Lisa"
    # landmarks: drawn over the camera pane only when asked
    green = np.array([LANDMARK_COLOUR.red(), LANDMARK_COLOUR.green(), LANDMARK_COLOUR.blue()])

    def green_pixels() -> int:
        pixels = _pane_pixels(panel.webcam).astype(int)
        return int((np.abs(pixels - green).sum(axis=2) < 40).sum())

    without = green_pixels()
    model.toggle_landmarks()
    assert green_pixels() > without + 300
    model.set_notes(webcam="Camera lost: retrying…")
    assert panel.webcam.note == "Camera lost: retrying…"


def test_gallery_widget_follows_its_model(qtbot: Any, tmp_path: Path) -> None:
    model = GalleryModel(BUNDLED)
    widget = GalleryWidget(model)
    qtbot.addWidget(widget)
    widget.show()
    assert widget.list.count() == 3
    assert not widget.list.item(0).icon().isNull()  # a real thumbnail of the painting
    model.loaded(BUNDLED[0])
    assert widget.list.currentItem().text() == "Mona Lisa"
    assert not widget.remove_button.isEnabled()  # bundled
    # clicking asks the model; the highlight waits for the engine
    item = widget.item_for(BUNDLED[2])
    assert item is not None
    rect = widget.list.visualItemRect(item)
    qtbot.mouseClick(widget.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert model.requested == BUNDLED[2] and "(loading…)" in item.text()
    model.refused(BUNDLED[2])
    assert widget.list.currentItem().text() == "Mona Lisa" and "loading" not in item.text()
    mine = str(Path(BUNDLED[1]).resolve())
    copy = tmp_path / "me.jpg"
    copy.write_bytes(Path(mine).read_bytes())
    model.loaded(str(copy))
    assert widget.list.count() == 4 and widget.list.currentItem().text() == "me"
    assert widget.remove_button.isEnabled()
    with qtbot.waitSignal(widget.remove_requested) as blocker:
        widget.remove_button.click()
    assert blocker.args == [str(copy)]
    model.remove(str(copy))
    assert widget.list.count() == 3


def test_camera_picker_follows_its_model(qtbot: Any) -> None:
    model = CameraModel()
    picker = CameraPicker(model)
    qtbot.addWidget(picker)
    assert [picker.source.itemText(i) for i in range(picker.source.count())] == [
        "Automatic (webcam, else sample clip)",
        "Sample clip",
    ]
    model.set_cameras((CameraInfo(0, "USB Webcam", "/dev/video0"),))  # hot-plugged
    assert picker.source.itemText(1) == "USB Webcam (/dev/video0)"
    with qtbot.waitSignal(picker.source.activated):
        picker.source.setCurrentIndex(1)
        picker.source.activated.emit(1)
    assert model.choice == SourceChoice("camera", camera=0)
    assert not picker.mirror.isEnabled()  # nothing to mirror until a camera delivers
    model.source_active("USB Webcam (camera 0)", 0, "")
    picker.mirror.click()
    assert model.mirror is False
    model.set_resolution((1280, 720))
    assert picker.resolution.currentText() == "1280 × 720"
    model.source_lost("USB Webcam stopped delivering frames")
    assert picker.status.text() == "USB Webcam stopped delivering frames"


def test_controls_panel_follows_its_model(qtbot: Any) -> None:
    model = ControlsModel()
    panel = ControlsPanel(model)
    qtbot.addWidget(panel)
    model.expression = 1.5
    assert (
        panel.sliders["expression"].value() == 150 and panel.values["expression"].text() == "1.50"
    )
    panel.sliders["smoothing"].setValue(20)
    assert model.smoothing == 0.2
    with qtbot.waitSignal(panel.calibrate_requested):
        panel.calibrate.click()
    panel.reset.click()
    assert model.snapshot() == Controls() and panel.sliders["pose"].value() == 100


def test_virtual_camera_panel_follows_its_model(qtbot: Any) -> None:
    model = VirtualCameraModel()
    panel = VirtualCameraPanel(model)
    qtbot.addWidget(panel)
    assert panel.button.text() == "Start virtual camera (V)"
    panel.button.click()
    assert model.busy and panel.button.text() == "Starting…" and not panel.button.isEnabled()
    model.update(True, "Sending to v4l2loopback /dev/video4, 1280x720 at 30 fps.")
    assert panel.button.text() == "Stop virtual camera (V)" and "Sending" in panel.message.text()
    model.update(False, "No virtual camera could be opened. Install v4l2loopback…")
    assert (
        panel.button.text() == "Start virtual camera (V)" and "v4l2loopback" in panel.message.text()
    )
    panel.size_box.setCurrentIndex(1)
    panel.size_box.activated.emit(1)
    assert model.size == (640, 480)


def test_stats_bar_follows_its_model(qtbot: Any, live: LiveFrame) -> None:
    model = StatsModel()
    bar = StatsBar(model)
    qtbot.addWidget(bar)
    assert bar.compute.text() == "starting…"
    model.frame(live)
    model.compute("cpu (CPU)", "geometric path", "preparing the cpu-tier networks")
    assert bar.fps.text() == "25.0 FPS" and bar.latency.text() == "latency 40 ms"
    assert bar.stages.text().startswith("engine ") and "landmarks" in bar.stages.text()
    assert bar.compute.text() == "cpu (CPU) · geometric path · preparing the cpu-tier networks"


def test_banner_follows_its_model(qtbot: Any) -> None:
    model = MessagesModel()
    window = QWidget()
    banner = Banner(model, window)
    qtbot.addWidget(window)
    window.show()
    assert not banner.isVisible()
    model.post(Message("info", "Look into the camera", "calibrate", "Calibrate now"))
    assert banner.isVisible() and banner.action.isVisible()
    assert "Look into the camera" in banner.text.text()
    with qtbot.waitSignal(banner.action_requested) as blocker:
        banner.action.click()
    assert blocker.args == ["calibrate"] and not banner.isVisible()
    model.post(Message("error", "No face found"))
    assert not banner.action.isVisible()
    qtbot.mouseClick(banner.close_button, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert model.current is None and not banner.isVisible()


def test_default_settings_path_is_the_users_config_folder(
    qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VISAGE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    qapp.setApplicationName("Visage")
    assert default_settings_path() == tmp_path / "Visage" / "settings.json"

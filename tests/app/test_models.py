"""The models behind the widgets and the controller, without Qt (no widget, no QApplication;
tests/test_architecture.py checks that app/models and app/controller.py never import Qt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.controller import AppController
from app.models.camera import SAMPLE, CameraModel, SourceChoice
from app.models.controls import ControlsModel
from app.models.gallery import GalleryModel
from app.models.messages import Message, MessagesModel
from app.models.preview import PreviewModel
from app.models.stats import StatsModel
from app.models.vcam import VirtualCameraModel
from app.settings_store import Settings
from engine.api import (
    CameraInfo,
    Controls,
    LiveFrame,
    PortraitLoaded,
    PortraitRefused,
    Recording,
    SourceChanged,
    SourceLost,
    SourceSpec,
    VirtualCameraChanged,
    VirtualCameraSettings,
    bundled_portraits,
)
from engine.portrait import prepare_portrait
from engine.runtime.pipeline import Pipeline
from engine.types import Frame

BUNDLED = [str(p) for p in bundled_portraits()]


@pytest.fixture(scope="module")
def live_frames(sample_frames: list[Frame]) -> list[LiveFrame]:
    """Two real live results: the sample's frames through the real pipeline."""
    pipeline = Pipeline(prepare_portrait(BUNDLED[0]))
    out = []
    for i, frame in enumerate(sample_frames[:12]):
        result = pipeline.process(frame, Controls())
        landmarks = pipeline.last_landmarks
        points = landmarks.points if landmarks is not None else None
        out.append(LiveFrame(frame.image, points, result, "mona_lisa.jpg", i + 1, 30.0 + i, 25.0))
    pipeline.close()
    return out[-2:]


def test_controls_are_clamped_and_sent_as_snapshots() -> None:
    model = ControlsModel()
    sent: list[Controls] = []
    model.changed.connect(sent.append)
    model.expression = 3.5
    model.pose = -1.0
    model.smoothing = 0.25
    model.smoothing = 0.25  # no change, no event
    assert sent == [Controls(2.0, 1.0, 0.5), Controls(2.0, 0.0, 0.5), Controls(2.0, 0.0, 0.25)]
    assert model.snapshot() == Controls(2.0, 0.0, 0.25)
    model.reset()
    assert sent[-1] == Controls()


def test_gallery_selects_only_what_the_engine_loaded(tmp_path: Path) -> None:
    mine = tmp_path / "me.png"
    mine.write_bytes(b"")
    model = GalleryModel(BUNDLED, [str(mine), str(mine)])
    assert [e.bundled for e in model.entries] == [True, True, True, False]
    assert model.entries[0].name == "Mona Lisa"
    asked: list[str | None] = []
    model.requested_changed.connect(asked.append)
    model.request(BUNDLED[1])
    assert asked == [BUNDLED[1]] and model.selected is None
    model.refused(BUNDLED[1])
    assert model.selected is None and model.requested is None
    model.loaded(BUNDLED[0])
    assert model.selected == BUNDLED[0]
    other = tmp_path / "friend.jpg"
    model.request(str(other))
    model.loaded(str(other))  # a user's portrait joins the gallery once it loads
    assert model.user_paths() == [str(mine), str(other)] and model.selected == str(other)
    assert model.neighbour(1) == BUNDLED[0] and model.neighbour(-1) == str(mine)
    assert not model.remove(BUNDLED[0])  # bundled portraits stay
    assert model.remove(str(mine)) and model.user_paths() == [str(other)]


def test_camera_model_offers_cameras_and_the_sample_and_builds_specs() -> None:
    model = CameraModel()
    specs: list[SourceSpec] = []
    model.source_changed.connect(specs.append)
    assert [c.kind for c in model.choices()] == ["auto", "file"]
    model.set_cameras((CameraInfo(2, "USB Webcam", "/dev/video2"),))
    assert model.choices()[1] == SourceChoice("camera", camera=2)
    assert model.camera_label(model.choices()[1]) == "USB Webcam (/dev/video2)"
    model.choose(SourceChoice("camera", camera=2))
    model.set_resolution((1280, 720))
    model.set_mirror(False)
    assert specs[-1] == SourceSpec("camera", 2, None, 1280, 720, False)
    model.set_cameras(())  # unplugged: still offered, marked
    assert model.camera_label(model.choices()[-1]) == "Camera 2 (not connected)"
    model.choose(SAMPLE)
    assert specs[-1].kind == "file" and specs[-1].path is not None
    assert specs[-1].path.endswith("sample.mp4")
    model.source_lost("camera gone")
    assert model.status() == "camera gone"
    model.source_active("video sample.mp4 (looping)", None, "")
    assert not model.lost and model.status() == "video sample.mp4 (looping)"


def test_virtual_camera_model_waits_for_the_engine() -> None:
    model = VirtualCameraModel()
    asked: list[VirtualCameraSettings | None] = []
    model.toggled.connect(asked.append)
    model.toggle()
    model.toggle()  # ignored: the first request is not answered yet
    assert asked == [VirtualCameraSettings(1280, 720)] and model.busy
    model.update(True, "Sending to v4l2loopback /dev/video4.")
    model.set_size((640, 480))  # running: restart at the new size
    assert asked[-1] == VirtualCameraSettings(640, 480)
    model.update(True, "Sending.")
    model.toggle()
    assert asked[-1] is None
    model.set_size((123, 45))  # not offered
    assert model.size == (640, 480)


def test_stats_refresh_at_a_readable_rate(live_frames: list[LiveFrame]) -> None:
    now = [0.0]
    model = StatsModel(clock=lambda: now[0])
    seen = []
    model.changed.connect(seen.append)
    model.frame(live_frames[0])
    model.frame(live_frames[1])  # within REFRESH_S: folded into the average only
    assert len(seen) == 1
    now[0] = 1.0
    model.frame(live_frames[1])
    stats = seen[-1]
    assert stats.fps == 25.0 and 40.0 < stats.latency_ms < 41.0
    names = [name for name, _ in stats.stages]
    assert names[:3] == ["landmarks", "motion", "flow"] and "paste" in names
    assert "landmarks" in stats.stages_text() and stats.engine_ms > 0
    model.compute("cpu (CPU)", "geometric path", "")
    assert seen[-1].device == "cpu (CPU)" and seen[-1].fps == 25.0


def test_preview_ignores_a_frame_it_already_shows(live_frames: list[LiveFrame]) -> None:
    model = PreviewModel()
    shown = []
    model.frame_changed.connect(shown.append)
    model.show(live_frames[0])
    model.show(live_frames[0])
    model.show(live_frames[1])
    assert [f.sequence for f in shown] == [live_frames[0].sequence, live_frames[1].sequence]
    toggles: list[bool] = []
    model.overlay_changed.connect(toggles.append)
    model.toggle_landmarks()
    model.set_show_landmarks(True)
    assert toggles == [True]


def test_messages_show_the_newest_and_dismiss_only_what_is_shown() -> None:
    model = MessagesModel()
    model.post(Message("info", "a"))
    model.post(Message("error", "b"))
    model.dismiss("a")
    assert model.current == Message("error", "b")
    model.dismiss()
    assert model.current is None


class Commands:
    """Records what the controller asks of the engine."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def load_portrait(self, path: str | Path) -> None:
        self.calls.append(("load", str(path)))

    def switch_source(self, source: SourceSpec) -> None:
        self.calls.append(("source", source))

    def set_controls(self, controls: Controls) -> None:
        self.calls.append(("controls", controls))

    def calibrate(self) -> None:
        self.calls.append(("calibrate", None))

    def start_virtual_camera(self, settings: VirtualCameraSettings | None = None) -> None:
        self.calls.append(("vcam", settings))

    def stop_virtual_camera(self) -> None:
        self.calls.append(("vcam", None))

    def rescan_cameras(self) -> None:
        self.calls.append(("rescan", None))

    # personalization and profiles (tests/app/test_personalize_models.py runs them for real)
    def load_profile(self, folder: str | Path) -> None:
        self.calls.append(("profile", str(folder)))

    def refresh_profiles(self) -> None:
        self.calls.append(("profiles", None))

    def rename_profile(self, folder: str, name: str) -> None:
        self.calls.append(("rename", (folder, name)))

    def delete_profile(self, folder: str) -> None:
        self.calls.append(("delete", folder))

    def start_recording(self) -> None:
        self.calls.append(("record", None))

    def recording_status(self) -> None:
        return None

    def stop_recording(self) -> Recording:
        self.calls.append(("stop recording", None))
        return Recording((), ())

    def personalize(self, recording: Recording, name: str, options: object) -> object:
        raise AssertionError("not in these tests")


def test_controller_turns_engine_events_into_model_state(tmp_path: Path) -> None:
    engine = Commands()
    c = AppController(engine, Settings(expression=5.0), BUNDLED)
    assert c.controls.expression == 2.0  # clamped from a hand-edited settings file
    start = c.startup_portrait()
    assert Path(start).name == "mona_lisa.jpg"
    c.started(start)
    c.handle(SourceChanged("video sample.mp4", "file", None, "No webcam found: sample."))
    assert c.messages.current is not None and "No webcam" in c.messages.current.text
    c.handle(PortraitLoaded(start, "mona_lisa.jpg", ()))
    assert c.gallery.selected == start
    assert c.messages.current is not None and c.messages.current.action == "calibrate"
    c.run_action("calibrate")
    assert engine.calls[-1] == ("calibrate", None)
    bad = tmp_path / "cat.png"
    c.add_portraits([str(bad), str(tmp_path / "notes.txt")])
    assert c.messages.current is not None and "notes.txt" in c.messages.current.text
    assert engine.calls[-1] == ("load", str(bad))
    c.handle(PortraitRefused(str(bad), "No face found in cat.png."))
    assert c.gallery.selected == start and c.gallery.user_paths() == []
    assert "The current portrait stays" in c.messages.current.text
    c.handle(SourceLost("camera 0", "camera 0 stopped delivering frames", 1.0))
    assert c.preview.webcam_note.startswith("Camera lost")
    c.handle(SourceChanged("camera 0", "camera", 0, "camera 0 is back."))
    assert c.preview.webcam_note == ""
    c.toggle_virtual_camera()
    assert engine.calls[-1] == ("vcam", VirtualCameraSettings(1280, 720))
    c.handle(VirtualCameraChanged(False, "No virtual camera could be opened.", failed=True))
    assert not c.vcam.running and not c.vcam.busy
    assert c.messages.current.level == "error"
    c.controls.pose = 0.5
    assert engine.calls[-1] == ("controls", Controls(2.0, 0.5, 0.5))
    saved = c.settings()
    assert saved.pose == 0.5 and saved.portrait == start and saved.calibration_offered


def test_a_remembered_portrait_that_went_bad_falls_back_to_the_default(tmp_path: Path) -> None:
    broken = tmp_path / "me.jpg"
    broken.write_bytes(b"not a picture any more")
    engine = Commands()
    c = AppController(
        engine, Settings(portrait=str(broken), user_portraits=(str(broken),)), BUNDLED
    )
    assert c.startup_portrait() == str(broken)
    c.started(str(broken))
    c.handle(PortraitRefused(str(broken), "me.jpg is damaged or truncated."))
    assert engine.calls[-1] == ("load", c.default_portrait())
    assert c.messages.current is not None
    assert c.messages.current.text.endswith("Showing the default portrait.")


def test_portrait_notes_are_shown() -> None:
    c = AppController(Commands(), Settings(calibration_offered=True), BUNDLED)
    c.handle(PortraitLoaded(BUNDLED[0], "group.jpg", ("2 faces found in group.jpg; animating",)))
    assert c.messages.current == Message(
        "warning", "group.jpg: 2 faces found in group.jpg; animating"
    )


def test_a_source_note_does_not_push_away_the_calibration_offer() -> None:
    """The sample clip's "no webcam" note may arrive after the first portrait: the offer to
    calibrate stays in the banner, the note is in the camera panel."""
    c = AppController(Commands(), Settings(), BUNDLED)
    c.started(BUNDLED[0])
    c.handle(PortraitLoaded(BUNDLED[0], "mona_lisa.jpg", ()))
    note = "No webcam found: the bundled sample clip plays as the camera."
    c.handle(SourceChanged("video sample.mp4 (looping)", "file", None, note))
    assert c.messages.current is not None and c.messages.current.action == "calibrate"
    assert c.camera.status() == f"video sample.mp4 (looping). {note}"

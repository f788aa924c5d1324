"""Personalization and profiles without Qt: the guidance, the live-check and progress texts, the
dialog's state machine, the profiles list, and the whole flow on the real engine (a Runner on
the sample clip, the profile library and a personalization job) with events pumped by hand."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.controller import AppController
from app.models.personalize import (
    CHECKING_TEXT,
    GOOD_TEXT,
    SAMPLE_NOTE,
    WAITING_TEXT,
    PersonalizeModel,
    guidance_at,
    live_check,
    progress_text,
)
from app.models.profiles import ProfilesModel
from app.settings_store import Settings
from engine.api import (
    GUIDANCE,
    RECORD_SECONDS,
    FrameCheck,
    LoaderOptions,
    PersonalizeJob,
    PersonalizeOptions,
    ProfileLibrary,
    Recording,
    RecordingStatus,
    Runner,
    RunnerOptions,
    bundled_portraits,
)
from engine.capture.image_file import load_image
from engine.landmarks.mediapipe_tracker import detect_faces
from engine.personalize.capture import assess_frame
from engine.training.finetune import Progress
from engine.types import Frame
from tests.live_tools import no_cameras
from tests.personalize_tools import make_profile

BUNDLED = [str(p) for p in bundled_portraits()]

# -- guidance, checks, progress -----------------------------------------------------------------


def test_guidance_walks_through_every_step_in_order() -> None:
    assert RECORD_SECONDS == 30.0 and len(GUIDANCE) == 8
    seen = [guidance_at(t / 10).index for t in range(0, 301)]
    assert seen == sorted(seen) and set(seen) == set(range(8))  # each step, in order
    assert guidance_at(0.0).text == "Look straight at the camera, face relaxed"
    assert guidance_at(3.99).index == 0 and guidance_at(4.0).index == 1
    assert guidance_at(4.0).text == "Turn your head slowly to the left"
    middle = guidance_at(15.0)  # steps of 4, 3, 3, 4 s, then 7 s of talking
    assert (middle.index, middle.count, middle.left_s, middle.fraction) == (4, 8, 15.0, 0.5)
    assert middle.text.startswith("Talk")
    end = guidance_at(31.0)
    assert (end.index, end.left_s, end.fraction) == (7, 0.0, 1.0)
    short = guidance_at(0.45, total_s=3.0)  # a 3 s recording: the steps shrink tenfold
    assert short.index == 1 and short.left_s == pytest.approx(2.55)


@pytest.fixture(scope="module")
def face_frame(sample_frames: list[Frame]) -> tuple[np.ndarray, Any]:
    image = sample_frames[0].image
    return image, detect_faces(image, max_faces=1)[0]


def test_live_check_messages_of_real_frames(face_frame: tuple[np.ndarray, Any]) -> None:
    image, face = face_frame
    waiting = live_check(None)  # nothing checked yet
    assert not waiting.ok and waiting.text == WAITING_TEXT
    good = live_check(assess_frame(image, [face]))
    assert good.ok and good.text == GOOD_TEXT
    dark = live_check(assess_frame((image * 0.12).astype(np.uint8), [face]))
    assert not dark.ok and dark.text == "✖ Too dark: face a window or a lamp."
    nobody = live_check(assess_frame(image, []))
    assert not nobody.ok and "No face in view: sit in front of the camera." in nobody.text
    wide = np.zeros((788, 1400, 3), np.uint8)  # the same face in a wider picture: smaller
    wide[154:634, 460:940] = image
    far = live_check(assess_frame(wide, detect_faces(wide, max_faces=1)))
    assert (
        not far.ok and far.text == "✖ Your face is small in the picture: move closer to the camera."
    )
    grace = load_image(bundled_portraits()[2])
    pair = np.ascontiguousarray(np.concatenate([grace, grace], axis=1))
    crowded = live_check(assess_frame(pair, detect_faces(pair, max_faces=3)))
    assert not crowded.ok and "only you should be in the picture" in crowded.text


def test_progress_text() -> None:
    assert progress_text(Progress(12, 0.087654, 20.4, 39.2, 0.34)) == (
        "Step 12 · loss 0.0877 · 20 s done, about 40 s left"
    )


# -- the dialog's state machine -----------------------------------------------------------------
def test_model_tracks_the_movement_covered_while_recording() -> None:
    """The live "moved so far" line: head turns, nods, mouth and blinks, each ticked once the
    recording has as much of it as the final check wants."""
    model = PersonalizeModel(record_seconds=3.0)
    model.recording_started()
    assert model.coverage.missing and "side to side 0/12°" in model.coverage.text

    def frame(n: int, yaw: float, pitch: float, mouth: float, eyes: float) -> None:
        check = FrameCheck(1, 0.2, 130.0, yaw, pitch, mouth, eyes)
        model.recorded(RecordingStatus(n, n / 15, check, False))

    for n in range(1, 21):  # still, mouth closed, eyes open
        frame(n, 0.0, 0.0, 0.0, 0.3)
    assert len(model.coverage.missing) == 4
    for n in range(21, 61):  # turn both ways, nod, talk, blink
        t = (n - 21) / 39
        frame(n, 15 * np.sin(6.28 * t), 8 * np.cos(6.28 * t), 0.3 * t, 0.3 - 0.25 * (n % 5 == 0))
    assert model.coverage.missing == ()
    assert model.coverage.text.count("✓") == 4
    model.recording_started()  # a new recording starts from nothing
    assert len(model.coverage.missing) == 4


def test_model_walks_through_recording_learning_and_results() -> None:
    model = PersonalizeModel(record_seconds=3.0)
    starts: list[str] = []
    cancels: list[str] = []
    changes: list[str] = []
    model.start_requested.connect(starts.append)
    model.cancel_requested.connect(cancels.append)
    model.changed.connect(lambda m: changes.append(m.phase))
    assert model.phase == "ready" and model.name == "Me"
    model.request_start("  Work me ")
    assert starts == ["Work me"] and model.phase == "ready"  # the controller moves it on
    model.recording_started(SAMPLE_NOTE)
    assert model.phase == "recording" and model.source_note == SAMPLE_NOTE
    model.request_start("again")  # ignored while recording
    assert starts == ["Work me"]
    dark = FrameCheck(1, 0.12, 20.0, 0.0, 0.0, 0.1, 0.3)
    assert not model.recorded(RecordingStatus(12, 0.9, dark, False))  # 9 s of 30, scaled
    assert model.step.text == "Now slowly to the right" and model.frames == 12
    assert model.step.left_s == pytest.approx(2.1)
    assert not model.check.ok and "Too dark" in model.check.text
    assert model.recorded(RecordingStatus(45, 3.0, None, False))  # long enough: stop it
    model.working()
    assert (model.phase, model.status) == ("working", CHECKING_TEXT)
    model.training_started("cpu", 60.0)
    assert "learning your face on the CPU (at most 60 s)" in model.status
    model.progress(Progress(3, 0.1, 6.0, 54.0, 0.1))
    assert model.status == "Learning your face…" and model.detail.startswith("Step 3 ·")
    assert model.fraction == 0.1
    model.request_cancel()
    model.request_cancel()  # asked once
    assert cancels == ["working"] and model.cancelling and model.status == "Cancelling…"
    model.reset()  # a run in progress is not forgotten
    assert model.phase == "working"
    model.failed("Cancelled: no profile was written.", cancelled=True)
    assert model.phase == "failed" and not model.cancelling
    assert model.status == "Cancelled: no profile was written. Your earlier profiles are untouched."
    model.request_start(None)
    assert starts == ["Work me", "Work me"]
    model.recording_started("")
    model.request_cancel()  # stop a recording: back to ready
    assert cancels == ["working", "recording"] and model.phase == "ready"
    model.recording_started("")
    model.recorded(RecordingStatus(3, 0.2, None, True))
    model.working()
    model.rejected(("Turn your head further to the left and to the right.",))
    assert model.phase == "rejected" and model.reasons[0].startswith("Turn your head")
    model.recording_started("")
    model.working()
    model.failed("OSError: disk full", cancelled=False)
    assert model.status == (
        "Personalization failed: OSError: disk full. Your earlier profiles are untouched."
    )
    assert changes.count("recording") >= 4 and changes[-1] == "failed"


# -- profiles -----------------------------------------------------------------------------------
def test_profiles_model_lists_and_follows_what_the_engine_loaded(tmp_path: Path) -> None:
    one = make_profile(tmp_path / "one", "One")
    two = make_profile(tmp_path / "two", "Two")
    model = ProfilesModel()
    lists: list[int] = []
    asked: list[str | None] = []
    selections: list[str | None] = []
    model.entries_changed.connect(lambda e: lists.append(len(e)))
    model.requested_changed.connect(asked.append)
    model.selection_changed.connect(selections.append)
    model.set_entries((one, two))
    model.set_entries((one, two))  # no change, no event
    assert lists == [2] and model.listed
    entry = model.entries[0]
    assert (entry.name, entry.source) == ("One", str(one.source))
    assert entry.detail.endswith("· not fine-tuned · cpu tier") and entry.detail[:4].isdigit()
    model.request(str(two.folder))
    assert asked == [str(two.folder)] and model.active is None
    model.refused(str(two.folder))
    assert model.requested is None and model.active is None
    model.loaded(str(one.folder))
    assert model.active_entry() == entry and selections[-1] == str(one.folder)
    model.deactivate()
    assert model.active is None and selections[-1] is None


# -- the flow on the real engine ----------------------------------------------------------------
class DirectEngine:
    """The engine without Qt: a Runner, the profile library and personalization jobs, their
    events queued for the test's thread (as the bridge queues them for the GUI thread)."""

    def __init__(self, root: Path) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        options = RunnerOptions(loader=LoaderOptions(networks=False), rescan_s=0.2)
        self.runner = Runner(self.events.put, options, camera_lister=no_cameras)
        self.library = ProfileLibrary(self.events.put, root)
        self.jobs: list[PersonalizeJob] = []

    def __getattr__(self, name: str) -> Any:  # the live commands go to the Runner as they are
        return getattr(self.runner, name)

    def personalize(
        self, recording: Recording, name: str, options: PersonalizeOptions
    ) -> PersonalizeJob:
        job = PersonalizeJob(recording, name, self.library.root, self.events.put, options)
        self.jobs.append(job)
        job.start()
        return job

    def refresh_profiles(self) -> None:
        self.library.refresh()

    def rename_profile(self, folder: str, name: str) -> None:
        self.library.rename(folder, name)

    def delete_profile(self, folder: str) -> None:
        self.library.delete(folder)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DirectEngine]:
    direct = DirectEngine(tmp_path / "profiles")
    yield direct
    for job in direct.jobs:
        job.cancel()
        job.wait(30.0)
    direct.library.stop()
    direct.runner.stop()


def _pump(engine: DirectEngine, c: AppController, until: Any, timeout: float) -> None:
    """The GUI thread's part: poll the recording, hand over the engine's events and frames."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        c.personalization.poll()
        with contextlib.suppress(queue.Empty):
            c.handle(engine.events.get(timeout=0.05))
        live = engine.runner.latest()
        if live is not None:
            c.show(live)


def test_the_flow_on_the_real_engine(engine: DirectEngine, tmp_path: Path) -> None:
    """The sample clip (a demo) through the guidance and live checks for 2.5 s, then the real
    job turns it down with reasons; a profile is listed, animated, renamed and deleted (the
    avatar then returns to the portrait) for real."""
    root = tmp_path / "profiles"
    c = AppController(engine, Settings(calibration_offered=True), BUNDLED, record_seconds=2.5)
    engine.library.start()
    request = c.startup_request()
    engine.runner.start(c.startup_source(), request)
    c.started(request)
    _pump(engine, c, lambda: c.gallery.selected is not None and c.camera.playing_sample(), 20)
    model = c.personalize
    steps: set[int] = set()
    checks: set[str] = set()

    def seen(m: PersonalizeModel) -> None:
        steps.add(m.step.index)
        checks.add(m.check.text)

    model.changed.connect(seen)
    model.request_start("Me")
    assert model.phase == "recording" and model.source_note == SAMPLE_NOTE
    _pump(engine, c, lambda: model.phase != "recording", 20.0)
    assert c.personalization.busy and model.phase == "working"
    assert {0, 7} <= steps and len(steps) >= 6  # the guidance went through its steps
    assert GOOD_TEXT in checks  # the sample clip's face passes the live checks
    _pump(engine, c, lambda: model.phase != "working", 60.0)
    assert model.phase == "rejected" and not c.personalization.busy
    assert any("record at least 10 s" in r for r in model.reasons)
    assert not root.exists() or not any(root.iterdir())  # nothing written
    info = make_profile(root / "sample")
    c.personalization.engine.refresh_profiles()
    _pump(engine, c, lambda: len(c.profiles.entries) == 1, 10.0)
    folder = c.profiles.entries[0].folder
    c.profiles.request(folder)
    _pump(engine, c, lambda: c.profiles.active == folder, 20.0)
    assert c.gallery.selected is None and c.preview.avatar_name == "Sample person"
    _pump(
        engine, c, lambda: c.preview.frame is not None and c.preview.frame.portrait == info.name, 10
    )
    assert c.settings().profile == folder and Path(c.settings().portrait).name == "mona_lisa.jpg"
    c.personalization.rename(folder, "   ")
    assert c.messages.current is not None and "cannot be empty" in c.messages.current.text
    c.personalization.rename(folder, " Work me ")
    _pump(engine, c, lambda: c.profiles.entries[0].name == "Work me", 10.0)
    assert c.preview.avatar_name == "Work me"
    c.delete_profile(folder)
    _pump(engine, c, lambda: c.profiles.entries == () and c.gallery.selected is not None, 20.0)
    assert not Path(folder).exists() and c.profiles.active is None
    assert Path(c.gallery.selected or "").name == "mona_lisa.jpg" and c.settings().profile == ""


def test_a_remembered_profile_that_went_bad_falls_back_to_the_portrait(
    engine: DirectEngine, tmp_path: Path
) -> None:
    broken = tmp_path / "profiles" / "gone"
    broken.mkdir(parents=True)  # its files were removed behind Visage's back
    grace = BUNDLED[2]
    settings = Settings(portrait=grace, profile=str(broken), calibration_offered=True)
    c = AppController(engine, settings, BUNDLED)
    posted: list[Any] = []
    c.messages.changed.connect(posted.append)
    request = c.startup_request()
    assert request.profile and request.path == str(broken)
    engine.library.start()
    engine.runner.start(c.startup_source(), request)
    c.started(request)
    _pump(engine, c, lambda: c.gallery.selected is not None, 20.0)
    assert c.gallery.selected == grace and c.profiles.active is None
    errors = [m.text for m in posted if m is not None and m.level == "error"]
    assert len(errors) == 1 and errors[0].startswith("Profile gone was not loaded: ")
    assert "not a complete profile" in errors[0] and errors[0].endswith("Showing grace_hopper.jpg.")
    assert c.settings().profile == "" and c.settings().portrait == grace

"""The live side of personalization: the recording tap and its live checks, a profile animated
by the runner with its own networks, the profile library's worker and the personalization job.
Real frames, real MediaPipe, real networks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from engine.capture.image_file import load_image
from engine.landmarks.mediapipe_tracker import detect_faces
from engine.paths import portraits_dir
from engine.runtime.events import ComputeChanged, PortraitLoaded, PortraitRefused, SourceSpec
from engine.runtime.personalize_job import (
    PersonalizeFailed,
    PersonalizeFinished,
    PersonalizeJob,
    PersonalizeOptions,
    PersonalizeProgress,
    PersonalizeRejected,
    PersonalizeStarted,
    free_folder,
)
from engine.runtime.portrait_loader import LoaderOptions, PortraitRequest
from engine.runtime.profiles import ProfileActionFailed, ProfileLibrary, ProfilesChanged
from engine.runtime.recorder import Recorder, Recording
from engine.runtime.runner import Runner, RunnerOptions
from engine.types import Frame
from tests.live_tools import no_cameras, wait_for
from tests.personalize_tools import accept_any_recording, make_profile, tree_digest


class Events:
    """Thread-safe record of events, with the names of the threads that sent them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Any] = []
        self.threads: set[str] = set()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.items.append(event)
            self.threads.add(threading.current_thread().name)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.items if isinstance(e, kind)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the recorder -------------------------------------------------------------------------------
def test_recorder_keeps_scaled_rate_capped_bounded_frames(sample_frames: list[Frame]) -> None:
    """A 1280×720 camera at 30 fps: 15 frames a second are kept, scaled to 720×405, up to the
    bound; nothing before start or after stop."""
    wide = [cv2.resize(f.image, (1280, 720)) for f in sample_frames[:10]]
    recorder = Recorder(max_seconds=2.0)
    recorder.offer(wide[0], 0.0)  # not armed
    assert recorder.status() is None
    recorder.start()
    for i in range(120):  # 4 s at 30 fps
        recorder.offer(wide[i % 10], 10.0 + i / 30)
    status = recorder.status()
    assert status is not None and status.full and status.check is None
    recording = recorder.stop()
    assert recorder.status() is None
    assert 30 <= len(recording.images) <= 31 and status.frames == len(recording.images)
    assert recording.fps == pytest.approx(15.0, rel=0.02)
    assert recording.times_s[0] == 0.0 and recording.times_s[-1] <= 2.0
    assert np.all(np.diff(recording.times_s) > 0)
    assert recording.images[0].shape == (405, 720, 3)
    small = cv2.resize(wide[0], (720, 405), interpolation=cv2.INTER_AREA)
    assert np.array_equal(recording.images[0], small)
    recorder.offer(wide[0], 20.0)  # stopped: not kept
    assert recorder.stop() == Recording((), ())


def test_live_checks_of_real_frames(sample_frames: list[Frame]) -> None:
    """One clear face passes; none, a dark picture and two people say what to do."""
    clock = Clock()
    recorder = Recorder(clock=clock)
    recorder.start()
    image = sample_frames[0].image

    def check(img: np.ndarray, with_face: bool = True) -> Any:
        clock.now += 1.5  # past both throttles: a check and a face count
        faces = detect_faces(img, max_faces=1)
        recorder.observe(img, faces[0] if faces and with_face else None)
        status = recorder.status()
        assert status is not None and status.check is not None
        return status.check

    good = check(image)
    assert good.faces == 1 and good.problems == () and 0.1 < good.size < 0.3
    assert "No face in view" in check(image, with_face=False).problems[0]
    assert any("Too dark" in p for p in check((image * 0.12).astype(np.uint8)).problems)
    face = load_image(portraits_dir() / "grace_hopper.jpg")
    pair = np.ascontiguousarray(np.concatenate([face, face], axis=1))
    assert any("only you" in p for p in check(pair).problems)
    before = recorder.status()
    recorder.observe(image, None)  # within CHECK_EVERY_S of the last: not checked again
    assert recorder.status() == before


# -- the runner ---------------------------------------------------------------------------------
@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.stop()


def _runner(runners: list[Runner], events: Events, loader: LoaderOptions) -> Runner:
    options = RunnerOptions(loader=loader, rescan_s=0.2, retry_s=0.3)
    runner = Runner(events, options, camera_lister=no_cameras)
    runners.append(runner)
    return runner


def test_runner_records_the_driving_frames_with_live_checks(runners: list[Runner]) -> None:
    events = Events()
    runner = _runner(runners, events, LoaderOptions(networks=False))
    runner.start(SourceSpec(), portraits_dir() / "mona_lisa.jpg")
    assert wait_for(lambda: runner.latest() is not None, 20.0)
    runner.start_recording()
    assert wait_for(lambda: (s := runner.recording_status()) is not None and s.seconds > 2.0, 10)
    status = runner.recording_status()
    assert status is not None and status.check is not None and status.check.problems == ()
    recording = runner.stop_recording()
    assert runner.recording_status() is None
    assert 10.0 < recording.fps < 16.0  # the 25 fps sample, at most 15 kept a second
    assert recording.images[0].shape == (480, 480, 3)
    assert np.abs(recording.images[0].astype(int) - recording.images[-1]).mean() > 0.5


def test_runner_animates_a_profile_with_its_own_networks(
    runners: list[Runner], tmp_path: Path
) -> None:
    info = make_profile(tmp_path / "sample")
    events = Events()
    runner = _runner(runners, events, LoaderOptions(networks=True, backend="eager"))
    runner.start(SourceSpec(), PortraitRequest(str(info.folder), profile=True))
    assert wait_for(lambda: any("networks" in e.compute for e in events.of(ComputeChanged)), 90)
    loaded = events.of(PortraitLoaded)[0]
    assert loaded == PortraitLoaded(str(info.folder), "Sample person", (), profile=True)
    first, neural = events.of(ComputeChanged)[:2]
    assert first.note == "preparing the profile's own networks"
    assert neural.compute.startswith("cpu-tier networks of profile 'Sample person': eager")
    pipeline = runner._pipeline  # the networks animating it are the profile's
    assert pipeline is not None and pipeline.neural is not None
    assert pipeline.neural.models.folder == info.folder
    assert wait_for(lambda: (f := runner.latest()) is not None and f.portrait == info.name, 10)
    live = runner.latest()
    assert live is not None and live.avatar.shape == (256, 256, 3)
    source = load_image(info.source)
    mona = cv2.resize(load_image(portraits_dir() / "mona_lisa.jpg"), (256, 256))
    assert np.abs(live.avatar.astype(int) - source).mean() < np.abs(live.avatar - mona).mean()
    (tmp_path / "broken").mkdir()
    runner.load_profile(tmp_path / "broken")
    assert wait_for(lambda: bool(events.of(PortraitRefused)), 10)
    refused = events.of(PortraitRefused)[0]
    assert refused.profile and "not a complete profile" in refused.reason


# -- the profile library ------------------------------------------------------------------------
def test_profile_library_lists_renames_deletes_on_its_worker(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    events = Events()
    library = ProfileLibrary(events, root)
    library.start()
    try:
        library.refresh()
        assert wait_for(lambda: len(events.of(ProfilesChanged)) == 1, 10)
        assert events.of(ProfilesChanged)[0] == ProfilesChanged(str(root), ())
        make_profile(root / "sample")
        library.rename(root / "sample", "  Work me ")
        library.rename(root / "sample", " ")
        library.delete(root / "nowhere")
        assert wait_for(lambda: len(events.of(ProfilesChanged)) == 4, 10)
        renamed = events.of(ProfilesChanged)[1].profiles
        assert [(p.name, p.folder) for p in renamed] == [("Work me", root / "sample")]
        failures = events.of(ProfileActionFailed)
        assert [f.action for f in failures] == ["rename", "delete"]
        assert "cannot be empty" in failures[0].message
        assert "not a complete profile" in failures[1].message
        library.delete(root / "sample")
        assert wait_for(lambda: len(events.of(ProfilesChanged)) == 5, 10)
        assert events.of(ProfilesChanged)[-1].profiles == () and not (root / "sample").exists()
        assert events.threads == {"visage-profiles"}
    finally:
        library.stop()


# -- the personalization job --------------------------------------------------------------------
def _recording(frames: list[Frame], count: int, fps: float = 25.0) -> Recording:
    return Recording(tuple(f.image for f in frames[:count]), tuple(i / fps for i in range(count)))


def _run(job: PersonalizeJob, events: Events) -> Any:
    job.start()
    assert job.wait(120.0)
    return events.items[-1]


def test_job_rejects_a_short_recording_and_writes_nothing(
    sample_frames: list[Frame], tmp_path: Path
) -> None:
    events = Events()
    job = PersonalizeJob(_recording(sample_frames, 40), "Me", tmp_path, events)
    outcome = _run(job, events)
    started = events.of(PersonalizeStarted)[0]
    assert (started.device, started.budget_s, started.frames) == ("cpu", 60.0, 40)
    assert started.fps == pytest.approx(25.0)
    assert isinstance(outcome, PersonalizeRejected)
    assert any("record at least 10 s" in r for r in outcome.reasons)
    assert list(tmp_path.iterdir()) == []
    assert events.threads == {"visage-personalize"}


def test_job_saves_a_new_profile_beside_an_existing_one(
    sample_frames: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_any_recording(monkeypatch)
    old = make_profile(tmp_path / "me", "Me")
    before = tree_digest(old.folder)
    events = Events()
    options = PersonalizeOptions(budget_s=30.0, max_steps=1)
    outcome = _run(
        PersonalizeJob(_recording(sample_frames, 30), " Me ", tmp_path, events, options), events
    )
    assert isinstance(outcome, PersonalizeFinished), outcome
    assert outcome.profile.folder == tmp_path / "me-2" and outcome.profile.name == "Me"
    assert outcome.profile.steps == 1 and len(events.of(PersonalizeProgress)) == 1
    assert tree_digest(old.folder) == before
    assert free_folder(tmp_path, "me") == tmp_path / "me-3"


def test_job_cancelled_in_the_fine_tune_writes_nothing(
    sample_frames: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_any_recording(monkeypatch)
    events = Events()
    job = PersonalizeJob(
        _recording(sample_frames, 30), "Me", tmp_path, events, PersonalizeOptions(budget_s=600.0)
    )
    job.start()
    assert wait_for(lambda: bool(events.of(PersonalizeProgress)), 120)
    started = time.monotonic()
    job.cancel()
    assert job.wait(60.0) and time.monotonic() - started < 30
    assert events.items[-1] == PersonalizeFailed("Cancelled: no profile was written.", True)
    assert list(tmp_path.iterdir()) == []


def test_job_failure_is_reported_with_its_cause(
    sample_frames: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profiles folder cannot be made (a file is in the way): the cause comes back and
    the other profiles stay as they were."""
    accept_any_recording(monkeypatch)
    old = make_profile(tmp_path / "profiles" / "me", "Me")
    before = tree_digest(old.folder)
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    events = Events()
    options = PersonalizeOptions(budget_s=30.0, max_steps=1)
    job = PersonalizeJob(_recording(sample_frames, 30), "Me", blocked, events, options)
    outcome = _run(job, events)
    assert isinstance(outcome, PersonalizeFailed) and not outcome.cancelled
    assert outcome.message.startswith("FileExistsError: ") and str(blocked) in outcome.message
    assert tree_digest(old.folder) == before and blocked.read_text() == "not a folder"

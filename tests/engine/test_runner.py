"""The live runner end to end: real clips through OpenCV, real MediaPipe, real portraits, and
pyvirtualcam's own Camera with a recording backend. Geometric path unless said otherwise."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.capture.video_source import VideoFileSource
from engine.capture.video_writer import VideoWriter
from engine.capture.virtual_camera import VirtualCameraSettings, install_hint
from engine.landmarks.mediapipe_tracker import face_boxes
from engine.paths import portraits_dir
from engine.runtime import pipeline as pipeline_module
from engine.runtime.affinity import pinning_enabled
from engine.runtime.events import (
    CamerasChanged,
    ComputeChanged,
    EngineFault,
    LiveFrame,
    PortraitLoaded,
    PortraitRefused,
    RunnerEvent,
    SourceChanged,
    SourceLost,
    SourceSpec,
    VirtualCameraChanged,
)
from engine.runtime.portrait_loader import LoaderOptions
from engine.runtime.runner import Runner, RunnerOptions
from engine.types import Frame
from tests.live_tools import (
    RECORDING,
    RecordingBackend,
    Socket,
    camera_parts,
    no_cameras,
    register_recording_backend,
    slow_pipeline,
    unregister_recording_backend,
    wait_for,
)

MONA = portraits_dir() / "mona_lisa.jpg"
GRACE = portraits_dir() / "grace_hopper.jpg"
GEOMETRIC = LoaderOptions(networks=False)


class Events:
    """Thread-safe record of a runner's events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[RunnerEvent] = []

    def __call__(self, event: RunnerEvent) -> None:
        with self._lock:
            self.items.append(event)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.items if isinstance(e, kind)]


StartRunner = Callable[..., tuple[Runner, Events]]


@pytest.fixture
def start_runner() -> Iterator[StartRunner]:
    runners: list[Runner] = []

    def start(
        source: SourceSpec | None = None,
        portrait: Path = MONA,
        loader: LoaderOptions = GEOMETRIC,
        **parts: Any,
    ) -> tuple[Runner, Events]:
        events = Events()
        parts.setdefault("camera_lister", no_cameras)
        options = RunnerOptions(loader=loader, rescan_s=0.2, retry_s=0.3)
        runner = Runner(events, options, **parts)
        runners.append(runner)
        runner.start(source or SourceSpec(), portrait)
        return runner, events

    yield start
    for runner in runners:
        runner.stop()


def _frames_after(runner: Runner, sequence: int, timeout: float = 20.0) -> LiveFrame:
    assert wait_for(lambda: (f := runner.latest()) is not None and f.sequence > sequence, timeout)
    live = runner.latest()
    assert live is not None
    return live


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_sample_clip_drives_the_avatar_when_there_is_no_webcam(
    start_runner: StartRunner, sample_frames: list[Frame]
) -> None:
    frozen = gc.get_freeze_count()
    runner, events = start_runner()
    first = _frames_after(runner, 0)
    # what the prepared portrait holds was moved out of the collector's generations, so a
    # full collection does not pause the loop over it
    assert gc.get_freeze_count() > frozen
    assert first.output.index < len(sample_frames)  # a file plays as made, never mirrored
    assert np.array_equal(first.driving, sample_frames[first.output.index].image)
    source = events.of(SourceChanged)[0]
    assert source.kind == "file" and "sample.mp4" in source.description
    assert "No webcam found" in source.note
    loaded = events.of(PortraitLoaded)[0]
    assert loaded.name == "mona_lisa.jpg"
    assert events.of(ComputeChanged)[0].compute == "geometric path"
    time.sleep(2.0)
    live = _frames_after(runner, first.sequence)
    assert live.avatar.shape == (1155, 743, 3) and live.driving.shape == (480, 480, 3)
    assert live.output.face_found and live.landmarks is not None
    # Never faster than the clip's own 25 fps (speed itself is `visage bench`'s job: a busy
    # machine only lowers this), and no backlog: each frame is the newest one.
    assert 0.0 < live.fps < 27.0, live.fps
    assert live.latency_ms < 1000.0
    assert _diff(live.avatar, first.avatar) > 0.05  # it moves
    assert not events.of(EngineFault)


def test_camera_vanishing_keeps_the_last_avatar_then_recovers(
    start_runner: StartRunner, sample_clip: Path, sample_frames: list[Frame]
) -> None:
    socket = Socket()
    runner, events = start_runner(
        SourceSpec(kind="camera", camera=0), **camera_parts(sample_clip, socket)
    )
    before = _frames_after(runner, 10)
    assert before.output.index < len(sample_frames)  # a camera is mirrored (a selfie view)
    assert np.array_equal(before.driving, sample_frames[before.output.index].image[:, ::-1])
    assert events.of(SourceChanged)[0].kind == "camera"
    socket.plugged = False
    assert wait_for(lambda: bool(events.of(SourceLost)), 5.0)
    lost = events.of(SourceLost)[0]
    assert "stopped delivering frames" in lost.message and "retrying" in lost.message
    time.sleep(0.2)
    held = runner.latest()
    assert held is not None and held.sequence >= before.sequence
    time.sleep(1.0)  # several retries while unplugged; the last avatar frame stays
    still = runner.latest()
    assert still is not None and still.sequence == held.sequence
    assert np.array_equal(still.avatar, held.avatar)
    opened = socket.opened
    socket.plugged = True
    back = _frames_after(runner, held.sequence, timeout=5.0)
    assert socket.opened == opened + 1
    assert "is back" in events.of(SourceChanged)[-1].note
    assert back.output.face_found or _frames_after(runner, back.sequence + 5).output.face_found


def test_a_camera_plugged_in_replaces_the_sample_clip(
    start_runner: StartRunner, sample_clip: Path
) -> None:
    socket = Socket()
    socket.plugged = False
    runner, events = start_runner(**camera_parts(sample_clip, socket))
    _frames_after(runner, 0)
    assert events.of(SourceChanged)[0].kind == "file"
    socket.plugged = True
    assert wait_for(lambda: any(e.kind == "camera" for e in events.of(SourceChanged)), 5.0)
    assert events.of(CamerasChanged)[-1].cameras[0].name == "Test camera"
    assert runner.cameras[0].index == 0


def test_portrait_without_a_face_is_refused_and_the_current_one_stays(
    start_runner: StartRunner, tmp_path: Path
) -> None:
    """A real crop of the painting's landscape (no face) is refused with the engine's reason."""
    runner, events = start_runner()
    before = _frames_after(runner, 5)
    landscape = tmp_path / "landscape.png"
    Image.open(MONA).crop((0, 0, 300, 260)).save(landscape)
    runner.load_portrait(landscape)
    assert wait_for(lambda: bool(events.of(PortraitRefused)), 20.0)
    refused = events.of(PortraitRefused)[0]
    assert refused.path == str(landscape) and refused.reason.startswith("No face found")
    after = _frames_after(runner, before.sequence + 10)
    assert after.portrait == "mona_lisa.jpg" and after.avatar.shape == before.avatar.shape
    assert len(events.of(PortraitLoaded)) == 1


def test_switching_portrait_keeps_the_driver_calibration(
    start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    runner, events = start_runner()
    _frames_after(runner, 10)
    with caplog.at_level(logging.INFO):
        runner.load_portrait(GRACE)
        assert wait_for(lambda: len(events.of(PortraitLoaded)) == 2, 20.0)
        live = _frames_after(runner, runner.latest().sequence + 10)  # type: ignore[union-attr]
    assert live.portrait == "grace_hopper.jpg" and live.avatar.shape == (600, 512, 3)
    # the tracker, smoothing and neutral face moved over: no new automatic neutral face
    assert "neutral face set" not in caplog.text


@pytest.mark.parametrize("half", ["begin", "finish"])  # the processing or the finishing thread
def test_engine_error_is_reported_with_its_cause_and_the_runner_recovers(
    start_runner: StartRunner, monkeypatch: pytest.MonkeyPatch, half: str
) -> None:
    original = getattr(pipeline_module.Pipeline, half)
    calls = {"n": 0}

    def flaky(self: Any, *args: Any) -> Any:
        calls["n"] += 1
        if 20 <= calls["n"] < 25:
            raise RuntimeError("simulated stage failure")
        return original(self, *args)

    monkeypatch.setattr(pipeline_module.Pipeline, half, flaky)
    runner, events = start_runner()
    assert wait_for(lambda: calls["n"] > 40, 30.0)
    faults = events.of(EngineFault)
    assert len(faults) == 1, faults  # five failures in a row: reported once
    assert "RuntimeError: simulated stage failure" in faults[0].message
    assert "Traceback" in faults[0].details
    live = _frames_after(runner, runner.latest().sequence)  # type: ignore[union-attr]
    assert live.output.face_found


def _face_then_nothing(sample_clip: Path, out: Path) -> Path:
    """40 frames of the sample (a face) then 40 flat grey frames, at 25 fps."""
    with VideoFileSource(sample_clip, max_frames=40) as src:
        frames = [f.image for f in src]
    with VideoWriter(out, size=(480, 480), fps=25, preset="ultrafast") as writer:
        for image in frames + [np.full_like(frames[0], 127)] * 40:
            writer.write(image)
    return out


def test_face_lost_eases_to_the_neutral_portrait_never_the_driver(
    start_runner: StartRunner, sample_clip: Path, tmp_path: Path
) -> None:
    clip = _face_then_nothing(sample_clip, tmp_path / "lost.mp4")
    runner, _ = start_runner(SourceSpec(kind="file", path=str(clip), mirror=False))
    portrait = np.asarray(Image.open(MONA).convert("RGB"))
    seen: list[LiveFrame] = []
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and len(seen) < 75:
        live = runner.latest()
        if live is not None and (not seen or live.sequence != seen[-1].sequence):
            seen.append(live)
        time.sleep(0.01)
    lost = [f for f in seen if not f.output.face_found]
    assert len(lost) > 20
    # the avatar is always the portrait's picture (its own size and content), never the driver
    assert all(f.avatar.shape == portrait.shape for f in seen)
    assert all(_diff(f.avatar, portrait) < 6.0 for f in seen)
    # after hold + ease-out (0.8 s by default) it is the portrait's neutral face
    late = [f for f in lost if f.output.presence == 0.0]
    assert late and _diff(late[-1].avatar, portrait) < 1.5


@pytest.mark.parametrize("half", ["begin", "finish"])  # either thread can be the slow one
def test_slow_engine_drops_frames_instead_of_delaying_them(
    start_runner: StartRunner, monkeypatch: pytest.MonkeyPatch, half: str
) -> None:
    slow_pipeline(monkeypatch, 0.3, half)
    runner, _ = start_runner()
    live = _frames_after(runner, 0)
    latencies = []
    for _ in range(6):
        live = _frames_after(runner, live.sequence, timeout=5.0)
        latencies.append(live.latency_ms)
    assert max(latencies) < 1000.0, latencies  # newest frame wins: no backlog builds up
    assert runner._frames.dropped > 20  # most camera frames were skipped, not queued
    assert live.fps < 3.6  # bounded by the 0.3 s engine, whatever the camera delivers


@pytest.fixture
def recording() -> Iterator[None]:
    register_recording_backend()
    yield
    unregister_recording_backend()


def _placement(avatar: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    from engine.capture.frame_layout import fit_inside

    p = fit_inside((avatar.shape[1], avatar.shape[0]), size)
    return p.x, p.y, p.width, p.height


@pytest.mark.usefixtures("recording")
@pytest.mark.parametrize("size", [(1280, 720), (640, 480)])
def test_virtual_camera_sends_the_avatar_not_the_camera(
    start_runner: StartRunner, size: tuple[int, int]
) -> None:
    runner, events = start_runner()
    live = _frames_after(runner, 5)
    runner.start_virtual_camera(VirtualCameraSettings(*size, backend=RECORDING))
    assert wait_for(lambda: bool(events.of(VirtualCameraChanged)), 5.0)
    started = events.of(VirtualCameraChanged)[0]
    assert started.running and started.size == size and RECORDING in started.message
    backend = RecordingBackend.last
    assert backend is not None and backend.is_rgb and (backend.width, backend.height) == size
    time.sleep(2.0)
    times, frames = backend.snapshot()
    live = runner.latest()  # type: ignore[assignment]
    intervals = np.diff(times[-40:])
    assert abs(float(np.median(intervals)) - 1 / 30) < 0.004, np.median(intervals)
    assert len(times) <= 66  # ~30 per second at most, steady, whatever the engine's rate
    frame = frames[-1]
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    x, y, w, h = _placement(live.avatar, size)
    shown = frame[y : y + h, x : x + w]
    avatar = np.asarray(Image.fromarray(live.avatar).resize((w, h), Image.Resampling.BOX))
    driver = np.asarray(Image.fromarray(live.driving).resize((w, h), Image.Resampling.BOX))
    assert _diff(shown, avatar) < 6.0
    assert _diff(shown, driver) > 4 * max(_diff(shown, avatar), 5.0)
    # MediaPipe's face detector finds the avatar's face where the layout put the avatar
    boxes, own = face_boxes(frame), face_boxes(live.avatar)
    assert len(boxes) == 1 and len(own) == 1, (boxes, own)
    centre = np.array(boxes[0]).reshape(2, 2).mean(axis=0)
    expected = np.array([x, y]) + np.array(own[0]).reshape(2, 2).mean(axis=0) * (
        w / live.avatar.shape[1]
    )
    assert np.linalg.norm(centre - expected) < 0.05 * w, (centre, expected)
    runner.stop_virtual_camera()
    assert wait_for(lambda: len(events.of(VirtualCameraChanged)) == 2, 5.0)
    assert backend.closed and not events.of(VirtualCameraChanged)[1].running
    runner.start_virtual_camera(VirtualCameraSettings(*size, backend=RECORDING))
    assert wait_for(lambda: len(events.of(VirtualCameraChanged)) == 3, 5.0)
    again = RecordingBackend.last
    assert again is not backend and again is not None
    assert wait_for(lambda: len(again.snapshot()[0]) > 10, 3.0)


def test_without_a_virtual_camera_it_says_what_to_install_and_keeps_going(
    start_runner: StartRunner,
) -> None:
    unregister_recording_backend()
    runner, events = start_runner()
    live = _frames_after(runner, 3)
    runner.start_virtual_camera()
    assert wait_for(lambda: bool(events.of(VirtualCameraChanged)), 5.0)
    change = events.of(VirtualCameraChanged)[0]
    assert not change.running and change.failed
    assert change.message.startswith("No virtual camera could be opened")
    assert install_hint() in change.message
    assert "exclusive_caps=1" in change.message and "card_label=Visage" in change.message
    _frames_after(runner, live.sequence + 10)  # the avatar keeps running
    assert not events.of(EngineFault)


@pytest.mark.slow
def test_networks_take_over_once_ready(
    start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.runtime.affinity")
    runner, events = start_runner(loader=LoaderOptions(networks=True, backend="eager"))
    assert wait_for(lambda: len(events.of(ComputeChanged)) >= 2, 120.0)
    first, second = events.of(ComputeChanged)[:2]
    assert first.compute == "geometric path" and "preparing the cpu-tier networks" in first.note
    assert second.compute.startswith("cpu-tier networks: eager on cpu")
    live = _frames_after(runner, runner.latest().sequence + 5)  # type: ignore[union-attr]
    assert live.output.timings.warp_net_ms > 0 and live.output.timings.fusion_ms > 0
    assert len(events.of(PortraitLoaded)) == 1  # the same portrait, upgraded
    if pinning_enabled():  # the two loop threads took their halves of the cores, pinned
        pinned = [r.getMessage() for r in caplog.records if "pinned to cores" in r.getMessage()]
        assert sorted(m.split(":")[0] for m in pinned) == ["visage-finishing", "visage-processing"]


def test_a_portrait_with_several_faces_animates_the_largest_and_says_so(
    start_runner: StartRunner,
) -> None:
    from tests.conftest import faces_dir

    group = faces_dir() / "multi_face" / "3DDFA_V2__examples_inputs_trump_hillary.jpg"
    if not group.exists():
        pytest.skip(f"{group.name} missing from the development face data")
    runner, events = start_runner(portrait=group)
    assert wait_for(lambda: bool(events.of(PortraitLoaded)), 30.0)
    notes = events.of(PortraitLoaded)[0].notes
    assert any("faces found in" in n and "animating the largest" in n for n in notes), notes
    _frames_after(runner, 3)

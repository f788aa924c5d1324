"""The bridge between the engine's threads and the GUI thread.

It owns the live Runner, the profile library and the personalization job. Engine callbacks
(from engine threads) become queued Qt signals delivered on the GUI thread (`engine_event`);
frames are pulled on a QTimer (`frame_ready` fires only for a new one). Commands go straight to
the engine, whose methods never block.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from engine.api import (
    Controls,
    EngineEvent,
    LiveFrame,
    PersonalizeJob,
    PersonalizeOptions,
    PortraitRequest,
    ProfileLibrary,
    Recording,
    RecordingStatus,
    Runner,
    RunnerOptions,
    SourceSpec,
    VirtualCameraSettings,
)

log = logging.getLogger(__name__)

PULL_MS = 15  # how often the GUI looks for a new frame (the camera delivers every 33-40 ms)
JOB_WAIT_S = 2.0  # how long closing waits for a cancelled personalization to end


class EngineBridge(QObject):
    """engine_event(EngineEvent) and frame_ready(LiveFrame) are emitted on the GUI thread.
    runner_parts: passed to Runner (camera_opener, camera_lister, sink) to replace parts.
    profiles_root: the profiles folder (None: the user's)."""

    engine_event = Signal(object)
    frame_ready = Signal(object)
    _posted = Signal(object)  # emitted from engine threads; delivered queued

    def __init__(
        self,
        options: RunnerOptions | None = None,
        parent: QObject | None = None,
        profiles_root: Path | None = None,
        **runner_parts: Any,
    ) -> None:
        super().__init__(parent)
        self.runner = Runner(self._post, options, **runner_parts)
        self.profiles = ProfileLibrary(self._post, profiles_root)
        self.job: PersonalizeJob | None = None
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setInterval(PULL_MS)
        self._timer.timeout.connect(self._pull)
        self._shown = 0
        self.running = False
        self.unfinished = False  # a network compile was still running when stopped

    # -- lifetime ----------------------------------------------------------------------------------
    def start(self, source: SourceSpec, portrait: str | Path | PortraitRequest) -> None:
        self.runner.start(source, portrait)
        self.profiles.start()
        self._timer.start()
        self.running = True

    def stop(self) -> None:
        """Stop the timer and every engine thread (joins them; see `unfinished`). A running
        personalization is cancelled (nothing is written)."""
        self._timer.stop()
        if self.running:
            self.running = False
            job_ended = True
            if self.job is not None:
                self.job.cancel()
                job_ended = self.job.wait(JOB_WAIT_S)
            self.profiles.stop()
            self.unfinished = not self.runner.stop() or not job_ended

    # -- engine -> GUI -----------------------------------------------------------------------------
    def _post(self, event: EngineEvent) -> None:
        """Called on engine threads: hand the event to the GUI thread's event loop."""
        self._posted.emit(event)

    @Slot(object)
    def _deliver(self, event: EngineEvent) -> None:
        self.engine_event.emit(event)

    def _pull(self) -> None:
        live = self.runner.latest()
        if live is not None and live.sequence != self._shown:
            self._shown = live.sequence
            self.frame_ready.emit(live)

    def latest(self) -> LiveFrame | None:
        return self.runner.latest()

    # -- GUI -> engine (never blocks) --------------------------------------------------------------
    def load_portrait(self, path: str | Path) -> None:
        self.runner.load_portrait(path)

    def switch_source(self, source: SourceSpec) -> None:
        self.runner.switch_source(source)

    def set_controls(self, controls: Controls) -> None:
        self.runner.set_controls(controls)

    def calibrate(self) -> None:
        self.runner.calibrate()

    def start_virtual_camera(self, settings: VirtualCameraSettings | None = None) -> None:
        self.runner.start_virtual_camera(settings)

    def stop_virtual_camera(self) -> None:
        self.runner.stop_virtual_camera()

    def rescan_cameras(self) -> None:
        self.runner.rescan_cameras()

    # -- personalization and profiles (never block) ------------------------------------------------
    def load_profile(self, folder: str | Path) -> None:
        self.runner.load_profile(folder)

    def start_recording(self) -> None:
        self.runner.start_recording()

    def recording_status(self) -> RecordingStatus | None:
        return self.runner.recording_status()

    def stop_recording(self) -> Recording:
        return self.runner.stop_recording()

    def personalize(
        self, recording: Recording, name: str, options: PersonalizeOptions
    ) -> PersonalizeJob:
        """Learn a new profile from `recording` on a worker thread (events: engine_event)."""
        self.job = PersonalizeJob(recording, name, self.profiles.root, self._post, options)
        self.job.start()
        return self.job

    def refresh_profiles(self) -> None:
        self.profiles.refresh()

    def rename_profile(self, folder: str, name: str) -> None:
        self.profiles.rename(folder, name)

    def delete_profile(self, folder: str) -> None:
        self.profiles.delete(folder)

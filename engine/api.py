"""The engine's public surface for the desktop app (app/ imports this module and nothing else
of the engine). Everything here is Qt-free; the live parts run on their own threads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.capture.cameras import CameraInfo
from engine.capture.image_file import IMAGE_SUFFIXES
from engine.capture.virtual_camera import SIZES as VIRTUAL_CAMERA_SIZES
from engine.capture.virtual_camera import VirtualCameraSettings, install_hint
from engine.cli import main as run_cli
from engine.errors import VisageError
from engine.paths import (
    DEFAULT_PORTRAIT,
    bundled_portraits,
    drop_opencv_qt_overrides,
    sample_driving_clip,
)
from engine.personalize.capture import GUIDANCE, RECORD_SECONDS, Coverage, FrameCheck, coverage
from engine.personalize.command import DEFAULT_BUDGET_S
from engine.runtime.events import (
    CalibrationChanged,
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
from engine.runtime.personalize_job import (
    PersonalizeEvent,
    PersonalizeFailed,
    PersonalizeFinished,
    PersonalizeJob,
    PersonalizeOptions,
    PersonalizeProgress,
    PersonalizeRejected,
    PersonalizeStarted,
)
from engine.runtime.portrait_loader import LoaderOptions, PortraitRequest
from engine.runtime.profiles import (
    ProfileActionFailed,
    ProfileEvent,
    ProfileLibrary,
    ProfilesChanged,
)
from engine.runtime.recorder import Recording, RecordingStatus
from engine.runtime.runner import Runner, RunnerOptions
from engine.types import Controls, StageTimings

if TYPE_CHECKING:  # these modules import torch: types only (the app imports them likewise)
    from engine.personalize.profile import ProfileInfo as ProfileInfo
    from engine.training.finetune import Progress as Progress

# Everything the engine's threads report to the app.
EngineEvent = RunnerEvent | ProfileEvent | PersonalizeEvent

__all__ = [
    "DEFAULT_BUDGET_S",
    "DEFAULT_PORTRAIT",
    "GUIDANCE",
    "IMAGE_SUFFIXES",
    "RECORD_SECONDS",
    "VIRTUAL_CAMERA_SIZES",
    "CalibrationChanged",
    "CameraInfo",
    "CamerasChanged",
    "ComputeChanged",
    "Controls",
    "Coverage",
    "EngineEvent",
    "EngineFault",
    "FrameCheck",
    "LiveFrame",
    "LoaderOptions",
    "PersonalizeEvent",
    "PersonalizeFailed",
    "PersonalizeFinished",
    "PersonalizeJob",
    "PersonalizeOptions",
    "PersonalizeProgress",
    "PersonalizeRejected",
    "PersonalizeStarted",
    "PortraitLoaded",
    "PortraitRefused",
    "PortraitRequest",
    "ProfileActionFailed",
    "ProfileEvent",
    "ProfileLibrary",
    "ProfilesChanged",
    "Recording",
    "RecordingStatus",
    "Runner",
    "RunnerEvent",
    "RunnerOptions",
    "SourceChanged",
    "SourceLost",
    "SourceSpec",
    "StageTimings",
    "VirtualCameraChanged",
    "VirtualCameraSettings",
    "VisageError",
    "bundled_portraits",
    "coverage",
    "drop_opencv_qt_overrides",
    "install_hint",
    "run_cli",
    "sample_driving_clip",
]

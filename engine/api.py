"""The engine's public surface for the desktop app (app/ imports this module and nothing else
of the engine). Everything here is Qt-free; the live parts run on their own threads."""

from __future__ import annotations

from engine.capture.cameras import CameraInfo
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
from engine.runtime.portrait_loader import LoaderOptions
from engine.runtime.runner import Runner, RunnerOptions
from engine.types import Controls, StageTimings

__all__ = [
    "DEFAULT_PORTRAIT",
    "VIRTUAL_CAMERA_SIZES",
    "CalibrationChanged",
    "CameraInfo",
    "CamerasChanged",
    "ComputeChanged",
    "Controls",
    "EngineFault",
    "LiveFrame",
    "LoaderOptions",
    "PortraitLoaded",
    "PortraitRefused",
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
    "drop_opencv_qt_overrides",
    "install_hint",
    "run_cli",
    "sample_driving_clip",
]

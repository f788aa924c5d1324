"""The app's behaviour without Qt: models <-> engine commands, engine events -> models, settings.

`AppController` runs on the GUI thread: the bridge hands it engine events (`handle`) and live
frames (`show`) there. What the user does reaches it through the models (widgets change them)
or its action methods (buttons and shortcuts).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, cast

from app.models.camera import CameraModel, ChoiceKind, SourceChoice
from app.models.controls import SMOOTHING_RANGE, STRENGTH_RANGE, ControlsModel
from app.models.gallery import GalleryModel, same_path
from app.models.messages import Message, MessagesModel
from app.models.personalize import FILE_NOTE, SAMPLE_NOTE, PersonalizeModel
from app.models.preview import PreviewModel
from app.models.profiles import ProfilesModel
from app.models.stats import StatsModel
from app.models.vcam import VirtualCameraModel
from app.personalization import Personalization, PersonalizeCommands
from app.settings_store import Settings
from engine.api import (
    DEFAULT_PORTRAIT,
    IMAGE_SUFFIXES,
    RECORD_SECONDS,
    CalibrationChanged,
    CamerasChanged,
    ComputeChanged,
    Controls,
    EngineEvent,
    EngineFault,
    LiveFrame,
    PersonalizeOptions,
    PortraitLoaded,
    PortraitRefused,
    PortraitRequest,
    SourceChanged,
    SourceLost,
    SourceSpec,
    VirtualCameraChanged,
    VirtualCameraSettings,
)

log = logging.getLogger(__name__)

FIRST_START_HINT = (
    "Welcome! Look into the camera with a relaxed, neutral face and press Calibrate (C): "
    "the avatar then copies your expressions from that face."
)
NO_FACE_NOTE = "No face in view: the avatar holds, then eases to its neutral face."


class EngineCommands(PersonalizeCommands, Protocol):
    """What the controller asks of the engine (the bridge forwards these to the Runner, the
    profile library and personalization jobs)."""

    def load_portrait(self, path: str | Path) -> None: ...

    def switch_source(self, source: SourceSpec) -> None: ...

    def set_controls(self, controls: Controls) -> None: ...

    def calibrate(self) -> None: ...

    def start_virtual_camera(self, settings: VirtualCameraSettings | None = None) -> None: ...

    def stop_virtual_camera(self) -> None: ...

    def rescan_cameras(self) -> None: ...


def _clamped_controls(s: Settings) -> Controls:
    lo, hi = STRENGTH_RANGE
    return Controls(
        min(max(s.expression, lo), hi),
        min(max(s.pose, lo), hi),
        min(max(s.smoothing, SMOOTHING_RANGE[0]), SMOOTHING_RANGE[1]),
    )


class AppController:
    def __init__(
        self,
        engine: EngineCommands,
        settings: Settings,
        bundled: list[str],
        source: SourceChoice | None = None,
        personalize: PersonalizeOptions | None = None,
        record_seconds: float = RECORD_SECONDS,
    ) -> None:
        """source: a driving source for this run only (not remembered), else the settings'.
        personalize / record_seconds: the fine-tune's budget and steps, the recording's length
        (the defaults: the device's budget, about 30 s)."""
        self.engine = engine
        self._settings = settings
        self._bundled = bundled
        missing = [p for p in settings.user_portraits if not Path(p).is_file()]
        for path in missing:
            log.warning("portrait %s no longer exists: removed from the gallery", path)
        user = [p for p in settings.user_portraits if p not in missing]
        self.controls = ControlsModel(_clamped_controls(settings))
        self.gallery = GalleryModel(bundled, user)
        kind = cast(ChoiceKind, settings.source_kind)
        choice = source or SourceChoice(kind, settings.camera, settings.source_path)
        self.camera = CameraModel(choice, settings.resolution, settings.mirror)
        self._remember_source = source is None
        self.preview = PreviewModel(settings.show_landmarks)
        self.stats = StatsModel()
        self.messages = MessagesModel()
        self.vcam = VirtualCameraModel(settings.virtual_camera_size)
        self.profiles = ProfilesModel()
        self.personalize = PersonalizeModel(record_seconds)
        self.personalization = Personalization(
            engine, self.personalize, self.profiles, self.messages, self._source_note, personalize
        )
        self._portrait = settings.portrait  # the last portrait animated (kept while a profile is)
        self.calibration_offered = settings.calibration_offered
        self.dirty = bool(missing)
        self._loaded_once = False
        self.controls.changed.connect(self._controls_changed)
        self.gallery.requested_changed.connect(self._portrait_requested)
        self.gallery.entries_changed.connect(lambda _: self._mark_dirty())
        self.camera.source_changed.connect(self._source_changed)
        self.vcam.toggled.connect(self._vcam_toggled)
        self.vcam.changed.connect(lambda _: self._mark_dirty())
        self.preview.overlay_changed.connect(lambda _: self._mark_dirty())
        self.profiles.selection_changed.connect(lambda _: self._profile_changed())
        self.profiles.entries_changed.connect(lambda _: self._profile_changed())

    # -- start-up ----------------------------------------------------------------------------------
    def startup_portrait(self) -> str:
        """The remembered portrait if it still exists, else the bundled default."""
        remembered = self._settings.portrait
        if remembered and Path(remembered).is_file():
            return remembered
        return self.default_portrait()

    def default_portrait(self) -> str:
        default = next((p for p in self._bundled if Path(p).name == DEFAULT_PORTRAIT), None)
        return default or self._bundled[0]

    def startup_request(self) -> PortraitRequest:
        """The remembered profile if its folder is still there, else startup_portrait()."""
        folder = self._settings.profile
        if folder and Path(folder).is_dir():
            return PortraitRequest(folder, profile=True)
        return PortraitRequest(self.startup_portrait())

    def startup_source(self) -> SourceSpec:
        return self.camera.spec()

    def started(self, portrait: str | PortraitRequest) -> None:
        """The engine was started with `portrait` (it answers with loaded or refused)."""
        if isinstance(portrait, PortraitRequest) and portrait.profile:
            self.profiles.requested = portrait.path
        else:
            self.gallery.requested = (
                portrait.path if isinstance(portrait, PortraitRequest) else portrait
            )
        self.engine.set_controls(self.controls.snapshot())
        self.engine.refresh_profiles()

    # -- user actions ------------------------------------------------------------------------------
    def choose_portrait(self, path: str) -> None:
        if self.gallery.selected and same_path(path, self.gallery.selected):
            return
        self.gallery.request(path)

    def open_personalize(self) -> None:
        """The personalization dialog opens: a finished result makes way for a new run."""
        if self.personalize.phase in ("done", "rejected", "failed"):
            self.personalize.reset()

    def delete_profile(self, folder: str) -> None:
        """Delete a profile; deleting the animated one returns to the last portrait."""
        animated = self.profiles.active is not None and same_path(folder, self.profiles.active)
        self.personalization.delete(folder)
        if animated:
            self.gallery.request(self._fallback_portrait())

    def _fallback_portrait(self) -> str:
        last = self._portrait
        return last if last and Path(last).is_file() else self.default_portrait()

    def _source_note(self) -> str:
        if self.camera.playing_sample():
            return SAMPLE_NOTE
        return FILE_NOTE if self.camera.playing_file() else ""

    def add_portraits(self, paths: list[str]) -> list[str]:
        """Ask for image files to be animated (the last one wins); they join the gallery once
        loaded. Returns the paths that were not images."""
        images = [p for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        rejected = [p for p in paths if p not in images]
        if rejected:
            names = ", ".join(Path(p).name for p in rejected)
            self.messages.post(Message("error", f"Not an image Visage can open: {names}."))
        if images:
            self.gallery.request(images[-1])
        return rejected

    def remove_portrait(self, path: str) -> None:
        """Remove a user's portrait; removing the animated one returns to the default."""
        animated = self.gallery.selected is not None and same_path(path, self.gallery.selected)
        if self.gallery.remove(path) and animated:
            self.gallery.request(self.default_portrait())

    def next_portrait(self, step: int = 1) -> None:
        path = self.gallery.neighbour(step)
        if path is not None:
            self.choose_portrait(path)

    def calibrate(self) -> None:
        self.engine.calibrate()

    def toggle_virtual_camera(self) -> None:
        self.vcam.toggle()

    def rescan_cameras(self) -> None:
        self.engine.rescan_cameras()

    def run_action(self, action: str) -> None:
        """A banner button's action."""
        if action == "calibrate":
            self.calibrate()

    # -- from the engine (GUI thread) --------------------------------------------------------------
    def show(self, live: LiveFrame) -> None:
        self.preview.show(live)
        self.stats.frame(live)
        if not self.camera.lost:
            self.preview.set_notes(webcam="" if live.output.face_found else NO_FACE_NOTE)

    def handle(self, event: EngineEvent) -> None:
        log.debug("engine event: %s", event)
        if self.personalization.handle(event):
            return
        if isinstance(event, SourceChanged):
            self._source_active(event)
        elif isinstance(event, SourceLost):
            self.camera.source_lost(event.message)
            self.preview.set_notes(webcam="Camera lost: retrying…")
            self.messages.post(Message("warning", event.message))
        elif isinstance(event, CamerasChanged):
            self.camera.set_cameras(event.cameras)
        elif isinstance(event, PortraitLoaded):
            self._portrait_loaded(event)
        elif isinstance(event, PortraitRefused):
            self._portrait_refused(event)
        elif isinstance(event, ComputeChanged):
            self.stats.compute(event.device, event.compute, event.note)
        elif isinstance(event, CalibrationChanged):
            self._calibration(event)
        elif isinstance(event, VirtualCameraChanged):
            self.vcam.update(event.running, event.message)
            if event.failed:
                self.messages.post(Message("error", event.message))
        elif isinstance(event, EngineFault):
            again = f" (and {event.repeats} more times)" if event.repeats else ""
            self.messages.post(Message("error", event.message + again))

    def _source_active(self, event: SourceChanged) -> None:
        was_lost = self.camera.lost
        self.camera.source_active(event.description, event.camera, event.note)
        self.preview.set_notes(webcam="")
        offer = self.messages.current is not None and self.messages.current.action is not None
        if event.note and not offer:  # an offer (Calibrate now) stays: the camera panel has it
            self.messages.post(Message("info", event.note))
        elif not event.note and was_lost and self.messages.current is not None:
            self.messages.dismiss(self.messages.current.text)

    def _portrait_loaded(self, event: PortraitLoaded) -> None:
        if event.profile:
            self.profiles.loaded(event.path)
            self.gallery.deselect()
        else:
            self.gallery.loaded(event.path)
            self.profiles.deactivate()
            self._portrait = self.gallery.selected or event.path
        self.preview.set_notes(avatar="")
        self._mark_dirty()
        if event.notes:
            self.messages.post(Message("warning", f"{event.name}: " + "; ".join(event.notes)))
        elif self._loaded_once:
            self.messages.dismiss()
        if not self._loaded_once and not self.calibration_offered:
            self.calibration_offered = True
            self.messages.post(Message("info", FIRST_START_HINT, "calibrate", "Calibrate now"))
        self._loaded_once = True

    def _portrait_refused(self, event: PortraitRefused) -> None:
        if event.profile:
            self.profiles.refused(event.path)
            name = f"Profile {Path(event.path).name}"
        else:
            self.gallery.refused(event.path)
            name = Path(event.path).name
        if self.gallery.selected is not None or self.profiles.active is not None:
            text = f"{name} was not loaded: {event.reason} The current portrait stays."
        elif event.profile:  # a remembered profile went bad: back to the portrait
            fallback = self._fallback_portrait()
            text = f"{name} was not loaded: {event.reason} Showing {Path(fallback).name}."
            self.gallery.request(fallback)
        else:  # nothing animated yet (a remembered portrait went bad): fall back to the default
            text = f"{name} was not loaded: {event.reason} Showing the default portrait."
            if not same_path(event.path, self.default_portrait()):
                self.gallery.request(self.default_portrait())
        self.messages.post(Message("error", text))

    def _calibration(self, event: CalibrationChanged) -> None:
        if event.calibrating:
            text = "Calibrating: keep a relaxed, neutral face for a moment…"
        else:
            text = "Calibrated: the avatar now follows your expressions from that neutral face."
        self.messages.post(Message("info", text))

    # -- models -> engine --------------------------------------------------------------------------
    def _controls_changed(self, controls: Controls) -> None:
        self.engine.set_controls(controls)
        self._mark_dirty()

    def _portrait_requested(self, path: str | None) -> None:
        if path is not None:
            self.preview.set_notes(avatar="Loading the portrait…" if not self._loaded_once else "")
            self.engine.load_portrait(path)

    def _source_changed(self, spec: SourceSpec) -> None:
        self.engine.switch_source(spec)
        self._remember_source = True  # the user chose it in the app
        self._mark_dirty()

    def _vcam_toggled(self, settings: VirtualCameraSettings | None) -> None:
        if settings is None:
            self.engine.stop_virtual_camera()
        else:
            self.engine.start_virtual_camera(settings)

    def _profile_changed(self) -> None:
        entry = self.profiles.active_entry()
        self.preview.set_avatar_name(entry.name if entry is not None else "")
        self._mark_dirty()

    # -- settings ----------------------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        self.dirty = True

    def settings(self) -> Settings:
        c = self.controls.snapshot()
        s = self._settings
        choice = self.camera.choice
        if not self._remember_source:
            choice = SourceChoice(cast(ChoiceKind, s.source_kind), s.camera, s.source_path)
        return Settings(
            portrait=self.gallery.selected or self._portrait,
            user_portraits=tuple(self.gallery.user_paths()),
            source_kind=choice.kind,
            camera=choice.camera,
            source_path=choice.path,
            resolution=self.camera.resolution,
            mirror=self.camera.mirror,
            expression=c.expression_strength,
            pose=c.pose_strength,
            smoothing=c.smoothing,
            show_landmarks=self.preview.show_landmarks,
            virtual_camera_size=self.vcam.size,
            calibration_offered=self.calibration_offered,
            profile=self.profiles.active or self.profiles.requested or "",
        )

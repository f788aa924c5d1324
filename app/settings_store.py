"""The user's settings: a versioned JSON file in their config directory, written atomically.

    {"version": 1, "settings": {"portrait": "...", "user_portraits": [...], ...}}

Fields are only ever added, each with a default, so a file written by an older Visage loads (its
missing fields take their defaults) and an older Visage reads a newer file (it ignores fields it
does not know); the version changes only when a field's meaning does. A missing file gives the
defaults; so does a corrupt one (kept aside as settings.json.corrupt) or one of another
version, each with a log line saying so. A field of the wrong type falls back to its default
alone. Writes go to a temporary file beside it, then replace it in one step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERSION = 1
FILE_NAME = "settings.json"
CONFIG_DIR_VARIABLE = "VISAGE_CONFIG_DIR"  # overrides the config directory (tests, portable use)


@dataclass(frozen=True)
class Settings:
    """portrait: the animated portrait ("" = the bundled default). user_portraits: the user's
    own, in gallery order. source_kind/camera/source_path: the driving source ("auto",
    "camera", "file"). resolution: requested camera size. calibration_offered: the first-start
    calibration hint was shown. profile: the folder of the personalized profile animated ("" =
    none: the portrait is)."""

    portrait: str = ""
    user_portraits: tuple[str, ...] = ()
    source_kind: str = "auto"
    camera: int | None = None
    source_path: str | None = None
    resolution: tuple[int, int] = (640, 480)
    mirror: bool = True
    expression: float = 1.0
    pose: float = 1.0
    smoothing: float = 0.5
    show_landmarks: bool = False
    virtual_camera_size: tuple[int, int] = (1280, 720)
    calibration_offered: bool = False
    profile: str = ""


def _valid(name: str, value: Any, default: Any) -> Any:
    """`value` converted to the field's type, or raise ValueError."""
    if name in ("user_portraits",):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of paths")
        return tuple(value)
    if name in ("resolution", "virtual_camera_size"):
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise ValueError("expected [width, height]")
        return (value[0], value[1])
    if name == "source_kind":
        if value not in ("auto", "camera", "file"):
            raise ValueError("expected auto, camera or file")
        return value
    if name in ("camera", "source_path") and value is None:
        return None
    expected = {"camera": int, "source_path": str}.get(name, type(default))
    if expected is float and type(value) is int:
        value = float(value)
    if type(value) is not expected:
        raise ValueError(f"expected {expected.__name__}")
    return value


def _from_dict(data: dict[str, Any]) -> Settings:
    defaults = Settings()
    values = {}
    for f in dataclasses.fields(Settings):
        if f.name not in data:
            continue
        try:
            values[f.name] = _valid(f.name, data[f.name], getattr(defaults, f.name))
        except ValueError as err:
            log.warning(
                "settings: ignoring %s=%r (%s); using the default", f.name, data[f.name], err
            )
    return dataclasses.replace(defaults, **values)


class SettingsStore:
    """Reads and writes one settings file (`path`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Settings:
        if not self.path.exists():
            log.info("no settings at %s yet: using the defaults", self.path)
            return Settings()
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self._set_aside(f"unreadable ({err})")
            return Settings()
        if not isinstance(document, dict) or not isinstance(document.get("settings"), dict):
            self._set_aside("not a Visage settings file")
            return Settings()
        version = document.get("version")
        if version != VERSION:
            log.warning(
                "settings at %s are version %r, this Visage reads version %d: using the defaults",
                self.path,
                version,
                VERSION,
            )
            return Settings()
        return _from_dict(document["settings"])

    def save(self, settings: Settings) -> None:
        """Write atomically (a crash leaves the old file or the new one, never half of one)."""
        data = dataclasses.asdict(settings)
        text = json.dumps({"version": VERSION, "settings": data}, indent=2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.debug("settings saved to %s", self.path)

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, aside)
            kept = f"kept as {aside.name}"
        except OSError as err:
            kept = f"could not be moved aside ({err})"
        log.warning("settings at %s are %s: using the defaults; the file %s", self.path, why, kept)


def default_settings_path() -> Path:
    """$VISAGE_CONFIG_DIR/settings.json, else the platform's per-user config folder for the
    app (Qt's AppConfigLocation, e.g. ~/.config/Visage on Linux). Needs the QApplication's
    name to be set first."""
    override = os.environ.get(CONFIG_DIR_VARIABLE)
    if override:
        return Path(override) / FILE_NAME
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
    return Path(location) / FILE_NAME

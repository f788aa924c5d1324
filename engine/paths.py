"""The only place that resolves asset, weight and cache paths (PyInstaller-aware)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ENGINE_DIR = Path(__file__).resolve().parent


def is_frozen() -> bool:
    """True inside a PyInstaller bundle (build.spec), False when run from the source tree."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def _root() -> Path:
    """Folder holding `assets/`: the bundle's data folder (sys._MEIPASS, `_internal/` beside
    the executable) when frozen, else the repository root."""
    bundle = getattr(sys, "_MEIPASS", None) if is_frozen() else None
    return Path(bundle) if bundle else _ENGINE_DIR.parent


def assets_dir() -> Path:
    override = os.environ.get("VISAGE_ASSETS")
    return Path(override) if override else _root() / "assets"


def models_dir() -> Path:
    """Shipped network weights: one folder per network (model.safetensors + config.json)."""
    return assets_dir() / "models"


def face_model_path() -> Path:
    return _ENGINE_DIR / "landmarks" / "data" / "face_model.npz"


def cache_dir() -> Path:
    """Per-user cache (compiled engines and the like): $VISAGE_CACHE, else the platform cache."""
    override = os.environ.get("VISAGE_CACHE")
    if override:
        return Path(override)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "visage" / "cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "visage"


def data_dir() -> Path:
    """Per-user data (personalized profiles): $VISAGE_DATA, else the platform's data folder."""
    override = os.environ.get("VISAGE_DATA")
    if override:
        return Path(override)
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "visage"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "visage"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "visage"


def profiles_dir() -> Path:
    """Where personalized profiles live (one folder each, see engine.personalize.profile)."""
    return data_dir() / "profiles"


def portraits_dir() -> Path:
    return assets_dir() / "portraits"


DEFAULT_PORTRAIT = "mona_lisa.jpg"


def bundled_portraits() -> list[Path]:
    """The portraits shipped with the app, in gallery order (the default first)."""
    from engine.capture.image_file import IMAGE_SUFFIXES

    found = [p for p in portraits_dir().iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found, key=lambda p: (p.name != DEFAULT_PORTRAIT, p.name))


def sample_driving_clip() -> Path:
    return assets_dir() / "driving" / "sample.mp4"


# Set by opencv-python's (non-headless) cv2 on import, pointing into its private Qt 5 folder:
# a Qt 6 application (PySide6) started afterwards would load Qt 5 plugins from there and fail.
OPENCV_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def drop_opencv_qt_overrides() -> list[str]:
    """Remove the Qt variables that `import cv2` points at cv2/qt/...; call it after cv2 is
    imported and before a QApplication is made. Returns the names removed."""
    removed = []
    for name in OPENCV_QT_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).parent.name == "qt" and Path(value).parent.parent.name == "cv2":
            del os.environ[name]
            removed.append(name)
    return removed


def shared_faces_dir() -> Path:
    """Real face media for development (../shared/data/faces beside the repository)."""
    override = os.environ.get("VISAGE_FACES")
    return Path(override) if override else _ENGINE_DIR.parent.parent / "shared" / "data" / "faces"


def faces_folder(given: str | None, name: str) -> Path:
    """The folder given on the command line, else `name` under shared_faces_dir()."""
    return Path(given) if given else shared_faces_dir() / name

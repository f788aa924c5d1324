"""The only place that resolves asset, weight and cache paths (PyInstaller-aware)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ENGINE_DIR = Path(__file__).resolve().parent


def _root() -> Path:
    """Folder holding `assets/`: the bundle's folder when frozen, else the repository root."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return _ENGINE_DIR.parent


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


def portraits_dir() -> Path:
    return assets_dir() / "portraits"


DEFAULT_PORTRAIT = "mona_lisa.jpg"


def bundled_portraits() -> list[Path]:
    """The portraits shipped with the app, in gallery order (the default first)."""
    exts = {".jpg", ".jpeg", ".png", ".webp"}
    found = [p for p in portraits_dir().iterdir() if p.suffix.lower() in exts]
    return sorted(found, key=lambda p: (p.name != DEFAULT_PORTRAIT, p.name))


def sample_driving_clip() -> Path:
    return assets_dir() / "driving" / "sample.mp4"


def shared_faces_dir() -> Path:
    """Real face media for development (../shared/data/faces beside the repository)."""
    override = os.environ.get("VISAGE_FACES")
    return Path(override) if override else _ENGINE_DIR.parent.parent / "shared" / "data" / "faces"

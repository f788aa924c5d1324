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


def face_model_path() -> Path:
    return _ENGINE_DIR / "landmarks" / "data" / "face_model.npz"


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

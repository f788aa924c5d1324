"""Personalized profiles on disk: one folder each, written atomically.

A profile folder holds
  profile.json    version, display name, when, from what, how long it trained
  source.png      the avatar's source image (the user's most neutral recorded frame)
  landmarks.npy   (478, 3) float32 landmarks of source.png
  warp/, fusion/  the fine-tuned networks (store folders: safetensors + config.json, full
                  weights: the CPU tier is 2.5 MB)

`save_profile` builds the new folder under a hidden temporary name beside the target and swaps
it in only when complete, so a crash or a cancelled run never leaves a half-written profile and
never touches an existing one; `list_profiles` finishes a swap that a crash interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import VisageError
from engine.models.store import save_model
from engine.training.generator import Generator
from engine.types import ImageArray, Landmarks

log = logging.getLogger(__name__)

VERSION = 1
INFO = "profile.json"
FILES = ("profile.json", "source.png", "landmarks.npy", "warp/config.json", "fusion/config.json")


class ProfileError(VisageError):
    """A profile folder is missing, incomplete or of another version."""


@dataclass(frozen=True)
class ProfileInfo:
    """folder: where it lives. The rest is profile.json's content."""

    folder: Path
    name: str
    created: str
    tier: str
    steps: int
    seconds: float
    extra: dict[str, Any]

    @property
    def source(self) -> Path:
        return self.folder / "source.png"


def slug(name: str) -> str:
    """A folder name for a display name."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "profile"


def save_profile(
    folder: Path,
    generator: Generator,
    source: ImageArray,
    landmarks: Landmarks,
    name: str,
    tier: str,
    steps: int,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> ProfileInfo:
    """Write a profile atomically (an existing one at `folder` is replaced only when the new
    one is complete)."""
    if generator.fusion is None:
        raise ValueError("a profile needs both the warp and the fusion network")
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    info = {
        "version": VERSION,
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tier": tier,
        "steps": steps,
        "seconds": round(seconds, 2),
        "extra": extra or {},
    }
    try:
        save_model(generator.warp_net, tmp / "warp", {"profile": name})
        save_model(generator.fusion, tmp / "fusion", {"profile": name})
        if not cv2.imwrite(str(tmp / "source.png"), cv2.cvtColor(source, cv2.COLOR_RGB2BGR)):
            raise ProfileError(f"could not write the source image into {tmp}")
        np.save(tmp / "landmarks.npy", landmarks.points.astype(np.float32))
        (tmp / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved profile %r to %s", name, folder)
    return load_profile(folder)


def _swap_in(tmp: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(tmp, folder)
        return
    old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_profile(folder: Path) -> ProfileInfo:
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ProfileError(f"{folder} is not a complete profile (missing {', '.join(missing)})")
    try:
        data = json.loads((folder / INFO).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{folder / INFO} cannot be read: {exc}") from exc
    if data.get("version") != VERSION:
        raise ProfileError(
            f"{folder} is a version {data.get('version')} profile; this Visage reads version "
            f"{VERSION}: personalize again"
        )
    return ProfileInfo(
        folder=folder,
        name=str(data["name"]),
        created=str(data["created"]),
        tier=str(data["tier"]),
        steps=int(data["steps"]),
        seconds=float(data["seconds"]),
        extra=dict(data.get("extra", {})),
    )


def _recover(root: Path) -> None:
    """Finish swaps that a crash interrupted: a `.NAME.old-*` left without NAME goes back."""
    for old in root.glob(".*.old-*"):
        target = root / old.name[1:].rsplit(".old-", 1)[0]
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, target)
            log.warning("restored profile %s after an interrupted save", target.name)
    for leftover in [*root.glob(".*.tmp"), *root.glob(".*.deleted-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def list_profiles(root: Path) -> list[ProfileInfo]:
    """Every readable profile under `root`, oldest first (unreadable ones are logged)."""
    if not root.is_dir():
        return []
    _recover(root)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            out.append(load_profile(folder))
        except ProfileError as err:
            log.warning("skipping %s", err)
    return sorted(out, key=lambda p: p.created)


def rename_profile(folder: Path, name: str) -> ProfileInfo:
    """Change a profile's display name (its folder stays)."""
    if not name.strip():
        raise ProfileError("a profile name cannot be empty")
    load_profile(folder)
    data = json.loads((folder / INFO).read_text())
    data["name"] = name.strip()
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=folder)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / INFO)
    return load_profile(folder)


def delete_profile(folder: Path) -> None:
    """Remove a profile (renamed away first, so a crash never leaves half of one)."""
    load_profile(folder)
    gone = folder.parent / f".{folder.name}.deleted-{uuid.uuid4().hex[:8]}"
    os.replace(folder, gone)
    shutil.rmtree(gone, ignore_errors=True)

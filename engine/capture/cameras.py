"""Which cameras are plugged in, and opening one by its OpenCV index.

Linux: the V4L2 capture nodes under /sys/class/video4linux (cheap: rescanned every few seconds
for hot-plug); each camera's first node (`index` 0) is its picture, the others are metadata.
Elsewhere there is nothing to list without opening devices, so OpenCV indices 0..N-1 are probed
(slow: done only on request). Visage's own virtual camera is never listed as an input.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from engine.capture.video_source import CameraSource

log = logging.getLogger(__name__)

VIRTUAL_CAMERA_LABEL = "Visage"  # our virtual camera's name; never offered as an input
SYSFS_VIDEO = Path("/sys/class/video4linux")
PROBE_INDICES = 4
_NODE_RE = re.compile(r"^video(\d+)$")


@dataclass(frozen=True)
class CameraInfo:
    """index: OpenCV camera index. name: what the device calls itself. path: its device node
    (Linux) or "camera N"."""

    index: int
    name: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.path})"


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def linux_cameras(sysfs: Path = SYSFS_VIDEO, dev: Path = Path("/dev")) -> tuple[CameraInfo, ...]:
    """The capture nodes listed in `sysfs` whose device file exists in `dev`, by index."""
    if not sysfs.is_dir():
        return ()
    found = []
    for node in sysfs.iterdir():
        match = _NODE_RE.match(node.name)
        if match is None or not (dev / node.name).exists():
            continue
        if _read(node / "index", "0") != "0":
            continue  # a second node of the same camera (metadata)
        name = _read(node / "name", node.name)
        if name == VIRTUAL_CAMERA_LABEL:
            continue  # our own output: reading it back would loop the avatar into itself
        found.append(CameraInfo(index=int(match[1]), name=name, path=str(dev / node.name)))
    return tuple(sorted(found, key=lambda c: c.index))


def probe_cameras(count: int = PROBE_INDICES, skip: frozenset[int] = frozenset()) -> list[int]:
    """OpenCV indices below `count` that open (slow; `skip` holds indices already in use)."""
    found = []
    for index in range(count):
        if index in skip:
            found.append(index)
            continue
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened():
                found.append(index)
        finally:
            capture.release()
    return found


def list_cameras(
    probe: bool = False, in_use: frozenset[int] = frozenset()
) -> tuple[CameraInfo, ...]:
    """The cameras plugged in now. Off Linux, devices are only probed when `probe` is True."""
    if sys.platform.startswith("linux"):
        return linux_cameras()
    if not probe:
        return ()
    return tuple(CameraInfo(i, f"Camera {i}", f"camera {i}") for i in probe_cameras(skip=in_use))


def can_list_cheaply() -> bool:
    """Whether `list_cameras()` sees hot-plugged cameras without probing devices."""
    return sys.platform.startswith("linux")


def open_camera(index: int, width: int, height: int) -> CameraSource:
    """Camera `index` at (about) width x height. Raises VideoSourceError when it cannot open."""
    return CameraSource(index, width, height, max_failed_reads=1)

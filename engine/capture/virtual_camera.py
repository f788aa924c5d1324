"""Virtual-camera availability and, when missing, what to install on this OS."""

from __future__ import annotations

import sys


def install_hint(platform: str | None = None) -> str:
    """How to get a virtual-camera backend that pyvirtualcam can drive, for this OS."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return (
            "Install v4l2loopback and load it with a device named Visage: "
            "`sudo apt install v4l2loopback-dkms` then "
            "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Visage`."
        )
    if platform == "darwin":
        return (
            "Install OBS Studio 30 or newer and start its virtual camera once "
            "(Start Virtual Camera)."
        )
    return "Install OBS Studio 30 or newer (it provides the virtual camera driver on Windows)."


def probe_virtual_camera() -> tuple[bool, str]:
    """(available, description): opens and closes a small camera through pyvirtualcam."""
    try:
        import pyvirtualcam
    except ImportError as err:  # pragma: no cover - pyvirtualcam is a dependency
        return False, f"pyvirtualcam is not installed ({err})"
    try:
        with pyvirtualcam.Camera(width=320, height=240, fps=30) as cam:
            return True, f"{cam.backend} ({cam.device})"
    except (RuntimeError, ValueError, OSError) as err:
        return False, f"no virtual camera: {str(err).rstrip('.')}. {install_hint()}"

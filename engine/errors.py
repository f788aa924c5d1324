"""User-facing errors. Each message says what went wrong and what to do about it.

Stage code raises these; only loop boundaries (CLI commands, worker threads) catch them and show
the message. Nothing here is ever swallowed silently.
"""

from __future__ import annotations


class VisageError(Exception):
    """Base class: `str(err)` is a complete, actionable message for the user."""


class ImageLoadError(VisageError):
    """The portrait image cannot be read (missing, corrupt, truncated, unsupported, too large)."""


class NoFaceError(VisageError):
    """No face was found where one is required."""


class VideoSourceError(VisageError):
    """A video file or camera cannot be opened or yields no frames."""


class VideoWriteError(VisageError):
    """The output video cannot be written."""


class ConfigError(VisageError):
    """An invalid configuration or control value."""


class CompileError(VisageError):
    """A network cannot be compiled with the requested backend (or with any backend)."""


class VirtualCameraError(VisageError):
    """The virtual camera cannot be opened or stopped taking frames."""

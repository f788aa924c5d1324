"""Getting the process ready for Qt: the one place that undoes OpenCV's Qt settings.

opencv-python (non-headless) points QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at its own
Qt 5 copy when cv2 is imported; a Qt 6 (PySide6) window started afterwards would load the wrong
plugins and fail. cv2 is imported first (through the engine), then the variables are removed.
"""

from __future__ import annotations

import logging
import os
import sys

# engine.api imports cv2, which sets the variables removed below.
from engine.api import VisageError, drop_opencv_qt_overrides

log = logging.getLogger(__name__)


def prepare_qt_environment() -> None:
    """Call before creating the QApplication. Raises VisageError when no display is there."""
    removed = drop_opencv_qt_overrides()
    if removed:
        log.debug("removed OpenCV's Qt variables: %s", ", ".join(removed))
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise VisageError(
                "No display found (DISPLAY and WAYLAND_DISPLAY are unset), so the window cannot "
                "open. Run Visage from a desktop session, or render to a file without a window "
                "with `visage --headless` or `visage render`."
            )

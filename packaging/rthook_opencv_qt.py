"""PyInstaller runtime hook (build.spec): undo opencv-python's Qt 5 paths before any app code.

On Linux, `import cv2` (the non-headless wheel) points QT_QPA_PLATFORM_PLUGIN_PATH and
QT_QPA_FONTDIR at cv2/qt/, its private Qt 5 copy; PySide6's Qt 6 would then try to load Qt 5
platform plugins from there and fail to open a window. cv2 is imported here, once, and the two
variables are cleared straight away (engine.paths.drop_opencv_qt_overrides).
"""

from __future__ import annotations

import cv2  # noqa: F401  (imported for its side effect on os.environ)

from engine.paths import drop_opencv_qt_overrides

drop_opencv_qt_overrides()

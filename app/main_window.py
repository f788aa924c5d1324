"""The main window: previews side by side, a sidebar of controls, menus with shortcuts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.controller import AppController
from app.engine_bridge import EngineBridge
from app.settings_store import SettingsStore
from app.widgets.banner import Banner
from app.widgets.camera_picker import CameraPicker
from app.widgets.controls_panel import ControlsPanel
from app.widgets.gallery import GalleryWidget
from app.widgets.personalize_dialog import PersonalizeDialog
from app.widgets.preview import PreviewPanel
from app.widgets.profiles import ProfilesWidget
from app.widgets.stats_bar import StatsBar
from app.widgets.vcam_panel import VirtualCameraPanel
from engine.api import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

SAVE_EVERY_MS = 1000
SIDEBAR_WIDTH = 360
SHORTCUTS = (
    ("C", "Calibrate: your current face becomes the neutral face"),
    ("V", "Start or stop the virtual camera"),
    ("L", "Show or hide the landmarks over the camera"),
    ("M", "Mirror the camera"),
    ("N / Shift+N", "Next / previous portrait"),
    ("Ctrl+O", "Add your own portrait (or drop image files on the window)"),
    ("P", "Personalize: record about 30 s of you and learn your face"),
    ("R", "Rescan for cameras"),
    ("F11", "Full screen"),
    ("Ctrl+Q", "Quit"),
)


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    """Views of the controller's models, wired to its actions. store: where settings are
    saved (None: not saved). bridge: stopped when the window closes."""

    def __init__(
        self,
        controller: AppController,
        bridge: EngineBridge | None = None,
        store: SettingsStore | None = None,
    ) -> None:
        super().__init__()
        self.controller, self.bridge, self.store = controller, bridge, store
        self.setWindowTitle("Visage")
        self.resize(1480, 880)
        self.setAcceptDrops(True)
        c = controller
        self.banner = Banner(c.messages)
        self.banner.action_requested.connect(c.run_action)
        self.preview = PreviewPanel(c.preview)
        self.gallery = GalleryWidget(c.gallery)
        self.gallery.add_requested.connect(self.add_portraits_dialog)
        self.gallery.remove_requested.connect(c.remove_portrait)
        self.profiles = ProfilesWidget(c.profiles)
        self.profiles.personalize_requested.connect(self.open_personalize)
        self.profiles.rename_requested.connect(self.rename_profile_dialog)
        self.profiles.delete_requested.connect(self.delete_profile_dialog)
        self.personalize_dialog: PersonalizeDialog | None = None
        self.camera = CameraPicker(c.camera)
        self.controls = ControlsPanel(c.controls)
        self.controls.calibrate_requested.connect(c.calibrate)
        self.vcam = VirtualCameraPanel(c.vcam)
        self.setStatusBar(StatsBar(c.stats))
        self.setCentralWidget(self._layout())
        self._actions: dict[str, QAction] = {}
        self._menus_by_name: dict[str, QMenu] = {}
        self._menus()
        if bridge is not None:
            bridge.engine_event.connect(c.handle)
            bridge.frame_ready.connect(c.show)
        self._save_timer = QTimer(self)
        self._save_timer.setInterval(SAVE_EVERY_MS)
        self._save_timer.timeout.connect(self.save_settings)
        self._save_timer.start()

    def _layout(self) -> QWidget:
        sidebar = QWidget()
        sidebar.setObjectName("sidebar")
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(4, 0, 4, 0)
        side.addWidget(_group("Portrait", self.gallery))
        side.addWidget(_group("Your profiles", self.profiles))
        side.addWidget(_group("Camera", self.camera))
        side.addWidget(_group("Animation", self.controls))
        side.addWidget(_group("Virtual camera", self.vcam))
        side.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(sidebar)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(SIDEBAR_WIDTH)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QHBoxLayout()
        body.addWidget(self.preview, 1)
        body.addWidget(scroll)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(10, 10, 10, 6)
        outer.addWidget(self.banner)
        outer.addLayout(body, 1)
        return central

    def _action(
        self, menu_name: str, text: str, shortcut: str, slot: Callable[[], None], key: str
    ) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        self._menu(menu_name).addAction(action)
        self._actions[key] = action
        return action

    def _menu(self, name: str) -> QMenu:
        if name not in self._menus_by_name:
            self._menus_by_name[name] = self.menuBar().addMenu(name)
        return self._menus_by_name[name]

    def _menus(self) -> None:
        c = self.controller
        self._action("&File", "Add portrait…", "Ctrl+O", self.add_portraits_dialog, "add")
        self._action("&File", "Next portrait", "N", lambda: c.next_portrait(1), "next")
        self._action("&File", "Previous portrait", "Shift+N", lambda: c.next_portrait(-1), "prev")
        self._action("&File", "Personalize…", "P", self.open_personalize, "personalize")
        self._action("&File", "Quit", "Ctrl+Q", self._quit, "quit")
        self._action("&Camera", "Calibrate", "C", c.calibrate, "calibrate")
        mirror = self._action("&Camera", "Mirror", "M", lambda: None, "mirror")
        mirror.setCheckable(True)
        mirror.setChecked(c.camera.mirror)
        mirror.toggled.connect(c.camera.set_mirror)
        c.camera.source_changed.connect(lambda _: mirror.setChecked(c.camera.mirror))
        self._action("&Camera", "Rescan cameras", "R", c.rescan_cameras, "rescan")
        landmarks = self._action("&View", "Show landmarks", "L", lambda: None, "landmarks")
        landmarks.setCheckable(True)
        landmarks.setChecked(c.preview.show_landmarks)
        landmarks.toggled.connect(c.preview.set_show_landmarks)
        c.preview.overlay_changed.connect(landmarks.setChecked)
        self._action("&View", "Full screen", "F11", self._toggle_full_screen, "fullscreen")
        self._action(
            "&Virtual camera", "Start / stop", "V", c.toggle_virtual_camera, "virtual_camera"
        )
        self._action("&Help", "Keyboard shortcuts", "F1", self._show_shortcuts, "help")

    def action(self, key: str) -> QAction:
        return self._actions[key]

    # -- portraits from files ----------------------------------------------------------------------
    def add_portraits_dialog(self) -> None:
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        patterns = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add portraits", pictures or str(Path.home()), f"Images ({patterns})"
        )
        if paths:
            self.controller.add_portraits(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.controller.add_portraits(paths)
            event.acceptProposedAction()

    # -- personalization and profiles --------------------------------------------------------------
    def open_personalize(self) -> None:
        """Show the personalization dialog (made on first use)."""
        c = self.controller
        if self.personalize_dialog is None:
            poll = c.personalization.poll
            self.personalize_dialog = PersonalizeDialog(c.personalize, c.preview, poll, self)
        c.open_personalize()
        self.personalize_dialog.show()
        self.personalize_dialog.raise_()
        self.personalize_dialog.activateWindow()

    def rename_profile_dialog(self, folder: str) -> None:
        entry = self.controller.profiles.find(folder)
        current = entry.name if entry is not None else ""
        name, ok = QInputDialog.getText(
            self, "Rename profile", "New name:", QLineEdit.EchoMode.Normal, current
        )
        if ok:
            self.controller.personalization.rename(folder, name)

    def delete_profile_dialog(self, folder: str) -> None:
        entry = self.controller.profiles.find(folder)
        name = entry.name if entry is not None else Path(folder).name
        answer = QMessageBox.question(
            self,
            "Delete profile",
            f"Delete the profile “{name}”? Its networks and source image are removed from "
            f"{folder}; this cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.delete_profile(folder)

    # -- the rest ----------------------------------------------------------------------------------
    def _quit(self) -> None:
        self.close()

    def _toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def _show_shortcuts(self) -> None:
        rows = "".join(
            f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in SHORTCUTS
        )
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def save_settings(self) -> None:
        if self.store is not None and self.controller.dirty:
            self.controller.dirty = False
            self.store.save(self.controller.settings())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self._save_timer.stop()
        if self.personalize_dialog is not None:
            self.personalize_dialog.hide()
        self.controller.personalization.close()
        if self.store is not None:
            self.controller.dirty = True
            self.save_settings()
        if self.bridge is not None:
            self.bridge.stop()
        super().closeEvent(event)

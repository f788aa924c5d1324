"""The portrait gallery: thumbnails of the bundled and the user's portraits."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.models.gallery import GalleryModel, PortraitEntry, same_path

THUMB = 84
PATH_ROLE = Qt.ItemDataRole.UserRole


def thumbnail(path: str, side: int = THUMB) -> QIcon:
    """A square thumbnail (cover, centred on the upper part where faces usually are)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and size.width() > 0 and size.height() > 0:
        scale = side / min(size.width(), size.height())
        reader.setScaledSize(QSize(round(size.width() * scale), round(size.height() * scale)))
    image = reader.read()
    if image.isNull():
        return QIcon()
    x = max(0, (image.width() - side) // 2)
    y = max(0, min(image.height() - side, round(image.height() * 0.08)))
    return QIcon(
        QPixmap.fromImage(image.copy(x, y, side, side).convertToFormat(QImage.Format.Format_RGB32))
    )


class GalleryWidget(QWidget):
    """A view of GalleryModel. Clicking asks for a portrait; the highlight follows what the
    engine animates. `add_requested`: the user wants to pick files (the window opens the
    dialog)."""

    add_requested = Signal()
    remove_requested = Signal(str)

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 16, THUMB + 34))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setMinimumHeight(2 * (THUMB + 34) + 12)
        self.list.itemClicked.connect(self._clicked)
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.add_button = QPushButton("Add portrait…")
        self.add_button.setToolTip("Add your own portrait (Ctrl+O), or drop image files here")
        self.add_button.clicked.connect(self.add_requested.emit)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the highlighted portrait (only your own)")
        self.remove_button.clicked.connect(self._remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button, 1)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        model.entries_changed.connect(lambda _: self._rebuild())
        model.selection_changed.connect(lambda _: self._sync())
        model.requested_changed.connect(lambda _: self._sync())
        self._rebuild()

    def item_for(self, path: str) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if same_path(item.data(PATH_ROLE), path):
                return item
        return None

    def _rebuild(self) -> None:
        self.list.clear()
        for entry in self.model.entries:
            self.list.addItem(self._item(entry))
        self._sync()

    def _item(self, entry: PortraitEntry) -> QListWidgetItem:
        item = QListWidgetItem(thumbnail(entry.path), entry.name)
        item.setData(PATH_ROLE, entry.path)
        origin = "bundled" if entry.bundled else "yours"
        item.setToolTip(f"{entry.name} ({origin})\n{entry.path}")
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        return item

    def _sync(self) -> None:
        """Highlight the animated portrait; mark the one being loaded."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            path = item.data(PATH_ROLE)
            entry = self.model.find(path)
            name = entry.name if entry else Path(path).stem
            pending = self.model.requested is not None and same_path(self.model.requested, path)
            item.setText(f"{name}\n(loading…)" if pending else name)
        current = self.item_for(self.model.selected) if self.model.selected else None
        self.list.blockSignals(True)
        if current is None:
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(current)
        self.list.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        item = self.list.currentItem()
        entry = self.model.find(item.data(PATH_ROLE)) if item is not None else None
        self.remove_button.setEnabled(entry is not None and not entry.bundled)

    def _clicked(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        if self.model.selected is None or not same_path(path, self.model.selected):
            self.model.request(path)
        self._update_buttons()

    def _remove(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.remove_requested.emit(item.data(PATH_ROLE))

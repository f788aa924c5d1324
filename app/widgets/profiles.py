"""The sidebar's profiles: Personalize…, the list (click one to animate it), Rename, Delete."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.models.gallery import same_path
from app.models.profiles import ProfileEntry, ProfilesModel
from app.widgets.gallery import thumbnail

ICON = 44
FOLDER_ROLE = Qt.ItemDataRole.UserRole
EMPTY_HINT = (
    "No profiles yet. Personalize… records about 30 s of you and learns your face: the avatar "
    "then is you."
)


class ProfilesWidget(QWidget):
    """A view of ProfilesModel. Clicking asks for a profile; the highlight follows what the
    engine animates. The buttons' requests go to the window (dialogs, confirmation)."""

    personalize_requested = Signal()
    rename_requested = Signal(str)
    delete_requested = Signal(str)

    def __init__(self, model: ProfilesModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.personalize_button = QPushButton("Personalize… (P)")
        self.personalize_button.setObjectName("primary")
        self.personalize_button.setToolTip("Record about 30 s of you and learn your face")
        self.personalize_button.clicked.connect(self.personalize_requested.emit)
        self.list = QListWidget()
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setMaximumHeight(4 * (ICON + 12))
        self.list.itemClicked.connect(self._clicked)
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.empty = QLabel(EMPTY_HINT)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._rename)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self._delete)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rename_button, 1)
        buttons.addWidget(self.delete_button, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.personalize_button)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        layout.addLayout(buttons)
        model.entries_changed.connect(lambda _: self._rebuild())
        model.selection_changed.connect(lambda _: self._sync())
        model.requested_changed.connect(lambda _: self._sync())
        self._rebuild()

    def item_for(self, folder: str) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if same_path(item.data(FOLDER_ROLE), folder):
                return item
        return None

    def _rebuild(self) -> None:
        self.list.clear()
        for entry in self.model.entries:
            self.list.addItem(self._item(entry))
        has_any = bool(self.model.entries)
        self.list.setVisible(has_any)
        self.empty.setVisible(not has_any)
        self._sync()

    def _item(self, entry: ProfileEntry) -> QListWidgetItem:
        item = QListWidgetItem(thumbnail(entry.source, ICON), entry.name)
        item.setData(FOLDER_ROLE, entry.folder)
        item.setToolTip(f"{entry.name}\n{entry.detail}\n{entry.folder}")
        return item

    def _sync(self) -> None:
        """Highlight the animated profile; mark the one being loaded."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            folder = item.data(FOLDER_ROLE)
            entry = self.model.find(folder)
            name = entry.name if entry is not None else folder
            pending = self.model.requested is not None and same_path(self.model.requested, folder)
            item.setText(f"{name}  (loading…)" if pending else name)
        current = self.item_for(self.model.active) if self.model.active else None
        self.list.blockSignals(True)
        if current is None:
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(current)
        self.list.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.list.currentItem() is not None
        self.rename_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)

    def _clicked(self, item: QListWidgetItem) -> None:
        folder = item.data(FOLDER_ROLE)
        if self.model.active is None or not same_path(folder, self.model.active):
            self.model.request(folder)
        self._update_buttons()

    def chosen(self) -> str | None:
        """The highlighted profile's folder (None: none)."""
        item = self.list.currentItem()
        return str(item.data(FOLDER_ROLE)) if item is not None else None

    def _rename(self) -> None:
        folder = self.chosen()
        if folder is not None:
            self.rename_requested.emit(folder)

    def _delete(self) -> None:
        folder = self.chosen()
        if folder is not None:
            self.delete_requested.emit(folder)

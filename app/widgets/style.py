"""The app's look: a dark Fusion palette and a few style rules, in one place."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#7cc4ff"
PANE_BACKGROUND = QColor(18, 19, 22)
LEVEL_COLOURS = {"info": "#1f3b57", "warning": "#5a4a16", "error": "#5c1f24"}

STYLE_SHEET = """
QMainWindow, QWidget#sidebar { background: #202226; }
QGroupBox {
    border: 1px solid #34373d; border-radius: 8px; margin-top: 14px; padding: 10px 8px 8px 8px;
    font-weight: bold; color: #d8dbe0;
}
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
QPushButton {
    background: #2e3238; border: 1px solid #40454d; border-radius: 6px; padding: 6px 12px;
    color: #e6e8eb;
}
QPushButton:hover { background: #383d44; }
QPushButton:pressed { background: #25282d; }
QPushButton#primary { background: #2563a8; border-color: #3578c4; font-weight: bold; }
QPushButton#primary:hover { background: #2d70bb; }
QPushButton#primary[running="true"] { background: #a8322f; border-color: #c4423f; }
QListWidget { background: #181a1d; border: 1px solid #34373d; border-radius: 6px; }
QListWidget::item { color: #d8dbe0; border-radius: 6px; padding: 4px; }
QListWidget::item:selected { background: #2563a8; color: white; }
QStatusBar { background: #17181b; color: #b9bec6; }
QStatusBar QLabel { color: #b9bec6; padding: 0 8px; }
QLabel#hint { color: #9aa0a8; }
QFrame#banner { border-radius: 8px; }
QFrame#banner QLabel { color: #f2f3f5; }
"""


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: QColor(32, 34, 38),
        QPalette.ColorRole.WindowText: QColor(228, 230, 233),
        QPalette.ColorRole.Base: QColor(24, 26, 29),
        QPalette.ColorRole.AlternateBase: QColor(36, 38, 42),
        QPalette.ColorRole.Text: QColor(228, 230, 233),
        QPalette.ColorRole.Button: QColor(46, 50, 56),
        QPalette.ColorRole.ButtonText: QColor(230, 232, 235),
        QPalette.ColorRole.Highlight: QColor(37, 99, 168),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.ToolTipBase: QColor(46, 50, 56),
        QPalette.ColorRole.ToolTipText: QColor(230, 232, 235),
        QPalette.ColorRole.PlaceholderText: QColor(140, 145, 152),
    }
    for role, colour in colours.items():
        palette.setColor(role, colour)
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)

"""The preset browser: built-in and user presets, the chosen one's description, and an image-folder button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from engine.config import ConfigError
from engine.presets import load_preset, preset_paths


class PresetBrowser(QWidget):
    """Lists the presets; emits chosen(name, path) when the person picks a valid one."""

    chosen = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset_list = QListWidget()
        self.preset_list.setObjectName("presets")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.folder_button = QPushButton("Use an image folder…")
        layout = QVBoxLayout(self)
        layout.addWidget(self.preset_list, 1)
        layout.addWidget(self.description)
        layout.addWidget(self.folder_button)
        self.reload()
        self.preset_list.currentItemChanged.connect(self._current_changed)

    def reload(self) -> None:
        """Every preset on disk; one that does not load is listed greyed out, its error as the tooltip."""
        self.preset_list.blockSignals(True)
        self.preset_list.clear()
        for path in preset_paths():
            try:
                config = load_preset(path)
            except ConfigError as exc:
                item = QListWidgetItem(f"{path.stem} (invalid)")
                item.setToolTip(str(exc))
                item.setFlags(Qt.NoItemFlags)
            else:
                item = QListWidgetItem(path.stem)
                item.setToolTip(config.description)
                item.setData(Qt.UserRole, str(path))
            self.preset_list.addItem(item)
        self.preset_list.blockSignals(False)

    def select(self, name: str, fallback: str | None = None) -> None:
        items = self.preset_list.findItems(name, Qt.MatchExactly)
        if not items and fallback:
            items = self.preset_list.findItems(fallback, Qt.MatchExactly)
        if items:
            self.preset_list.setCurrentItem(items[0])

    def show_quietly(self, name: str) -> None:
        """Highlight a preset (or none) without choosing it: an opened run shows where it came from."""
        self.preset_list.blockSignals(True)
        matches = self.preset_list.findItems(name, Qt.MatchExactly)
        self.preset_list.setCurrentItem(matches[0] if matches else None)
        self.preset_list.blockSignals(False)

    def set_enabled(self, enabled: bool) -> None:
        self.preset_list.setEnabled(enabled)
        self.folder_button.setEnabled(enabled)

    def _current_changed(self, item, _previous=None) -> None:
        if item is not None and item.data(Qt.UserRole):
            self.chosen.emit(item.text(), item.data(Qt.UserRole))

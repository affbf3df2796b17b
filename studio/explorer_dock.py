"""The latent explorer's dock, and what it makes shown and saved: a traversal sheet in a dialog, an
interpolation between two bookmarks as a GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QLabel, QPushButton, QVBoxLayout

from studio.explorer import ExplorerPanel, to_pixmap


def save_interpolation(frames: list, path: Path) -> Path:
    """The frames as a GIF; 28 x 28 frames are too small to see, so each of their pixels becomes 4 x 4."""
    from engine.images import save_gif
    small = frames[0].shape[0] < 128
    return save_gif(Path(path), [np.kron(f, np.ones((4, 4, 1), np.uint8)) if small else f for f in frames], 80)


class ExplorerDock(QDockWidget):
    saved = Signal(str)  # a sheet PNG or an interpolation GIF was written here

    def __init__(self, parent=None):
        super().__init__("Latent explorer", parent)
        self.setObjectName("explorer-dock")
        self.explorer = ExplorerPanel()
        self.explorer.sheetShown.connect(self.show_sheet)
        self.explorer.worker.framesReady.connect(self._frames_ready)
        self.sheet_dialog: QDialog | None = None
        self._pending_gif: Path | None = None
        interpolate_button = QPushButton("Interpolate two bookmarks → GIF…")
        interpolate_button.clicked.connect(self.interpolate_to_gif)
        self.explorer.layout().addWidget(interpolate_button)
        self.setWidget(self.explorer)

    def show_sheet(self, sheet: np.ndarray) -> None:
        """A traversal sheet with a button to save it as PNG."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Traversal sheet")
        layout = QVBoxLayout(dialog)
        label = QLabel()
        label.setPixmap(to_pixmap(sheet, 640))
        layout.addWidget(label)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Close)
        buttons.accepted.connect(lambda: self._save_picture(sheet, "traversal.png"))
        buttons.rejected.connect(dialog.close)
        layout.addWidget(buttons)
        self.sheet_dialog = dialog
        dialog.open()

    def _save_picture(self, picture: np.ndarray, default: str) -> None:
        from engine.images import save_png
        path, _ = QFileDialog.getSaveFileName(self, "Save", default, "PNG (*.png)")
        if path:
            save_png(Path(path), picture)
            self.saved.emit(path)

    def interpolate_to_gif(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save interpolation", "interpolation.gif", "GIF (*.gif)")
        if name and self.explorer.interpolate_selected():
            self._pending_gif = Path(name)

    def _frames_ready(self, frames: list) -> None:
        if self._pending_gif is not None:
            path, self._pending_gif = self._pending_gif, None
            self.save_interpolation(frames, path)

    def save_interpolation(self, frames: list, path: Path) -> None:
        save_interpolation(frames, path)
        self.saved.emit(str(path))

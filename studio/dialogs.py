"""The window's message boxes: one sentence that says what is wrong and what to do, details expandable."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


def message_box(parent, icon, text: str, details: str = "", buttons=()) -> QMessageBox:
    """A box with `text`, `details` behind "Show Details…", then (label, slot) buttons and Close."""
    box = QMessageBox(icon, "GAN Studio", text, parent=parent)
    if details and details != text:
        box.setDetailedText(details)
    for label, slot in buttons:
        box.addButton(label, QMessageBox.AcceptRole).clicked.connect(slot)
    box.addButton(QMessageBox.Close)
    return box


def ask_to_save(parent) -> str | None:
    """Closing while a run trains: "save", "discard", or None when the person cancels."""
    answer = QMessageBox.question(parent, "GAN Studio", "A run is still training. Save a checkpoint before closing?",
                                  QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
    if answer == QMessageBox.Cancel:
        return None
    return "save" if answer == QMessageBox.Save else "discard"


def about_text() -> str:
    """What the About box says: the versions a bug report needs."""
    import platform
    from importlib import metadata

    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    try:
        version = metadata.version("gan-studio")
    except metadata.PackageNotFoundError:
        version = "(not installed as a package)"
    device = "CUDA " + torch.version.cuda if torch.cuda.is_available() and torch.version.cuda else "CPU"
    return (f"GAN Studio {version}\nPyTorch {torch.__version__} ({device})\nQt {qVersion()}, "
            f"PySide6 {PySide6.__version__}\nPython {platform.python_version()}")


def app_icon():
    """The window's icon, drawn (no file to ship): real data in blue, the generator's points in orange."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap

    icon = QIcon()
    for size in (16, 32, 64, 128):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QBrush(QColor(31, 119, 180)))
        painter.drawEllipse(QPointF(size * 0.40, size * 0.42), size * 0.34, size * 0.34)
        painter.setBrush(QBrush(QColor(230, 85, 13, 220)))
        painter.drawEllipse(QPointF(size * 0.64, size * 0.62), size * 0.30, size * 0.30)
        painter.end()
        icon.addPixmap(pixmap)
    return icon

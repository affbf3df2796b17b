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

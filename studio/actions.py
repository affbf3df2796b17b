"""The window's actions (Start, Pause, Step, ...), with their shortcuts and tips, in its toolbar and menus."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

# attribute, text, shortcut, the window's method, tip
ACTIONS = (
    ("start", "Start", "Ctrl+Return", "start", "Start training the chosen preset"),
    ("pause", "Pause", "Space", "toggle_pause", "Pause or resume training"),
    ("step", "Step", "S", "step_once", "One generator step with its k D steps"),
    ("stop", "Stop", "Ctrl+.", "stop", "Stop and save a checkpoint"),
    ("fork", "Fork", "Ctrl+F", "fork", "Start a sibling run from this state"),
    ("save", "Save", "Ctrl+S", "save", "Save a checkpoint now"),
    ("open", "Open…", "Ctrl+O", "open_dialog", "Open a run folder or checkpoint"),
    ("export", "Export…", "Ctrl+E", "export_dialog", "Export samples or curves"),
    ("duplicates", "Duplicates…", "", "duplicates_dialog", "Look for repeated samples: the birthday-paradox test"),
    ("rollback", "Roll back", "Ctrl+Z", "roll_back", "Restore the last good checkpoint of the paused run"),
    ("dark", "Dark theme", "", "apply_theme", "Switch between light and dark"),
    ("about", "About GAN Studio", "", "show_about", "Versions of GAN Studio, PyTorch, Qt and Python"),
)
TOOLBAR = (("start", "pause", "step", "stop", "fork"), ("save", "open", "export"))
MENUS = (("&File", ("open", "save", "export")), ("&Run", ("start", "pause", "step", "stop", "fork", "rollback")),
         ("&Tools", ("duplicates",)), ("&View", ("dark",)), ("&Help", ("about",)))


def install_actions(window) -> dict[str, QAction]:
    """Make the actions (also as window.<name>_action), the "Run" toolbar and the menus."""
    actions = {}
    for name, text, shortcut, method, tip in ACTIONS:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        action.setStatusTip(tip)
        action.triggered.connect(getattr(window, method))
        window.addAction(action)
        setattr(window, f"{name}_action", action)
        actions[name] = action
    actions["dark"].setCheckable(True)
    toolbar = window.addToolBar("Run")
    toolbar.setObjectName("run-toolbar")
    for i, group in enumerate(TOOLBAR):
        if i:
            toolbar.addSeparator()
        toolbar.addActions([actions[name] for name in group])
    for title, names in MENUS:
        window.menuBar().addMenu(title).addActions([actions[name] for name in names])
    return actions


def update_actions(actions: dict[str, QAction], running: bool, paused: bool) -> None:
    """What can be done now: start when idle; pause, stop while running; fork and roll back when paused."""
    actions["start"].setEnabled(not running)
    actions["pause"].setEnabled(running)
    actions["pause"].setText("Resume" if running and paused else "Pause")
    actions["stop"].setEnabled(running)
    actions["fork"].setEnabled(running and paused)
    actions["rollback"].setEnabled(running and paused)

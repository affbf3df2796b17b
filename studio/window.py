"""The studio's main window: pick, set, run, watch, scrub, fork, save/open, export."""

from __future__ import annotations

import json
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QElapsedTimer, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QButtonGroup, QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QFormLayout,
                               QLabel, QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QProgressBar,
                               QPushButton, QRadioButton, QScrollArea, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from engine.config import Config, ConfigError, live_keys, load_preset, preset_paths, resolve_key
from engine.paths import runs_dir
from studio.bridge import EngineBridge
from studio.explorer import ExplorerPanel
from studio.form import ConfigForm
from studio.views import CurvesPanel, SamplesPanel

DEFAULT_PRESET = "ring8"
EXPORT_KINDS = (
    ("grid", "Sample grid (PNG)"),
    ("each", "One PNG per sample (folder)"),
    ("gif", "Timelapse of the fixed-noise samples (GIF)"),
    ("curves_png", "Curves (PNG)"),
    ("curves_csv", "Curves (CSV)"),
)


def marker_text(name: str, old, new) -> str:
    """The label of a change marker on the curves, live or read back from changes.jsonl."""
    show = lambda v: f"{v:g}" if isinstance(v, float) else v
    return f"{name} {show(old)}→{show(new)}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    files = sorted((Path(run_dir) / "checkpoints").glob("step_*.pt"))
    return files[-1] if files else None


def make_timelapse(run_dir: Path, out: Path, frame_ms: int = 120) -> Path:
    from PIL import Image

    from engine.images import save_gif

    frames = sorted((Path(run_dir) / "samples").glob("step_*.png"))
    if not frames:
        raise ValueError("this run has no sample snapshots yet")
    pictures = []
    for frame in frames:
        with Image.open(frame) as img:
            pictures.append(np.asarray(img.convert("RGB")))
    return save_gif(out, pictures, frame_ms)


class ExportDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        layout = QVBoxLayout(self)
        self.group = QButtonGroup(self)
        for i, (kind, label) in enumerate(EXPORT_KINDS):
            button = QRadioButton(label)
            button.setProperty("kind", kind)
            self.group.addButton(button, i)
            layout.addWidget(button)
        self.group.button(0).setChecked(True)
        form = QFormLayout()
        self.count = QSpinBox()
        self.count.setRange(1, 1024)
        self.count.setValue(64)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(2)
        self.scale.setToolTip("Each pixel becomes scale × scale pixels")
        form.addRow("samples", self.count)
        form.addRow("seed", self.seed)
        form.addRow("scale", self.scale)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def kind(self) -> str:
        return self.group.checkedButton().property("kind")


class MainWindow(QMainWindow):
    exportDone = Signal(str)
    exportFailed = Signal(str)

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("GAN Studio")
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("GAN Studio", "gan-studio")
        self.bridge = EngineBridge(self)
        self.config: Config = Config()
        self.run_dir: Path | None = None
        self.resume_from: Path | None = None
        self.fork_parent: Path | None = None
        self._fork_requested = False
        self._pending_export: tuple | None = None
        self._export_threads: list[threading.Thread] = []
        self.close_policy: str | None = None  # None asks; "save" / "discard" for scripted closes
        self.last_message_box: QMessageBox | None = None
        self.last_checkpoint: Path | None = None
        self.step = 0
        self.clock = QElapsedTimer()

        self.samples = SamplesPanel()
        self.curves = CurvesPanel()
        self.curves.stepClicked.connect(self.samples.show_step)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.samples)
        splitter.addWidget(self.curves)
        splitter.setSizes([600, 700])
        self.setCentralWidget(splitter)

        self.preset_list = QListWidget()
        self.preset_list.setObjectName("presets")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.folder_button = QPushButton("Use an image folder…")
        self.folder_button.clicked.connect(self.choose_folder)
        browser = QWidget()
        browser_layout = QVBoxLayout(browser)
        browser_layout.addWidget(self.preset_list, 1)
        browser_layout.addWidget(self.description)
        browser_layout.addWidget(self.folder_button)
        dock = QDockWidget("Presets", self)
        dock.setObjectName("presets-dock")
        dock.setWidget(browser)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)

        self.form = ConfigForm()
        self.form.edited.connect(self.on_form_edited)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        settings_dock = QDockWidget("Settings", self)
        settings_dock.setObjectName("settings-dock")
        settings_dock.setWidget(scroll)
        self.addDockWidget(Qt.LeftDockWidgetArea, settings_dock)
        self.tabifyDockWidget(dock, settings_dock)
        dock.raise_()

        self.explorer = ExplorerPanel()
        self.explorer.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.explorer.sheetShown.connect(self.show_sheet)
        self._pending_gif: Path | None = None
        self.explorer.worker.framesReady.connect(self._frames_ready)
        interpolate_button = QPushButton("Interpolate two bookmarks → GIF…")
        interpolate_button.clicked.connect(self.interpolate_to_gif)
        self.explorer.layout().addWidget(interpolate_button)
        self.explorer_dock = QDockWidget("Latent explorer", self)
        self.explorer_dock.setObjectName("explorer-dock")
        self.explorer_dock.setWidget(self.explorer)
        self.addDockWidget(Qt.RightDockWidgetArea, self.explorer_dock)
        self.explorer_dock.hide()

        self._build_actions()
        self._build_status()
        self._connect_bridge()
        self.exportDone.connect(lambda path: self.statusBar().showMessage(f"Exported {path}", 8000))
        self.exportFailed.connect(lambda why: self.show_error(why))
        self.reload_presets()
        self.preset_list.currentItemChanged.connect(self._preset_chosen)
        self.select_preset(self.settings.value("last_preset", DEFAULT_PRESET))
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if str(self.settings.value("theme", "light")) == "dark":
            self.dark_action.setChecked(True)
            self.apply_theme(True)
        self._update_actions()

    # -- construction -----------------------------------------------------------------------
    def _action(self, text, shortcut, slot, tip):
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self):
        self.start_action = self._action("Start", "Ctrl+Return", self.start, "Start training the chosen preset")
        self.pause_action = self._action("Pause", "Space", self.toggle_pause, "Pause or resume training")
        self.step_action = self._action("Step", "S", self.step_once, "One generator step with its k D steps")
        self.stop_action = self._action("Stop", "Ctrl+.", self.stop, "Stop and save a checkpoint")
        self.fork_action = self._action("Fork", "Ctrl+F", self.fork, "Start a sibling run from this state")
        self.save_action = self._action("Save", "Ctrl+S", self.save, "Save a checkpoint now")
        self.open_action = self._action("Open…", "Ctrl+O", self.open_dialog, "Open a run folder or checkpoint")
        self.export_action = self._action("Export…", "Ctrl+E", self.export_dialog, "Export samples or curves")
        self.rollback_action = self._action("Roll back", "Ctrl+Z", self.bridge.rollback,
                                            "Restore the last good checkpoint of the paused run")
        self.dark_action = self._action("Dark theme", "", self.apply_theme, "Switch between light and dark")
        self.dark_action.setCheckable(True)
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("run-toolbar")
        for action in (self.start_action, self.pause_action, self.step_action, self.stop_action, self.fork_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        for action in (self.save_action, self.open_action, self.export_action):
            toolbar.addAction(action)
        menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.save_action, self.export_action):
            menu.addAction(action)
        run_menu = self.menuBar().addMenu("&Run")
        for action in (self.start_action, self.pause_action, self.step_action, self.stop_action, self.fork_action,
                       self.rollback_action):
            run_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.dark_action)

    def _build_status(self):
        bar = self.statusBar()
        self.step_label = QLabel("step 0")
        self.speed_label = QLabel("")
        self.device_label = QLabel("")
        self.elapsed_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.hide()
        for widget in (self.progress_bar, self.step_label, self.speed_label, self.device_label, self.elapsed_label):
            bar.addPermanentWidget(widget)

    def _connect_bridge(self):
        b = self.bridge
        b.started.connect(self.on_started)
        b.metricsArrived.connect(self.on_metrics)
        b.samplesArrived.connect(self.samples.show_samples)
        b.generatorWeights.connect(lambda event: self.explorer.load_weights(event, self.run_dir))
        b.paramChanged.connect(self.on_param_changed)
        b.paused.connect(self.on_paused)
        b.resumed.connect(lambda e: self._update_actions())
        b.checkpointed.connect(self.on_checkpointed)
        b.rejected.connect(self.on_rejected)
        b.warning.connect(lambda text: self.statusBar().showMessage(text, 10000))
        b.progress.connect(self.on_progress)
        b.rolledBack.connect(lambda e: self.statusBar().showMessage(f"Rolled back to step {e.step}.", 8000))
        b.finished.connect(self.on_finished)
        b.failed.connect(self.on_failed)
        b.runningChanged.connect(lambda running: self._update_actions())

    # -- presets and settings ----------------------------------------------------------------
    def reload_presets(self):
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

    def select_preset(self, name: str):
        items = self.preset_list.findItems(name, Qt.MatchExactly)
        if not items:
            items = self.preset_list.findItems(DEFAULT_PRESET, Qt.MatchExactly)
        if items:
            self.preset_list.setCurrentItem(items[0])

    def _preset_chosen(self, item, _previous=None):
        if item is None or self.bridge.running or not item.data(Qt.UserRole):
            return
        self.config = load_preset(item.data(Qt.UserRole))
        self.explorer_dock.setVisible(self.steerable(self.config))
        self.description.setText(self.config.description)
        self.form.set_config(self.config)
        self.resume_from = None
        self.fork_parent = None
        self.settings.setValue("last_preset", item.text())

    def on_form_edited(self, key: str, value):
        if self.bridge.running:
            if key in live_keys():
                self.bridge.set(key, value)
            return
        try:
            self.config.set(key, value)
        except ConfigError as exc:
            self.form.mark_error(key, str(exc))
            self.statusBar().showMessage(str(exc), 10000)
        else:
            self.form.set_value(key, self.config.get(key))

    def choose_folder(self):
        folder = QFileDialog.getExistingDirectory(self, "Train on a folder of images")
        if folder:
            self.use_folder(folder)

    def use_folder(self, folder: str):
        """Train the current (image) preset on a folder; a toy preset switches to DCGAN."""
        if self.bridge.running:
            self.statusBar().showMessage("Stop the run before changing its data.", 8000)
            return
        config = self.config.copy()
        if config.model.architecture == "mlp":
            config = load_preset("dcgan_fashion")
        config.model.conditional = config.model.auxiliary_classifier = False
        config.data.dataset, config.data.path = "folder", str(folder)
        config.name = f"{Path(folder).name}-{config.name}"
        try:
            config.check()
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        self.config = config
        self.form.set_config(config)
        self.statusBar().showMessage(f"Data: images in {folder}; press Start.", 10000)

    def dragEnterEvent(self, event):
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event):
        self.use_folder(event.mimeData().urls()[0].toLocalFile())
        event.acceptProposedAction()

    # -- running ------------------------------------------------------------------------------
    def start(self, paused: bool = False):
        if self.bridge.running:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        resume = self.resume_from
        if resume is not None and self.fork_parent is None and self.run_dir is not None:
            run_dir = self.run_dir  # continue an opened run in its own folder
        else:
            suffix = "-fork" if self.fork_parent is not None else ""
            run_dir = runs_dir() / f"{self.config.name}{suffix}-{stamp}"
            if resume is None:
                self.curves.clear()
            self.samples.clear()
        self.run_dir = run_dir
        self.clock.start()
        self.bridge.start(self.config, run_dir, resume=resume, paused=paused)
        if self.steerable(self.config):
            self.bridge.watch_generator(True)
            self.explorer_dock.show()
        else:
            self.explorer_dock.hide()
        self.form.set_running(True)
        self.statusBar().showMessage(f"Run folder: {run_dir}", 8000)

    @staticmethod
    def steerable(config: Config) -> bool:
        m = config.model
        return bool(m.info_categorical or m.info_continuous or m.conditional or m.auxiliary_classifier)

    def show_sheet(self, sheet: np.ndarray):
        """Show a traversal sheet with a button to save it as PNG."""
        from studio.explorer import to_pixmap
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

    def _save_picture(self, picture: np.ndarray, default: str):
        from engine.images import save_png
        path, _ = QFileDialog.getSaveFileName(self, "Save", default, "PNG (*.png)")
        if path:
            save_png(Path(path), picture)
            self.statusBar().showMessage(f"Saved {path}", 8000)

    def interpolate_to_gif(self):
        name, _ = QFileDialog.getSaveFileName(self, "Save interpolation", "interpolation.gif", "GIF (*.gif)")
        if name and self.explorer.interpolate_selected():
            self._pending_gif = Path(name)

    def _frames_ready(self, frames: list):
        if self._pending_gif is not None:
            path, self._pending_gif = self._pending_gif, None
            self.save_interpolation(frames, path)

    def save_interpolation(self, frames: list, path: Path):
        from engine.images import save_gif
        small = frames[0].shape[0] < 128  # 28 x 28 frames are too small to see: 4 x 4 pixels each
        save_gif(Path(path), [np.kron(f, np.ones((4, 4, 1), np.uint8)) if small else f for f in frames], 80)
        self.exportDone.emit(str(path))

    def toggle_pause(self):
        if not self.bridge.running:
            return
        if self.bridge.is_paused:
            self.bridge.resume()
        else:
            self.bridge.pause()

    def step_once(self):
        if not self.bridge.running:
            self.start(paused=True)
        elif not self.bridge.is_paused:
            self.bridge.pause()
        self.bridge.step(1)

    def stop(self):
        if self.bridge.running:
            self.bridge.stop(save=True)

    def save(self):
        if self.bridge.running:
            self.bridge.save_now()
        else:
            self.statusBar().showMessage("Nothing is training; every run is saved in its folder as it goes.", 8000)

    def fork(self):
        if not (self.bridge.running and self.bridge.is_paused):
            self.statusBar().showMessage("Pause the run first, then fork it.", 8000)
            return
        self._fork_requested = True
        self.bridge.save_now()

    # -- engine events --------------------------------------------------------------------------
    def on_started(self, event):
        self._close_download_dialog()
        self.device_label.setText(event.device)
        self.step = event.step
        self._update_actions()

    def on_metrics(self, metrics: list):
        self.curves.add_metrics(metrics)
        train = [m for m in metrics if m.group == "train"]
        if not train:
            return
        last = train[-1]
        self.step = last.step
        self.step_label.setText(f"step {last.step}")
        if "steps_per_sec" in last.values:
            self.speed_label.setText(f"{last.values['steps_per_sec']:.0f} steps/s")
        seconds = int(self.clock.elapsed() / 1000) if self.clock.isValid() else 0
        self.elapsed_label.setText(time.strftime("%H:%M:%S", time.gmtime(seconds)))

    def on_param_changed(self, event):
        self.config.set(event.name, event.new, check=False)
        self.form.set_value(resolve_key(event.name), event.new)
        self.curves.add_marker(event.step, marker_text(event.name, event.old, event.new))

    def on_paused(self, event):
        self._update_actions()
        if event.reason:
            box = self._message_box(QMessageBox.Warning, event.reason.split(";")[0] + ".", event.reason)
            rollback = box.addButton("Roll back", QMessageBox.AcceptRole)
            box.addButton(QMessageBox.Close)
            rollback.clicked.connect(self.bridge.rollback)
            box.open()

    def on_checkpointed(self, event):
        self.last_checkpoint = Path(event.path)
        if self._fork_requested:
            self._fork_requested = False
            self.resume_from = self.last_checkpoint
            self.fork_parent = self.run_dir
            self.bridge.stop(save=False)
        if self._pending_export is not None:
            kind, path, count, seed, scale = self._pending_export
            self._pending_export = None
            self._export_in_thread(kind, Path(path), count, seed, scale, self.last_checkpoint)

    def on_rejected(self, why: str):
        self.statusBar().showMessage(why, 10000)
        self.form.set_config(self.config)

    def apply_theme(self, dark: bool):
        """Light or dark, for the widgets and the plots; remembered between launches."""
        from PySide6.QtGui import QColor, QPalette
        from PySide6.QtWidgets import QApplication
        app = QApplication.instance()
        if dark:
            app.setStyle("Fusion")
            palette = QPalette()
            for role, colour in ((QPalette.Window, "#2b2b2b"), (QPalette.WindowText, "#e0e0e0"),
                                 (QPalette.Base, "#1e1e1e"), (QPalette.AlternateBase, "#2b2b2b"),
                                 (QPalette.Text, "#e0e0e0"), (QPalette.Button, "#3a3a3a"),
                                 (QPalette.ButtonText, "#e0e0e0"), (QPalette.Highlight, "#2f65ca"),
                                 (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, "#3a3a3a"),
                                 (QPalette.ToolTipText, "#e0e0e0")):
                palette.setColor(role, QColor(colour))
            app.setPalette(palette)
        else:
            app.setPalette(app.style().standardPalette())
        self.curves.set_dark(dark)
        self.samples.set_dark(dark)
        self.settings.setValue("theme", "dark" if dark else "light")

    def on_progress(self, event):
        if event.task.startswith("Downloading"):
            self._download_progress(event)
            return
        if event.done >= event.total > 0:
            self.progress_bar.hide()
            return
        self.progress_bar.show()
        self.progress_bar.setFormat(event.task + " %p%")
        self.progress_bar.setRange(0, max(event.total, 0))
        self.progress_bar.setValue(event.done if event.total else 0)

    def _download_progress(self, event):
        from PySide6.QtWidgets import QProgressDialog
        if getattr(self, "download_dialog", None) is None:
            self.download_dialog = QProgressDialog(self)
            self.download_dialog.setWindowTitle("Downloading data")
            self.download_dialog.setCancelButtonText("Stop the run")
            self.download_dialog.canceled.connect(lambda: self.bridge.stop(save=False))
            self.download_dialog.setMinimumDuration(0)
        dialog = self.download_dialog
        dialog.setLabelText(f"{event.task} ({event.done >> 20} of {event.total >> 20} MiB)"
                            if event.total else f"{event.task} ({event.done >> 20} MiB)")
        dialog.setRange(0, event.total if event.total else 0)
        dialog.setValue(min(event.done, event.total) if event.total else 0)
        dialog.show()

    def _close_download_dialog(self):
        if getattr(self, "download_dialog", None) is not None:
            self.download_dialog.hide()

    def on_finished(self, event):
        self._close_download_dialog()
        self.form.set_running(False)
        self._update_actions()
        if self.fork_parent is not None and self.resume_from is not None:
            self.curves.clear(keep_as_ghost=True)
            self.statusBar().showMessage(
                f"Forked from step {event.step}: change any setting, then press Start; the parent's curves "
                f"stay dashed for comparison.", 15000)
        elif event.reason != "failed" and self.run_dir is not None:
            self.resume_from = latest_checkpoint(self.run_dir)
            self.statusBar().showMessage(f"Finished at step {event.step} ({event.reason}).", 8000)

    def on_failed(self, event):
        checkpoint = latest_checkpoint(self.run_dir) if self.run_dir else None
        box = self._message_box(QMessageBox.Critical, event.message, event.traceback)
        if checkpoint is not None:
            again = box.addButton("Restart from last checkpoint", QMessageBox.AcceptRole)
            again.clicked.connect(lambda: self._restart_from(checkpoint))
        box.addButton(QMessageBox.Close)
        box.open()

    def _restart_from(self, checkpoint: Path):
        self.resume_from = checkpoint
        self.fork_parent = None
        self.start()

    def _message_box(self, icon, text: str, details: str) -> QMessageBox:
        box = QMessageBox(icon, "GAN Studio", text, parent=self)
        if details and details != text:
            box.setDetailedText(details)
        self.last_message_box = box
        return box

    def show_error(self, text: str, details: str = ""):
        box = self._message_box(QMessageBox.Warning, text, details)
        box.addButton(QMessageBox.Close)
        box.open()

    def _update_actions(self):
        running, paused = self.bridge.running, self.bridge.is_paused
        self.start_action.setEnabled(not running)
        self.pause_action.setEnabled(running)
        self.pause_action.setText("Resume" if running and paused else "Pause")
        self.stop_action.setEnabled(running)
        self.fork_action.setEnabled(running and paused)
        self.rollback_action.setEnabled(running and paused)
        self.preset_list.setEnabled(not running)
        self.folder_button.setEnabled(not running)

    # -- open / export -------------------------------------------------------------------------------
    def open_dialog(self):
        if self.bridge.running:
            self.statusBar().showMessage("Stop the run before opening another.", 8000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(runs_dir()))
        if folder:
            self.open_run(Path(folder))

    def open_run(self, run_dir: Path):
        """Restore a run's settings, curves, change markers and snapshots; Start continues it."""
        run_dir = Path(run_dir)
        if run_dir.suffix == ".pt":
            run_dir = run_dir.parent.parent
        config_file = run_dir / "config.toml"
        if not config_file.is_file():
            self.show_error(f"{run_dir} is not a GAN Studio run folder (it has no config.toml).")
            return
        try:
            config = load_preset(config_file)
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        self.config, self.run_dir = config, run_dir
        self.form.set_config(config)
        self.preset_list.blockSignals(True)
        matches = self.preset_list.findItems(config.name, Qt.MatchExactly)
        self.preset_list.setCurrentItem(matches[0] if matches else None)
        self.preset_list.blockSignals(False)
        self.curves.clear()
        self.samples.clear()
        metrics_file = run_dir / "metrics.jsonl"
        if metrics_file.is_file():
            from engine.events import Metrics
            rows = [json.loads(line) for line in metrics_file.read_text(encoding="utf-8").splitlines() if line]
            self.curves.add_metrics([Metrics(r.pop("step"), r, r.pop("group", "train")) for r in rows])
        changes = run_dir / "changes.jsonl"
        if changes.is_file():
            for line in changes.read_text(encoding="utf-8").splitlines():
                c = json.loads(line)
                self.curves.add_marker(c["step"], marker_text(c["name"], c["old"], c["new"]))
        for png in sorted((run_dir / "samples").glob("step_*.png")):
            self.samples.add_snapshot(int(png.stem.split("_")[1]), png)
        if self.samples.snapshots:
            self.samples.slider.setValue(len(self.samples.snapshots) - 1)
            self.samples._scrubbed(len(self.samples.snapshots) - 1)
        self.resume_from = latest_checkpoint(run_dir)
        self.fork_parent = None
        if self.resume_from is not None and self.steerable(config):
            self.explorer.load_checkpoint(self.resume_from, run_dir)
            self.explorer_dock.show()
        self.description.setText(f"Opened run {run_dir.name}; press Start to continue it.")

    def export_dialog(self):
        dialog = ExportDialog(self)
        if dialog.exec() != QDialog.Accepted:
            return
        kind = dialog.kind()
        if kind == "each":
            path = QFileDialog.getExistingDirectory(self, "Export one PNG per sample into")
        else:
            suffix = {"grid": "png", "curves_png": "png", "gif": "gif", "curves_csv": "csv"}[kind]
            path, _ = QFileDialog.getSaveFileName(self, "Export", f"{self.config.name}-{kind}.{suffix}")
        if path:
            self.export(kind, Path(path), dialog.count.value(), dialog.seed.value(), dialog.scale.value())

    def export(self, kind: str, path: Path, count: int = 64, seed: int = 0, scale: int = 1):
        """Write an export; slow kinds run off the main thread and end in exportDone / exportFailed."""
        path = Path(path)
        try:
            if kind == "curves_csv":
                self.curves.write_csv(path)
                self.exportDone.emit(str(path))
            elif kind == "curves_png":
                self.curves.write_png(path)
                self.exportDone.emit(str(path))
            elif kind == "gif":
                if self.run_dir is None:
                    raise ValueError("there is no run to make a timelapse of")
                self._thread(lambda: make_timelapse(self.run_dir, path), path)
            elif self.bridge.running:
                self._pending_export = (kind, path, count, seed, scale)
                self.bridge.save_now()  # the export uses the checkpoint this writes
            else:
                checkpoint = latest_checkpoint(self.run_dir) if self.run_dir else None
                if checkpoint is None:
                    raise ValueError("there is no checkpoint yet; train for a moment first")
                self._export_in_thread(kind, path, count, seed, scale, checkpoint)
        except (OSError, ValueError) as exc:
            self.exportFailed.emit(f"Export failed: {exc}.")

    def _export_in_thread(self, kind, path: Path, count, seed, scale, checkpoint: Path):
        def work():
            from engine.cli import latent_for, render_samples
            from engine.images import save_png
            from engine.trainer import load_for_sampling
            trainer = load_for_sampling(checkpoint)
            grid, singles = render_samples(trainer, trainer.generate(latent_for(trainer, count, seed)))
            up = (lambda p: p.repeat(scale, 0).repeat(scale, 1)) if scale > 1 else (lambda p: p)
            if kind == "each":
                for i, picture in enumerate(singles):
                    save_png(path / f"sample_{i:04d}.png", up(picture))
            else:
                save_png(path, up(grid))
            return path

        self._thread(work, path)

    def _thread(self, work, path: Path):
        def run():
            try:
                work()
            except Exception as exc:  # reported to the person, never raised into Qt
                self.exportFailed.emit(f"Export failed: {exc}")
                traceback.print_exc()
            else:
                self.exportDone.emit(str(path))

        thread = threading.Thread(target=run, name="gan-studio-export", daemon=True)
        self._export_threads = [t for t in self._export_threads if t.is_alive()] + [thread]
        thread.start()

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event):
        if self.bridge.running:
            policy = self.close_policy
            if policy is None:
                answer = QMessageBox.question(
                    self, "GAN Studio", "A run is still training. Save a checkpoint before closing?",
                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
                if answer == QMessageBox.Cancel:
                    event.ignore()
                    return
                policy = "save" if answer == QMessageBox.Save else "discard"
            self.bridge.stop(save=policy == "save")
        self.bridge.join(60)  # also reaps a run that just finished and is still exiting
        for thread in self._export_threads:
            thread.join(60)
        self.explorer.close()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.sync()
        event.accept()

"""The studio's main window: pick, set, run, watch, scrub, fork, save/open, export.

What to draw (plots, live controls, previews, whether the latent explorer applies) comes from the
algorithm's declaration: engine.algorithms.get(config.algorithm).declare(config) before a run, the
Started event's once it runs. The window never names a family.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QElapsedTimer, QSettings, Qt
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QMainWindow, QMessageBox, QScrollArea,
                               QSplitter)

from engine import algorithms
from engine.config import Config, ConfigError, resolve_key
from engine.events import Declaration
from engine.paths import new_run_dir, runs_dir
from engine.presets import load_preset
from studio.actions import install_actions, update_actions
from studio.bridge import EngineBridge
from studio.browser import PresetBrowser
from studio.curves import CurvesPanel
from studio.dialogs import about_text, app_icon, ask_to_save, message_box
from studio.explorer_dock import ExplorerDock
from studio.following import Following
from studio.export import Exporter
from studio.form import ConfigForm
from studio.opening import open_run
from studio.runs import latest_checkpoint, marker_text
from studio.samples import SamplesPanel
from studio.status import RunStatus
from studio.theme import apply_palette
from studio.translate import TranslateDock

DEFAULT_PRESET = "ring8"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("GAN Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("GAN Studio", "gan-studio")
        self.bridge = EngineBridge(self)
        self.config: Config = Config()
        self.declaration = Declaration()
        self.run_dir: Path | None = None
        self.resume_from: Path | None = None
        self.fork_parent: Path | None = None
        self._fork_requested = False
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
        self.exporter = Exporter(self.curves, self.bridge, lambda: self.run_dir, self)
        self.exportDone, self.exportFailed = self.exporter.done, self.exporter.failed

        self.browser = PresetBrowser()
        self.browser.folder_button.clicked.connect(self.choose_folder)
        dock = self._dock("Presets", "presets-dock", self.browser, Qt.LeftDockWidgetArea)
        self.form = ConfigForm()
        self.form.edited.connect(self.on_form_edited)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        self.tabifyDockWidget(dock, self._dock("Settings", "settings-dock", scroll, Qt.LeftDockWidgetArea))
        dock.raise_()

        self.explorer_dock = ExplorerDock(self)
        self.explorer = self.explorer_dock.explorer
        self.explorer.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.explorer_dock.saved.connect(self.exportDone)
        self.addDockWidget(Qt.RightDockWidgetArea, self.explorer_dock)
        self.explorer_dock.hide()

        self.named_actions = install_actions(self)
        self.translate_dock = TranslateDock(self)  # pictures through an image-to-image run's model
        self.following = Following(self)  # a run another process writes: watched, steered on request
        self.status = RunStatus(self, lambda: self.bridge.stop(save=False))
        self._connect_bridge()
        self.exportDone.connect(lambda path: self.statusBar().showMessage(f"Exported {path}", 8000))
        self.exportFailed.connect(lambda why: self.show_error(why))
        self.exporter.busy.connect(lambda text: self.statusBar().showMessage(text))
        self.browser.chosen.connect(self._preset_chosen)
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
    def _dock(self, title: str, name: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect_bridge(self):
        b = self.bridge
        b.started.connect(self.on_started)
        b.metricsArrived.connect(self.on_metrics)
        b.samplesArrived.connect(self.samples.show_samples)
        b.generatorWeights.connect(lambda event: self.explorer.load_weights(event, self.run_dir))
        b.generatorWeights.connect(self.translate_dock.load_weights)
        b.paramChanged.connect(self.on_param_changed)
        b.phaseChanged.connect(self.on_phase_changed)
        b.paused.connect(self.on_paused)
        b.resumed.connect(lambda e: self._update_actions())
        b.checkpointed.connect(self.on_checkpointed)
        b.rejected.connect(self.on_rejected)
        b.warning.connect(lambda text: self.statusBar().showMessage(text, 10000))
        b.progress.connect(self.status.show_progress)
        b.rolledBack.connect(lambda e: self.statusBar().showMessage(f"Rolled back to step {e.step}.", 8000))
        b.finished.connect(self.on_finished)
        b.failed.connect(self.on_failed)
        b.runningChanged.connect(lambda running: self._update_actions())

    # -- presets and settings ----------------------------------------------------------------
    def select_preset(self, name: str):
        self.browser.select(name, fallback=DEFAULT_PRESET)

    def _preset_chosen(self, name: str, path: str):
        if self.bridge.running:
            return
        self._show_config(load_preset(path))
        self.explorer_dock.setVisible(self.declaration.steerable)
        self.browser.description.setText(self.config.description)
        self.resume_from = None
        self.fork_parent = None
        self.settings.setValue("last_preset", name)

    def _show_config(self, config: Config):
        """Make `config` the one to train: the form shows its fields, the curves its algorithm's plots."""
        self.config = config
        self.form.set_config(config)
        self._declare()

    def _declare(self, declaration: Declaration | None = None):
        self.declaration = declaration or algorithms.get(self.config.algorithm).declare(self.config)
        self.curves.declare(self.declaration)
        self.translate_dock.declare(self.declaration, self.config)

    def on_form_edited(self, key: str, value):
        if self.bridge.running:
            if key in self.declaration.controls:
                self.bridge.set(key, value)
            return
        try:
            if key != "algorithm":
                self.config.set(key, value)
            elif dropped := self.config.switch_algorithm(value):
                self.statusBar().showMessage(f"Turned off {', '.join(dropped)}: {value} has no such setting.", 10000)
        except ConfigError as exc:
            if key == "algorithm":  # the box goes back to the algorithm that stays
                self.form.set_value(key, self.config.algorithm)
            self.form.mark_error(key, str(exc))
            self.statusBar().showMessage(str(exc), 10000)
        else:
            self._show_config(self.config)  # another option can show or hide fields, another algorithm sections

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
        self._show_config(config)
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
        resume = self.resume_from
        if resume is not None and self.fork_parent is None and self.run_dir is not None:
            run_dir = self.run_dir  # continue an opened run in its own folder
        else:
            run_dir = new_run_dir(runs_dir(), self.config.name, "-fork" if self.fork_parent is not None else "")
            if resume is None:
                self.curves.clear()
            self.samples.clear()
        self.run_dir = run_dir
        self.clock.start()
        self._declare()
        self.bridge.start(self.config, run_dir, resume=resume, paused=paused)
        self.explorer_dock.setVisible(self.declaration.steerable)
        if self.declaration.steerable or self.translate_dock.wants_weights():
            self.bridge.watch_generator(True)
        self.form.set_running(True, self.declaration.controls)
        self.statusBar().showMessage(f"Run folder: {run_dir}", 8000)

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

    def roll_back(self):
        self.bridge.rollback()

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

    def save_interpolation(self, frames: list, path: Path):
        self.explorer_dock.save_interpolation(frames, path)

    # -- engine events --------------------------------------------------------------------------
    def on_started(self, event):
        self.status.close_download_dialog()
        self.status.device_label.setText(event.device)
        self.status.show_phase(event.phase)
        self.step = event.step
        self._declare(event.declaration)
        self.form.set_running(True, event.declaration.controls)
        self._update_actions()

    def on_metrics(self, metrics: list):
        self.curves.add_metrics(metrics)
        train = [m for m in metrics if m.group == "train"]
        if train:
            self.step = train[-1].step
            self.status.show_metrics(train[-1], self.clock.elapsed() if self.clock.isValid() else 0)

    def on_param_changed(self, event):
        self.config.set(event.name, event.new, check=False)
        self.form.set_value(resolve_key(event.name, self.config), event.new)
        self.form.refresh_visibility()
        self.curves.add_marker(event.step, marker_text(event.name, event.old, event.new))

    def on_phase_changed(self, event):
        self.status.show_phase(event.new)
        self.curves.add_marker(event.step, marker_text("phase", event.old, event.new))

    def on_paused(self, event):
        self._update_actions()
        if event.reason:  # the engine paused the run (NaN or Inf): say so, offer the last good checkpoint
            self._show_box(QMessageBox.Warning, event.reason.split(";")[0] + ".", event.reason,
                           [("Roll back", self.bridge.rollback)])

    def on_checkpointed(self, event):
        self.last_checkpoint = Path(event.path)
        if self._fork_requested:
            self._fork_requested = False
            self.resume_from = self.last_checkpoint
            self.fork_parent = self.run_dir
            self.bridge.stop(save=False)
        self.exporter.checkpointed(self.last_checkpoint)
        self.translate_dock.checkpointed(self.last_checkpoint, self.following.active)

    def on_rejected(self, why: str):
        self.statusBar().showMessage(why, 10000)
        self.form.set_config(self.config)
        self._drop_pending(why)  # a refused SaveNow: no checkpoint comes for the fork or export that waited

    def _drop_pending(self, why: str):
        """Forget a fork or an export waiting for a checkpoint that will not come (refused, or the run ended),
        so a later periodic checkpoint does not stop the run or export unasked."""
        self._fork_requested = False
        self.exporter.cancel(why)

    def apply_theme(self, dark: bool):
        """Light or dark, for the widgets and the plots; remembered between launches."""
        apply_palette(QApplication.instance(), dark)
        self.curves.set_dark(dark)
        self.samples.set_dark(dark)
        self.settings.setValue("theme", "dark" if dark else "light")

    def on_finished(self, event):
        self._drop_pending(f"the run ended (step {event.step}) before it saved the checkpoint the export needed.")
        self.status.close_download_dialog()
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
        self._drop_pending("the run failed before it saved the checkpoint the export needed.")
        checkpoint = latest_checkpoint(self.run_dir) if self.run_dir else None
        restart = [("Restart from last checkpoint", lambda: self._restart_from(checkpoint))] if checkpoint else []
        self._show_box(QMessageBox.Critical, event.message, event.traceback, restart)

    def _restart_from(self, checkpoint: Path):
        self.resume_from = checkpoint
        self.fork_parent = None
        self.start()

    def _show_box(self, icon, text: str, details: str = "", buttons=()):
        self.last_message_box = message_box(self, icon, text, details, buttons)
        self.last_message_box.open()

    def show_about(self):
        self._show_box(QMessageBox.Information, about_text())

    def show_error(self, text: str, details: str = ""):
        self._show_box(QMessageBox.Warning, text, details)

    def _update_actions(self):
        update_actions(self.named_actions, self.bridge.running, self.bridge.is_paused)
        self.browser.set_enabled(not self.bridge.running)

    # -- open / export -------------------------------------------------------------------------------
    def open_dialog(self):
        if self.bridge.running and not self.following.active:
            self.statusBar().showMessage("Stop the run before opening another.", 8000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(runs_dir()))
        if folder:
            self.open_run(Path(folder))

    def open_run(self, run_dir: Path) -> bool:
        """Restore a run (studio.opening): read first, then switch; Start continues it."""
        opened = open_run(self, run_dir)
        if opened:
            self.translate_dock.load_checkpoint(self.resume_from)
        return opened

    def export_dialog(self):
        self.exporter.ask(self, self.config.name)

    def duplicates_dialog(self):
        from studio.duplicates import DuplicatesDialog  # the birthday-paradox test of the run's samples
        DuplicatesDialog.show_for(self)

    def export(self, kind: str, path: Path, count: int = 64, seed: int = 0, scale: int = 1):
        """Write an export; slow kinds run off the main thread and end in exportDone / exportFailed."""
        self.exporter.export(kind, path, count, seed, scale)

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event):
        if self.bridge.running:
            policy = self.close_policy or ask_to_save(self)
            if policy is None:
                event.ignore()
                return
            self.bridge.stop(save=policy == "save")
        self.bridge.join(60)  # also reaps a run that just finished and is still exiting
        self.exporter.join(60)
        self.explorer.close()
        self.translate_dock.panel.worker.close()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.sync()
        event.accept()

"""The translate panel, shown while the window's run (or opened checkpoint) declares `translation`: a picture or a
folder (Open, or dropped on the panel) read as `gan-studio translate` reads it (engine.translate); the first picture
is shown as read | its edge map or low-resolution version (input made from an ordinary picture) | its translation,
and a folder's pictures are counted. The model is the opened run's newest checkpoint, or the weights the running
trainer sends on sample steps: each new one translates the picture again, so the model is seen improving. Save…
writes every translation; the command line does the same from a terminal. Model work runs on the panel's worker
thread (the latent explorer's pattern: a condition, newest request wins, results through Qt signals)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QMenu, QPushButton, QVBoxLayout, QWidget)

from studio.explorer import ModelThread, to_pixmap

CLEAR = object()  # a source that drops the model
SETTINGS_KEY = "translate_folder"  # the folder last opened or saved into


@dataclass
class ModelInfo:
    """What the GUI needs to know of the worker's model (plain data; the GUI never touches the networks)."""
    family: str
    step: int
    directions: tuple
    transform: str  # "edge map", "low resolution", or "" (folder data)
    prepare_direction: str = ""  # the direction whose input the transform makes
    checkpoint: Path | None = None


@dataclass
class View:
    picture: np.ndarray  # the panels side by side, H x W x 3 uint8
    caption: str
    count: str  # "12 pictures; 2 skipped" for a folder, "" for one picture
    warning: str
    request: tuple


class TranslateWorker(ModelThread):
    """Owns the panel's Translator; one job at a time on its own thread: a new model first, then the newest
    view request, then saves in order."""

    modelReady = Signal(object)  # ModelInfo
    viewReady = Signal(object)  # View
    saved = Signal(object)  # engine.translate.Written
    failed = Signal(str)

    def __init__(self):
        super().__init__("gan-studio-translate")
        self._view: tuple | None = None  # (path, direction, prepare)
        self._dirty = False
        self._saves: list = []
        self._scan = None
        self.translator = None
        self.start()

    def show(self, path: Path, direction: str, prepare: bool) -> None:
        with self._condition:
            self._view, self._dirty = (Path(path), direction, prepare), True
            self._condition.notify()

    def save(self, path: Path, out: Path, direction: str, prepare: bool) -> None:
        with self._condition:
            self._saves.append((Path(path), Path(out), direction, prepare))
            self._condition.notify()

    def _ready(self) -> bool:
        return self._closing or self._source is not None or (
            self.translator is not None and ((self._dirty and self._view is not None) or bool(self._saves)))

    def _loop(self) -> None:
        from engine.translate import load_translator, translate_path
        while True:
            with self._condition:
                self._condition.wait_for(self._ready)
                if self._closing:
                    return
                source, self._source = self._source, None
                view = self._view if source is None and self._dirty else None
                self._dirty = self._dirty and view is None
                save = self._saves.pop(0) if source is None and view is None and self._saves else None
            try:
                if source is CLEAR:
                    self.translator, self._dirty = None, True
                elif source is not None:
                    self.translator, self._dirty = load_translator(source), True
                    self.modelReady.emit(self._info())
                elif view is not None:
                    self.viewReady.emit(self._render(*view))
                elif save is not None:
                    self.saved.emit(translate_path(self.translator, *save))
            except Exception as exc:  # shown to the person, never raised into Qt
                from engine.cli import USER_ERRORS
                self.failed.emit(str(exc) if isinstance(exc, USER_ERRORS) else f"Translating failed: {exc}")

    def _info(self) -> ModelInfo:
        t = self.translator
        return ModelInfo(t.family, t.step, t.directions, t.transform, t.prepare_direction, t.checkpoint)

    def _render(self, path: Path, direction: str, prepare: bool) -> View:
        from engine.translate import side_by_side, survey, translate_arrays
        t = self.translator
        t.check(direction, prepare)
        shape = t.read_shape(direction, prepare)
        if self._scan is None or self._scan.key != (path, shape):  # read once per input and size, to count
            self._scan = survey(path, shape)
        scan = self._scan
        prepared, outputs = translate_arrays(t, [scan.first], direction, prepare)
        tiles = [scan.first.transpose(1, 2, 0)] + ([prepared[0]] if prepare else []) + [outputs[0]]
        names = ["picture"] + ([t.transform] if prepare else []) + [f"{direction[0]} → {direction[-1]}"]
        caption = f"{scan.first_file.name}: {' | '.join(names)}  (step {t.step})"
        line = (f"{scan.count} picture{'s' * (scan.count != 1)} to translate" +
                (f"; {scan.skipped} skipped" if scan.skipped else "")) if scan.folder else ""
        return View(side_by_side(tiles), caption, line, scan.warning, (path, direction, prepare))


class TranslatePanel(QWidget):
    """Direction, "make the input from a picture", Open, the picture beside its translation, Save…, the command."""

    shown = Signal(object)  # the side-by-side picture now on screen (uint8 H x W x 3)
    savedTo = Signal(str)
    message = Signal(str)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.worker = TranslateWorker()
        self.worker.modelReady.connect(self._model_ready)
        self.worker.viewReady.connect(self._show)
        self.worker.saved.connect(self._saved)
        self.worker.failed.connect(self._failed)
        self.info: ModelInfo | None = None
        self.source: Path | None = None
        self.out: Path | None = None
        self.picture: np.ndarray | None = None
        self.setAcceptDrops(True)

        self.direction = QComboBox()
        self.direction.currentIndexChanged.connect(lambda _i: (self._update_prepare(), self._request()))
        self.prepare = QCheckBox("Make the input from a picture")
        self.prepare.toggled.connect(lambda _on: self._request())
        self.prepare.hide()
        open_button = QPushButton("Open image or folder…")
        menu = QMenu(open_button)
        menu.addAction("Image…", self.open_image_dialog)
        menu.addAction("Folder…", self.open_folder_dialog)
        open_button.setMenu(menu)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Write every translation as PNG (one per picture)")
        self.save_button.clicked.connect(self.save_dialog)
        self.save_button.setEnabled(False)
        self.image, self.caption, self.count = QLabel(), QLabel(), QLabel()
        for label in (self.image, self.caption, self.count):
            label.setWordWrap(True)
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setMinimumSize(256, 128)
        self.command = QLineEdit()
        self.command.setReadOnly(True)
        self.command.setToolTip("The same translations from the command line")
        row, buttons, layout = QHBoxLayout(), QHBoxLayout(), QVBoxLayout(self)
        for box, parts in ((row, (QLabel("direction"), self.direction)), (buttons, (open_button, self.save_button))):
            for part in parts:
                box.addWidget(part, part is self.direction)
        for part in (row, self.prepare, buttons, self.image, self.caption, self.count, self.command):
            (layout.addLayout if isinstance(part, QHBoxLayout) else layout.addWidget)(part, part is self.image)
        self._placeholder()
        self._update_command()

    # -- the model ------------------------------------------------------------------------------------------
    def set_directions(self, directions: tuple) -> None:
        """The directions the window's run declares (before its model is loaded)."""
        current = self.direction.currentText()
        self.direction.blockSignals(True)
        self.direction.clear()
        for d in directions:
            self.direction.addItem(f"{d[0]} → {d[-1]}", d)
        if self.direction.findData(current) >= 0:
            self.direction.setCurrentIndex(self.direction.findData(current))
        self.direction.blockSignals(False)
        self._update_prepare()

    def load(self, source) -> None:
        """A model: a checkpoint path or an events.GeneratorWeights (loaded on the worker)."""
        self.worker.load(source)

    def clear_model(self) -> None:
        if self.info is not None:
            self.worker.load(CLEAR)
        self.info, self.picture = None, None
        self.save_button.setEnabled(False)
        self._placeholder()
        self._update_prepare()
        self._update_command()

    def _model_ready(self, info: ModelInfo) -> None:
        self.info = info
        if tuple(self.direction.itemData(i) for i in range(self.direction.count())) != info.directions:
            self.set_directions(info.directions)
        self._update_prepare()
        self.save_button.setEnabled(self.source is not None)
        if self.source is None:
            self._placeholder()
        self._request()

    def _update_prepare(self) -> None:
        info, direction = self.info, self.current_direction()
        self.prepare.setVisible(bool(info and info.transform))
        if not info or not info.transform:
            return
        self.prepare.setText(f"Make the input from a picture ({info.transform})")
        wanted = info.prepare_direction
        self.prepare.setEnabled(direction == wanted)
        if direction != wanted:
            self.prepare.setChecked(False)
        from engine.translate import TRANSFORM_TIPS
        arrow = f"{wanted[0]} → {wanted[-1]}"
        self.prepare.setToolTip(
            f"Take the picture as an ordinary item and translate {TRANSFORM_TIPS[info.transform]}"
            if direction == wanted else f"The {info.transform} of a picture is what {arrow} takes; choose that "
            f"direction to use this" if wanted in info.directions else f"The {info.transform} of a picture is "
            f"what {arrow} takes, which this {info.family} model does not do; its inputs are items already")

    def current_direction(self) -> str:
        return self.direction.currentData() or "AtoB"

    # -- pictures -------------------------------------------------------------------------------------------
    def open_path(self, path) -> None:
        """Translate this picture or folder (the first picture shown, a folder's pictures counted)."""
        self.source = Path(path)
        self.out = None
        self.settings.setValue(SETTINGS_KEY, str(self.source if self.source.is_dir() else self.source.parent))
        self.count.setText("")
        self.save_button.setEnabled(self.info is not None)
        if self.info is None:
            self._placeholder()
        self._request()

    def _last_folder(self) -> str:
        return str(self.settings.value(SETTINGS_KEY, "") or Path.home())

    def open_image_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Translate a picture", self._last_folder(),
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;"
                                              "All files (*)")
        if name:
            self.open_path(name)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Translate a folder of pictures", self._last_folder())
        if folder:
            self.open_path(folder)

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.open_path(event.mimeData().urls()[0].toLocalFile())
        event.acceptProposedAction()

    def _request(self) -> None:
        self._update_command()
        if self.source is not None and self.info is not None:
            self.worker.show(self.source, self.current_direction(), self.prepare.isChecked())

    def _placeholder(self) -> None:
        self.caption.setText("")
        if self.info is None:
            self.image.setText("Start the run, or open one, to translate pictures with its model.")
        else:
            self.image.setText("Open a picture or a folder of pictures (or drop one here) to translate it.")

    def _show(self, view: View) -> None:
        if view.request != (self.source, self.current_direction(), self.prepare.isChecked()):
            return  # an answer to an earlier request; the newer one is on its way
        self.picture = view.picture
        self.image.setPixmap(to_pixmap(view.picture, max(256, self.image.width())))
        self.caption.setText(view.caption)
        if not self.count.text().startswith("Saved"):
            self.count.setText(view.count)
        self.count.setToolTip(view.warning)
        self.shown.emit(view.picture)

    def _failed(self, why: str) -> None:
        self.image.setText(why)
        self.message.emit(why)

    # -- saving ---------------------------------------------------------------------------------------------
    def save_dialog(self) -> None:
        if self.source is None or self.info is None:
            return
        if self.source.is_dir():
            out = QFileDialog.getExistingDirectory(self, "Save the translations into a folder", self._last_folder())
        else:
            default = str(Path(self._last_folder()) / f"{self.source.stem}-{self.current_direction()}.png")
            out, _ = QFileDialog.getSaveFileName(self, "Save the translation", default, "PNG (*.png)")
        if out:
            self.save_to(Path(out))

    def save_to(self, out: Path) -> None:
        """Write the translations of the open picture or folder into out (a folder, or a .png for one picture),
        on the worker thread; savedTo says where once written."""
        if self.source is None or self.info is None:
            return
        self.out = Path(out)
        self.settings.setValue(SETTINGS_KEY, str(self.out if self.out.suffix.lower() != ".png" else self.out.parent))
        self._update_command()
        self.count.setText(f"Saving into {self.out}…")
        self.worker.save(self.source, self.out, self.current_direction(), self.prepare.isChecked())

    def _saved(self, written) -> None:
        n = len(written.files)
        text = f"Saved {n} translation{'s' * (n != 1)} to {written.where}" + (
            f"; {written.skipped} skipped" if written.skipped else "")
        self.count.setText(text)
        self.count.setToolTip(written.warning)
        self.message.emit(text + (f" ({written.warning})" if written.warning else ""))
        self.savedTo.emit(str(written.where))

    def _update_command(self) -> None:
        ckpt = str(self.info.checkpoint) if self.info and self.info.checkpoint else "CKPT"
        args = [ckpt, str(self.source or "IN"), str(self.out or "OUT"), "--direction", self.current_direction()]
        self.command.setText("gan-studio translate " + shlex.join(args + (["--prepare"] if self.prepare.isChecked()
                                                                            else [])))


class TranslateDock(QDockWidget):
    """The panel in a dock of the window, shown while the window's run translates images (Ctrl+T toggles it)."""

    def __init__(self, window):
        super().__init__("Translate", window)
        self.setObjectName("translate-dock")
        self.main = window
        self.applies = False  # the window's run declares translation directions
        self.family: str | None = None
        self.panel = TranslatePanel(window.settings)
        self.panel.message.connect(lambda text: window.statusBar().showMessage(text, 10000))
        self.setWidget(self.panel)
        window.addDockWidget(Qt.RightDockWidgetArea, self)
        self.hide()
        self.visibilityChanged.connect(self._watch)
        self.toggle_action = QAction("Translate panel", window)
        self.toggle_action.setShortcut(QKeySequence("Ctrl+T"))
        self.toggle_action.setStatusTip("Show or hide the translate panel of an image-to-image run")
        self.toggle_action.triggered.connect(self.toggle)
        window.addAction(self.toggle_action)
        view = next((a.menu() for a in window.menuBar().actions() if a.text() == "&View"), None)
        if view is not None:
            view.addAction(self.toggle_action)

    def setVisible(self, visible: bool) -> None:  # never shown for a run that does not translate
        super().setVisible(visible and self.applies)

    def declare(self, declaration, config) -> None:
        """The window's run (or preset) changed or restated what it is: show the dock when it starts to
        translate, hide it when it stops; a model of another family is dropped."""
        translation, was = tuple(declaration.translation), self.applies
        self.applies = bool(translation)
        if config.algorithm != self.family or not self.applies:
            self.panel.clear_model()
        self.family = config.algorithm
        self.panel.set_directions(translation)
        if self.applies != was:
            self.setVisible(self.applies)

    def wants_weights(self) -> bool:
        return self.applies and not self.isHidden()

    def load_checkpoint(self, checkpoint) -> None:
        if self.applies and checkpoint is not None:
            self.panel.load(Path(checkpoint))

    def load_weights(self, event) -> None:
        if self.applies and event.config.get("algorithm") == self.family:
            self.panel.load(event)

    def checkpointed(self, checkpoint, followed: bool) -> None:
        """A run another process writes has no weights events: its new checkpoints are the model."""
        if followed:
            self.load_checkpoint(checkpoint)

    def toggle(self) -> None:
        if not self.applies:
            self.main.statusBar().showMessage("The translate panel is for image-to-image runs (pix2pix, CycleGAN, "
                                              "DistanceGAN, DTN, SRGAN); open or choose one of them.", 8000)
            return
        self.setVisible(self.isHidden())
        if not self.isHidden():
            self.raise_()

    def _watch(self, visible: bool) -> None:
        bridge = self.main.bridge
        if visible and self.applies and bridge.running:
            bridge.watch_generator(True)

"""Latent explorer: steer a generator's InfoGAN codes and class label by hand.

The explorer keeps its own sampling copy of the generator (from a checkpoint, or from the
weights the running trainer sends on sample steps), so the GUI never touches the training
models. Forward passes run on the explorer's worker thread; requests are debounced and only
the newest one is computed.
"""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QInputDialog,
                               QLabel, QListWidget, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from engine.config import ConfigError
from engine.latent import (LatentPoint, default_point, interpolate, load_bookmarks, render_point, save_bookmarks,
                           traversal_sheet)
from studio.explorer_stages import StageControls, stage_names

SLIDER_STEPS = 200
DEBOUNCE_MS = 10


class ModelThread(QObject):
    """A model kept off the GUI thread: `load` hands the thread a new source, `close` ends it. A subclass sets
    its own fields, then calls `start`; its `_loop` waits on `_condition` and returns once `_closing` is set."""

    def __init__(self, name: str):
        super().__init__()
        self._condition = threading.Condition()
        self._source = None
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        raise NotImplementedError

    def load(self, source) -> None:
        """source: a checkpoint path, a checkpoint state dict or an engine GeneratorWeights event (the
        translate panel's: or CLEAR)."""
        with self._condition:
            self._source = source
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(30)


class ExplorerWorker(ModelThread):
    """Owns the explorer's sampler; runs one job at a time on its own thread, newest request wins."""

    pictureReady = Signal(object, object, float)  # picture, point, time the request was made
    sheetReady = Signal(object)
    framesReady = Signal(object)
    samplerReady = Signal(object)  # the engine.sampler.Sampler (config, shapes) after a load
    failed = Signal(str)

    def __init__(self):
        super().__init__("gan-studio-explorer")
        self._request = None  # (point, t)
        self._jobs: list = []
        self.sampler = None
        self.start()

    def request(self, point: LatentPoint) -> None:
        with self._condition:
            self._request = (point, time.perf_counter())
            self._condition.notify()

    def job(self, kind: str, *args) -> None:
        with self._condition:
            self._jobs.append((kind, args))
            self._condition.notify()

    def _loop(self) -> None:
        from engine import events as ev
        from engine.sampler import load_sampler, sampler_from_weights
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._closing or self._source is not None
                                         or self._request is not None or self._jobs)
                if self._closing:
                    return
                source, self._source = self._source, None
                request = None
                if source is None and self._request is not None and self.sampler is not None:
                    request, self._request = self._request, None
                job = self._jobs.pop(0) if source is None and request is None and self._jobs and self.sampler else None
                if source is None and request is None and job is None and self.sampler is None:
                    self._request, self._jobs = None, []
                    continue
            try:
                if source is not None:
                    if isinstance(source, ev.GeneratorWeights):
                        self.sampler = sampler_from_weights(source)
                    else:
                        self.sampler = load_sampler(source)
                    self.sampler.stage_names = stage_names(self.sampler)
                    self.samplerReady.emit(self.sampler)
                elif request is not None:
                    point, asked = request
                    self.pictureReady.emit(render_point(self.sampler, point), point, asked)
                elif job is not None:
                    kind, args = job
                    if kind == "sheet":
                        self.sheetReady.emit(traversal_sheet(self.sampler, *args))
                    elif kind == "frames":
                        self.framesReady.emit(interpolate(self.sampler, *args))
            except Exception as exc:  # shown to the person, never raised into Qt
                self.failed.emit(f"The latent explorer could not draw: {exc}")


def to_pixmap(picture: np.ndarray, size: int = 256) -> QPixmap:
    h, w = picture.shape[:2]
    data = np.ascontiguousarray(picture)
    image = QImage(data.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)


class ExplorerPanel(StageControls, QWidget):
    """Sliders for continuous codes, selectors for categorical codes and the class, a seed, bookmarks."""

    pictureShown = Signal(object)  # the picture (uint8 H x W x 3) now on screen
    sheetShown = Signal(object)
    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = ExplorerWorker()
        self.worker.pictureReady.connect(self._show_picture)
        self.worker.samplerReady.connect(self._build_controls)
        self.worker.sheetReady.connect(self._show_sheet)
        self.worker.failed.connect(self.message)
        self.sampler = None
        self.point = LatentPoint()
        self.picture: np.ndarray | None = None
        self.sheet: np.ndarray | None = None
        self.run_dir: Path | None = None
        self.checkpoint: Path | None = None
        self.bookmarks: list[LatentPoint] = []
        self.latencies_ms: list[float] = []
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(lambda: self.worker.request(self._copy_point()))

        self.image = QLabel("Open a run or start one with InfoGAN codes or labels to steer it here.")
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setMinimumSize(256, 256)
        self.image.setWordWrap(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("The noise z comes from this seed")
        self.seed.valueChanged.connect(self._seed_changed)
        reroll = QPushButton("Reroll")
        reroll.setToolTip("A new random z, same codes")
        reroll.clicked.connect(lambda: self.seed.setValue(int(np.random.default_rng().integers(0, 2 ** 31 - 1))))
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("z seed"))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(reroll)
        self.controls = QWidget()
        self.controls_layout = QGridLayout(self.controls)
        self.controls_layout.setContentsMargins(0, 0, 0, 0)
        self.sheet_code = QComboBox()
        sheet_button = QPushButton("Traversal sheet")
        sheet_button.clicked.connect(self.make_sheet)
        bookmark_button = QPushButton("Bookmark…")
        bookmark_button.clicked.connect(lambda: self.add_bookmark())
        self.bookmark_list = QListWidget()
        self.bookmark_list.setSelectionMode(QListWidget.ExtendedSelection)
        self.bookmark_list.itemDoubleClicked.connect(lambda item: self.go_to(self.bookmark_list.row(item)))
        self.command = QLabel()
        self.command.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.command.setWordWrap(True)
        self.command.setToolTip("The same picture from the command line")
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("sweep"))
        buttons.addWidget(self.sheet_code)
        buttons.addWidget(sheet_button)
        buttons.addWidget(bookmark_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addLayout(seed_row)
        layout.addWidget(self.controls)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("bookmarks (double-click to go back; select two to interpolate)"))
        layout.addWidget(self.bookmark_list)
        layout.addWidget(self.command)
        self.sliders: dict[int, tuple[QSlider, QDoubleSpinBox, QDoubleSpinBox, QLabel]] = {}
        self.category_boxes: dict[int, QSpinBox] = {}
        self.class_box: QComboBox | None = None
        self.stage_box = self.text_box = None  # a staged model's stage selector, a text model's description

    # -- sources ---------------------------------------------------------------------------
    def load_checkpoint(self, checkpoint: Path, run_dir: Path | None = None) -> None:
        self.checkpoint = Path(checkpoint)
        self.set_run_dir(run_dir or self.checkpoint.parent.parent)
        self.worker.load(self.checkpoint)

    def load_weights(self, event, run_dir: Path | None = None) -> None:
        if run_dir is not None and run_dir != self.run_dir:
            self.set_run_dir(run_dir)
        self.checkpoint = None
        self.worker.load(event)

    def set_run_dir(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.bookmarks = load_bookmarks(self.run_dir, warn=self.message.emit)
        self._refresh_bookmarks()

    @property
    def steerable(self) -> bool:
        return self.sampler is not None and bool(self.sliders or self.category_boxes or self.class_box
                                                 or self.stage_box or self.text_box)

    # -- controls --------------------------------------------------------------------------------
    def _build_controls(self, sampler) -> None:
        first = self.sampler is None or sampler.config.to_dict()["model"] != self.sampler.config.to_dict()["model"]
        self.sampler = sampler
        if first:
            self._clear_controls()
            m = sampler.config.model
            self.point = default_point(sampler, self.seed.value())
            grid = self.controls_layout
            row = 0
            for i in range(m.info_continuous):
                slider = QSlider(Qt.Horizontal)
                slider.setRange(0, SLIDER_STEPS)
                slider.setObjectName(f"code{i}")
                low, high = QDoubleSpinBox(), QDoubleSpinBox()
                for box, value in ((low, -2.0), (high, 2.0)):
                    box.setRange(-10.0, 10.0)
                    box.setSingleStep(0.5)
                    box.setValue(value)
                    box.setToolTip("Range of the slider")
                    box.valueChanged.connect(lambda _v, i=i: self._slider_moved(i))
                value_label = QLabel("0")
                value_label.setMinimumWidth(40)
                slider.setValue(SLIDER_STEPS // 2)
                slider.valueChanged.connect(lambda _v, i=i: self._slider_moved(i))
                grid.addWidget(QLabel(f"c{i}"), row, 0)
                grid.addWidget(low, row, 1)
                grid.addWidget(slider, row, 2)
                grid.addWidget(high, row, 3)
                grid.addWidget(value_label, row, 4)
                self.sliders[i] = (slider, low, high, value_label)
                self.sheet_code.addItem(f"c{i}", i)
                row += 1
            for i, n in enumerate(m.info_categorical):
                box = QSpinBox()
                box.setRange(0, n - 1)
                box.setObjectName(f"cat{i}")
                box.valueChanged.connect(lambda v, i=i: self._category_changed(i, v))
                grid.addWidget(QLabel(f"category c{i}"), row, 0)
                grid.addWidget(box, row, 1, 1, 4)
                self.category_boxes[i] = box
                row += 1
            if getattr(sampler.algorithm, "g_conditioned", False):
                self.class_box = QComboBox()
                names = getattr(sampler.dataset, "class_names", ()) or ()
                for label in range(sampler.num_classes):
                    self.class_box.addItem(names[label] if label < len(names) else str(label), label)
                self.class_box.currentIndexChanged.connect(self._class_changed)
                grid.addWidget(QLabel("class"), row, 0)
                grid.addWidget(self.class_box, row, 1, 1, 4)
                row += 1
            self._add_stage_controls(sampler, row)
        self.redraw()

    def _clear_controls(self) -> None:
        while self.controls_layout.count():
            item = self.controls_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.sliders.clear()
        self.category_boxes.clear()
        self.class_box = self.stage_box = self.text_box = None
        self.sheet_code.clear()

    def slider_value(self, i: int) -> float:
        slider, low, high, _ = self.sliders[i]
        # rounded so the command line (which prints the value) rebuilds exactly the same input
        return round(low.value() + (high.value() - low.value()) * slider.value() / SLIDER_STEPS, 4)

    def set_code(self, i: int, value: float) -> None:
        slider, low, high, _ = self.sliders[i]
        span = high.value() - low.value()
        slider.setValue(int(round((value - low.value()) / span * SLIDER_STEPS)) if span else 0)

    def _slider_moved(self, i: int) -> None:
        value = self.slider_value(i)
        self.point.continuous[i] = value
        self.sliders[i][3].setText(f"{value:.2f}")
        self.redraw()

    def _category_changed(self, i: int, value: int) -> None:
        self.point.categorical[i] = value
        self.redraw()

    def _class_changed(self, index: int) -> None:
        self.point.label = self.class_box.itemData(index)
        self.redraw()

    def _seed_changed(self, seed: int) -> None:
        self.point.seed = seed
        self.redraw()

    def _copy_point(self) -> LatentPoint:
        p = self.point
        return LatentPoint(p.seed, dict(p.continuous), dict(p.categorical), p.label, p.name, p.text, p.stage)

    def redraw(self) -> None:
        if self.sampler is not None:
            self._debounce.start()
            self._update_command()

    def _update_command(self) -> None:
        source = str(self.checkpoint) if self.checkpoint else "CKPT"
        self.command.setText("gan-studio sample " + shlex.join([source] + self.point.cli_args() + ["--out", "x.png"]))

    def _show_picture(self, picture, point, asked: float) -> None:
        self.latencies_ms.append((time.perf_counter() - asked) * 1000)
        self.picture = picture
        self.image.setPixmap(to_pixmap(picture, max(128, min(self.image.width(), self.image.height()))))
        self.pictureShown.emit(picture)

    # -- sheets, bookmarks, interpolation -----------------------------------------------------------------
    def make_sheet(self) -> None:
        if self.sampler is None:
            return
        code = self.sheet_code.currentData() if self.sheet_code.count() else 0
        low, high = (-2.0, 2.0)
        if code is not None and code in self.sliders:
            low, high = self.sliders[code][1].value(), self.sliders[code][2].value()
        self.worker.job("sheet", self._copy_point(), code or 0, 10, low, high)

    def _show_sheet(self, sheet) -> None:
        self.sheet = sheet
        self.sheetShown.emit(sheet)

    def add_bookmark(self, name: str | None = None) -> LatentPoint | None:
        if name is None:
            name, ok = QInputDialog.getText(self, "Bookmark", "Name of this latent point:")
            if not ok or not name:
                return None
        point = self._copy_point()
        point.name = name
        self.bookmarks.append(point)
        if self.run_dir is not None:
            try:
                save_bookmarks(self.run_dir, self.bookmarks)
            except (ConfigError, OSError) as exc:  # a read-only folder, a damaged file kept aside
                self.message.emit(f"The bookmark was not saved: {exc}")
        self._refresh_bookmarks()
        return point

    def _refresh_bookmarks(self) -> None:
        self.bookmark_list.clear()
        for point in self.bookmarks:
            self.bookmark_list.addItem(point.name or f"seed {point.seed}")

    def go_to(self, index: int) -> None:
        point = self.bookmarks[index]
        self.seed.blockSignals(True)
        self.seed.setValue(point.seed)
        self.seed.blockSignals(False)
        self.point = LatentPoint(point.seed, dict(point.continuous), dict(point.categorical), point.label, "",
                                 point.text, point.stage)
        for box, value in ((self.text_box, point.text), (self.stage_box, point.stage)):
            if box is not None:
                box.blockSignals(True)
                box.setText(value) if box is self.text_box else box.setCurrentIndex(max(0, box.findData(value)))
                box.blockSignals(False)
        for i, value in point.continuous.items():
            if i in self.sliders:
                self.sliders[i][0].blockSignals(True)
                self.set_code(i, value)
                self.sliders[i][0].blockSignals(False)
                self.sliders[i][3].setText(f"{value:.2f}")
        for i, value in point.categorical.items():
            if i in self.category_boxes:
                self.category_boxes[i].blockSignals(True)
                self.category_boxes[i].setValue(int(value))
                self.category_boxes[i].blockSignals(False)
        if self.class_box is not None and point.label is not None:
            self.class_box.blockSignals(True)
            self.class_box.setCurrentIndex(self.class_box.findData(point.label))
            self.class_box.blockSignals(False)
        self.redraw()

    def interpolate_selected(self, frames: int = 24) -> bool:
        rows = sorted(index.row() for index in self.bookmark_list.selectedIndexes())
        if len(rows) != 2 or self.sampler is None:
            self.message.emit("Select two bookmarks to interpolate between.")
            return False
        self.worker.job("frames", self.bookmarks[rows[0]], self.bookmarks[rows[1]], frames)
        return True

    def close(self) -> bool:
        self.worker.close()
        return super().close()

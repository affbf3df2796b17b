"""Tools ▸ Duplicates…: the birthday-paradox support test (engine.metrics.birthday) on the window's run.

It samples from the run's newest checkpoint (while the run trains, from one it asks the run to save first), works
on its own thread, and shows the closest pairs side by side, the verdict and the support estimate.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from studio.runs import latest_checkpoint


def pixmap(picture: np.ndarray) -> QPixmap:
    picture = np.ascontiguousarray(picture)
    h, w = picture.shape[:2]
    return QPixmap.fromImage(QImage(picture.data, w, h, 3 * w, QImage.Format_RGB888).copy())


class Worker(QObject):
    """The test on a thread; it reports through signals (queued to the GUI thread) and never raises into Qt."""

    progressed = Signal(str, float)
    done = Signal(object, list)  # BirthdayResult, [(picture, picture, label)]
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, checkpoint: Path, s: int, scan: bool, seed: int = 0) -> None:
        self.cancel = threading.Event()  # each run its own: a cancelled one stays cancelled
        self.thread = threading.Thread(target=self._work, args=(checkpoint, s, scan, seed, self.cancel),
                                       name="gan-studio-duplicates", daemon=True)
        self.thread.start()

    def _work(self, checkpoint: Path, s: int, scan: bool, seed: int, cancel: threading.Event) -> None:
        from engine.metrics.birthday import CheckpointTest, pair_rows
        say = self._emit(self.progressed, cancel)
        try:
            test = CheckpointTest(checkpoint, progress=say)
            result = test.run(s, seed=seed, scan=scan, progress=say, cancel=cancel.is_set)
            rows = pair_rows(result)
        except InterruptedError:
            return
        except Exception as exc:  # one sentence for the person; the trace for whoever reads the terminal
            traceback.print_exc()
            self._emit(self.failed, cancel)(one_sentence(exc))
        else:
            self._emit(self.done, cancel)(result, rows)

    @staticmethod
    def _emit(signal, cancel: threading.Event):
        def emit(*args):
            if not cancel.is_set():
                try:
                    signal.emit(*args)
                except RuntimeError:  # the dialog is gone
                    pass
        return emit

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def one_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text[0].upper() + text[1:]
    return f"The test failed: {text}" if not text.endswith(".") else text


class DuplicatesDialog(QDialog):
    """s, Run, progress; then the closest pairs (two pictures a row, distance and space), verdict, estimate."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.setWindowTitle("Duplicates: the birthday-paradox test")
        self.resize(640, 720)
        self.waiting = False  # for the checkpoint a training run was asked to save
        self.result = None
        self.worker = Worker(self)
        self.worker.progressed.connect(self.show_progress)
        self.worker.done.connect(self.show_result)
        self.worker.failed.connect(self.show_error)
        self.destroyed.connect(lambda *_, worker=self.worker: worker.cancel.set())

        layout = QVBoxLayout(self)
        intro = QLabel("Draws s samples and shows the closest pairs so you can judge whether they repeat. If batches "
                       "of s samples hold a duplicate half the time, the generator's support is about s² "
                       "(Arora and Zhang). Duplicates are pairs closer than real images ever are.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.s = QSpinBox()
        self.s.setRange(2, 5000)
        self.s.setValue(400)
        self.s.setToolTip("Samples in the batch searched for duplicates")
        form.addRow("samples s", self.s)
        self.scan = QCheckBox("estimate the support: batches of growing size up to s, 5 each")
        self.scan.setChecked(True)
        form.addRow(self.scan)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        row.addWidget(self.run_button)
        row.addWidget(self.progress, 1)
        layout.addLayout(row)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.verdict)
        self.status = QLabel("")  # progress, an error, or the heading of the pairs
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.pairs = QWidget()
        self.grid = QGridLayout(self.pairs)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.pairs)
        layout.addWidget(scroll, 1)
        bridge = window.bridge
        bridge.checkpointed.connect(self.on_checkpointed)
        bridge.rejected.connect(lambda why: self.give_up(f"The run did not save a checkpoint: {why}"))
        bridge.finished.connect(lambda e: self.give_up("The run ended before it saved the checkpoint the test "
                                                       "needed; press Run again."))

    @classmethod
    def show_for(cls, window) -> "DuplicatesDialog":
        dialog = getattr(window, "duplicates", None)
        if dialog is None:
            dialog = window.duplicates = cls(window)
        if not dialog.worker.busy() and not dialog.waiting:
            dialog._busy(False)  # closed during a run: that run was cancelled
        dialog.show()
        dialog.raise_()
        return dialog

    # -- running -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        run_dir = self.window.run_dir
        if run_dir is None:
            self.show_error("Open a run folder or start a run first: the test samples from its newest checkpoint.")
            return
        self._busy(True)
        if self.window.bridge.running:
            self.waiting = True
            self.status.setText("Asking the run to save a checkpoint…")
            self.window.bridge.save_now()
            return
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            self.show_error("This run has no checkpoint yet; train for a moment first.")
            return
        self.go(checkpoint)

    def on_checkpointed(self, event) -> None:
        if self.waiting:
            self.waiting = False
            self.go(Path(event.path))

    def give_up(self, why: str) -> None:
        if self.waiting:
            self.waiting = False
            self.show_error(why)

    def go(self, checkpoint: Path) -> None:
        self._busy(True)
        self.status.setText(f"Sampling from {checkpoint.name}…")
        self.worker.start(checkpoint, self.s.value(), self.scan.isChecked())

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.s.setEnabled(not busy)
        self.scan.setEnabled(not busy)
        if busy:
            self.progress.setValue(0)
            self.status.setStyleSheet("")
            self.verdict.setText("")

    # -- showing -----------------------------------------------------------------------------------------------
    def show_progress(self, text: str, fraction: float) -> None:
        self.status.setText(text)
        self.progress.setValue(int(100 * fraction))

    def show_error(self, text: str) -> None:
        self._busy(False)
        self.status.setStyleSheet("color: #c0392b")
        self.status.setText(text)

    def show_result(self, result, rows: list) -> None:
        self._busy(False)
        self.result = result
        self.progress.setValue(100)
        lines = [f"<b>{result.verdict()}</b>"]
        if result.support is not None:
            lines.append(result.support.sentence())
        lines += [f"<small>Rule: {result.calibration.describe()}.</small>"] + [f"<small>{n}</small>"
                                                                           for n in result.notes]
        self.verdict.setText("<br>".join(lines))
        self.status.setText(f"Closest pairs of {result.s} samples (most alike first, in each space):")
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for r, (a, b, label) in enumerate(rows):
            self.grid.addWidget(self._picture(a), r, 0)
            self.grid.addWidget(self._picture(b), r, 1)
            text = QLabel(label)
            if "DUPLICATE" in label:
                text.setStyleSheet("color: #c0392b")
            self.grid.addWidget(text, r, 2)
        self.grid.setColumnStretch(2, 1)

    @staticmethod
    def _picture(picture: np.ndarray) -> QLabel:
        label = QLabel()
        label.setPixmap(pixmap(picture))
        return label

    def closeEvent(self, event) -> None:
        self.worker.cancel.set()  # a scan in progress stops at its next batch
        super().closeEvent(event)

    def join(self, timeout: float) -> None:
        self.worker.join(timeout)

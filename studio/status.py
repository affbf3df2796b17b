"""The status bar's permanent parts: step, phase, speed, device, elapsed time, and progress of slow tasks."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QProgressBar, QProgressDialog


class RunStatus:
    """Labels in a window's status bar, and a dialog for downloads that the person can stop."""

    def __init__(self, window, stop_run):
        self.window = window
        self.stop_run = stop_run
        self.step_label = QLabel("step 0")
        self.phase_label = QLabel("")
        self.phase_label.setToolTip("The training phase the algorithm is in")
        self.speed_label = QLabel("")
        self.device_label = QLabel("")
        self.elapsed_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.hide()
        self.download_dialog: QProgressDialog | None = None
        for widget in (self.progress_bar, self.step_label, self.phase_label, self.speed_label, self.device_label,
                       self.elapsed_label):
            window.statusBar().addPermanentWidget(widget)

    def show_metrics(self, last, elapsed_ms: int) -> None:
        """The newest training report: its step, phase (when the algorithm has phases) and speed."""
        self.step_label.setText(f"step {last.step}")
        self.show_phase(getattr(last, "phase", ""))
        if "steps_per_sec" in last.values:
            self.speed_label.setText(f"{last.values['steps_per_sec']:.0f} steps/s")
        seconds = int(elapsed_ms / 1000)
        self.elapsed_label.setText(time.strftime("%H:%M:%S", time.gmtime(seconds)))

    def show_phase(self, phase: str) -> None:
        self.phase_label.setText(f"phase: {phase}" if phase else "")
        self.phase_label.setVisible(bool(phase))

    def show_progress(self, event) -> None:
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

    def _download_progress(self, event) -> None:
        if self.download_dialog is None:
            self.download_dialog = QProgressDialog(self.window)
            self.download_dialog.setWindowTitle("Downloading data")
            self.download_dialog.setCancelButtonText("Stop the run")
            self.download_dialog.canceled.connect(self.stop_run)
            self.download_dialog.setMinimumDuration(0)
        dialog = self.download_dialog
        dialog.setLabelText(f"{event.task} ({event.done >> 20} of {event.total >> 20} MiB)"
                            if event.total else f"{event.task} ({event.done >> 20} MiB)")
        dialog.setRange(0, event.total if event.total else 0)
        dialog.setValue(min(event.done, event.total) if event.total else 0)
        dialog.show()

    def close_download_dialog(self) -> None:
        if self.download_dialog is not None:
            self.download_dialog.hide()

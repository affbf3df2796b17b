"""Play buttons under a speech model's preview: one per held-out clip and panel (noisy | enhanced | clean).

The clips are those of the snapshot on show: the newest Samples while the slider is at its end, else the .npz
the run saved beside the scrubbed snapshot's picture (read when a button is pressed). A clip is written to a WAV
in a temporary folder and played with Qt Multimedia where PySide6 has it, else handed to the system's player.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QWidget

from engine.speech.snapshot import load_audio_snapshot
from engine.speech.wav import write_wav


def _qt_player():
    """A QMediaPlayer with an audio output, or None where PySide6 lacks Qt Multimedia (PySide6-Essentials)."""
    try:
        from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
    except ImportError:
        return None
    player = QMediaPlayer()
    output = QAudioOutput()
    player.setAudioOutput(output)
    player._output = output  # kept alive with the player
    return player


class AudioBar(QWidget):
    """A grid of ▶ buttons; `played` says which file was handed to the player (the tests listen to it)."""

    played = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.audio: np.ndarray | None = None  # N x K x T, the newest snapshot's clips
        self.rate = 0
        self.labels: tuple = ()
        self.panels: tuple = ()
        self.snapshot_file: Path | None = None  # set while an earlier snapshot is on show
        self.folder = Path(tempfile.mkdtemp(prefix="gan-studio-audio-"))
        self.player = None
        self.open_url = QDesktopServices.openUrl  # the system player's way in, replaceable in tests
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 2, 0, 2)
        self.grid.setHorizontalSpacing(4)
        self.grid.setVerticalSpacing(2)
        self.buttons: list[list[QPushButton]] = []
        self.setVisible(False)

    def show_clips(self, audio: np.ndarray, rate: int, labels: tuple, panels: tuple) -> None:
        """The newest snapshot's clips (the slider is at its end)."""
        self.audio, self.rate, self.snapshot_file = audio, rate, None
        self._layout(len(audio), tuple(labels), tuple(panels))

    def show_snapshot(self, npz: Path) -> None:
        """An earlier snapshot's clips, played from the .npz beside its picture (a reopened run's too); the
        buttons are disabled while the snapshot on show kept no audio."""
        try:
            audio, _, labels = load_audio_snapshot(npz)
        except (OSError, ValueError, KeyError):
            self.snapshot_file = npz  # nothing to play for this snapshot
            self._enable(False)
            return
        self.snapshot_file = npz
        self._layout(len(audio), labels, self.panels or ("noisy", "enhanced", "clean"))

    def hide_clips(self) -> None:
        self.audio = None
        self.setVisible(False)

    def _layout(self, n: int, labels: tuple, panels: tuple) -> None:
        if (n, labels, panels) != (len(self.buttons), self.labels, self.panels):
            while self.grid.count():
                item = self.grid.takeAt(0)
                if item.widget():
                    item.widget().deleteLater()
            self.buttons = []
            for i in range(n):
                self.grid.addWidget(QLabel(labels[i] if i < len(labels) else f"clip {i + 1}"), i, 0)
                row = []
                for k, panel in enumerate(panels):
                    button = QPushButton(f"▶ {panel}")
                    button.setToolTip(f"Play the {panel} version of clip {i + 1} of the snapshot on show")
                    button.clicked.connect(lambda _=False, i=i, k=k: self.play(i, k))
                    self.grid.addWidget(button, i, k + 1)
                    row.append(button)
                self.buttons.append(row)
            self.labels, self.panels = labels, panels
        self._enable(True)
        self.setVisible(True)

    def _enable(self, enabled: bool) -> None:
        for row in self.buttons:
            for button in row:
                button.setEnabled(enabled)

    def clip(self, i: int, k: int) -> tuple[np.ndarray, int] | None:
        if self.snapshot_file is not None:
            try:
                audio, rate, _ = load_audio_snapshot(self.snapshot_file)
            except (OSError, ValueError, KeyError):
                return None
            return (audio[i, k], rate) if i < len(audio) and k < audio.shape[1] else None
        if self.audio is None or i >= len(self.audio):
            return None
        return self.audio[i, k], self.rate

    def play(self, i: int, k: int) -> Path | None:
        found = self.clip(i, k)
        if found is None:
            return None
        samples, rate = found
        name = self.panels[k] if k < len(self.panels) else f"panel{k}"
        path = self.folder / f"clip{i + 1}_{name}.wav"
        write_wav(path, samples, rate)
        if self.player is None:
            self.player = _qt_player() or False
        url = QUrl.fromLocalFile(str(path))
        if self.player:
            self.player.stop()
            self.player.setSource(QUrl())
            self.player.setSource(url)
            self.player.play()
        else:
            self.open_url(url)
        self.played.emit(str(path))
        return path

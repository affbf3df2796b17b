"""The one adapter between the engine and Qt.

The bridge owns the worker thread that runs a Trainer. The trainer's `emit` only appends
to buffers under a lock (cheap, any thread); a GUI timer at ~30 Hz drains the buffers on
the main thread and turns them into Qt signals: scalars accumulate, the newest sample
snapshot wins. Commands go the other way onto the trainer's queue. The GUI never
touches a model or an optimiser.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine import commands as cmd
from engine import events as ev
from engine.config import Config

TICK_MS = 33


class EngineBridge(QObject):
    started = Signal(object)  # ev.Started
    metricsArrived = Signal(list)  # [ev.Metrics, ...] in step order
    samplesArrived = Signal(object)  # newest ev.Samples
    generatorWeights = Signal(object)  # newest ev.GeneratorWeights (for the latent explorer)
    paramChanged = Signal(object)  # ev.ParamChanged
    paused = Signal(object)  # ev.Paused
    resumed = Signal(object)
    checkpointed = Signal(object)
    rejected = Signal(str)
    warning = Signal(str)
    progress = Signal(object)  # ev.Progress
    rolledBack = Signal(object)
    finished = Signal(object)  # ev.Finished
    failed = Signal(object)  # ev.Failed
    runningChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._metrics: list = []
        self._samples = None
        self._weights = None
        self._others: list = []
        self._thread: threading.Thread | None = None
        self._trainer = None
        self._pending: list = []  # commands sent before the trainer exists
        self.is_paused = False
        self.run_dir: Path | None = None
        self.device = ""
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    # -- worker side: called on the training thread -----------------------------------
    def _emit(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.Metrics):
                self._metrics.append(event)
            elif isinstance(event, ev.Samples):
                self._samples = event
            elif isinstance(event, ev.GeneratorWeights):
                self._weights = event
            else:
                self._others.append(event)

    def _work(self, config: Config, run_dir: Path, resume) -> None:
        from engine.trainer import Trainer
        try:
            trainer = Trainer(config, run_dir=run_dir, emit=self._emit, resume=resume)
        except Exception as exc:  # bad data, bad checkpoint: reported, never raised into Qt
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._emit(ev.Failed(first, traceback.format_exc()))
            self._emit(ev.Finished(0, "failed"))
            return
        with self._lock:
            self._trainer = trainer
            for command in self._pending:
                trainer.commands.put(command)
            self._pending.clear()
        trainer.run()

    # -- GUI side ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, config: Config, run_dir: Path, resume=None, paused: bool = False) -> None:
        if self.running:
            raise RuntimeError("a run is already going")
        self.run_dir = Path(run_dir)
        self.is_paused = paused
        self._trainer = None
        self._pending = [cmd.Pause()] if paused else []
        self._thread = threading.Thread(target=self._work, args=(config.copy(), self.run_dir, resume),
                                        name="gan-studio-trainer", daemon=True)
        self._thread.start()
        self._timer.start()
        self.runningChanged.emit(True)

    def send(self, command: cmd.Command) -> None:
        with self._lock:
            if self._trainer is not None:
                self._trainer.commands.put(command)
            elif self.running:
                self._pending.append(command)

    def pause(self):
        self.send(cmd.Pause())

    def resume(self):
        self.send(cmd.Resume())

    def step(self, n: int = 1):
        self.send(cmd.Step(n))

    def stop(self, save: bool = True):
        self.send(cmd.Stop(save=save))
        if self.is_paused:
            pass  # the paused trainer is blocked on its queue and wakes up for Stop

    def set(self, name: str, value):
        self.send(cmd.Set(name, value))

    def save_now(self):
        self.send(cmd.SaveNow())

    def sample_now(self):
        self.send(cmd.SampleNow())

    def rollback(self):
        self.send(cmd.Rollback())

    def watch_generator(self, on: bool = True):
        self.send(cmd.WatchGenerator(on))

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the worker to end (after stop()); True when no thread is left."""
        if self._thread is not None:
            self._thread.join(timeout)
        done = not self.running
        if done:
            self._tick()
        return done

    def _tick(self) -> None:
        with self._lock:
            metrics, self._metrics = self._metrics, []
            samples, self._samples = self._samples, None
            weights, self._weights = self._weights, None
            others, self._others = self._others, []
        for event in others:
            self._dispatch(event)
        if metrics:
            self.metricsArrived.emit(metrics)
        if samples is not None:
            self.samplesArrived.emit(samples)
        if weights is not None:
            self.generatorWeights.emit(weights)
        if not self.running and self._thread is not None:
            self._thread = None
            self._timer.stop()
            self.runningChanged.emit(False)

    def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.device = event.device
            self.started.emit(event)
        elif isinstance(event, ev.ParamChanged):
            self.paramChanged.emit(event)
        elif isinstance(event, ev.Paused):
            self.is_paused = True
            self.paused.emit(event)
        elif isinstance(event, ev.Resumed):
            self.is_paused = False
            self.resumed.emit(event)
        elif isinstance(event, ev.Checkpointed):
            self.checkpointed.emit(event)
        elif isinstance(event, ev.CommandRejected):
            self.rejected.emit(event.why)
        elif isinstance(event, ev.Warning):
            self.warning.emit(event.text)
        elif isinstance(event, ev.Progress):
            self.progress.emit(event)
        elif isinstance(event, ev.RolledBack):
            self.rolledBack.emit(event)
        elif isinstance(event, ev.Failed):
            self.failed.emit(event)
        elif isinstance(event, ev.Finished):
            self.finished.emit(event)

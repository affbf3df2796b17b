"""The one adapter between the engine and Qt.

The bridge owns the worker that runs a Trainer: a child process (engine.worker) read by one
reader thread here, so the training loop never competes with the window for the interpreter
lock (a thread did: bench/studio_overhead.py measured the window costing half of ring8's speed). The trainer's `emit` only appends
to buffers under a lock (cheap, any thread); a GUI timer at ~30 Hz drains the buffers on
the main thread and turns them into Qt signals: scalars accumulate, the newest sample
snapshot wins. Commands go the other way onto the trainer's queue. The GUI never
touches a model or an optimiser.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine import commands as cmd
from engine import events as ev
from engine.config import Config
from engine.worker import run_in_process

TICK_MS = 33


_ENDED = object()  # the worker is gone without its end-of-stream marker


class Steering:
    """The window's commands, by name, for a bridge that has send(command): the local trainer's (EngineBridge)
    or a followed run's commands file (studio.follow.FollowBridge)."""

    def pause(self):
        self.send(cmd.Pause())

    def resume(self):
        self.send(cmd.Resume())

    def step(self, n: int = 1):
        self.send(cmd.Step(n))

    def stop(self, save: bool = True):
        self.send(cmd.Stop(save=save))  # a paused trainer blocks on its queue and wakes up for this

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


class EngineBridge(Steering, QObject):
    started = Signal(object)  # ev.Started
    metricsArrived = Signal(list)  # [ev.Metrics, ...] in step order
    samplesArrived = Signal(object)  # newest ev.Samples
    generatorWeights = Signal(object)  # newest ev.GeneratorWeights (for the latent explorer)
    paramChanged = Signal(object)  # ev.ParamChanged
    phaseChanged = Signal(object)  # ev.PhaseChanged
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
        self._process = None
        self._commands = None
        self._ended = False  # the current run has finished or failed (its worker may still be exiting)
        self._lock = threading.Lock()
        self._metrics: list = []
        self._samples = None
        self._weights = None
        self._others: list = []
        self._thread: threading.Thread | None = None
        self.is_paused = False
        self.run_dir: Path | None = None
        self.device = ""
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    # -- reader side: called on the reader thread ---------------------------------------
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

    def _read(self, process, events) -> None:
        """Forward the child's events into the buffers until it ends, or report how it died."""
        finished = False
        while True:
            try:
                event = events.get(timeout=0.5)
            except (EOFError, OSError):  # the worker died, perhaps half-way through a message
                process.join(5)
                event = _ENDED
            except queue.Empty:
                if process.is_alive():
                    continue
                try:
                    event = events.get(timeout=0.5)  # anything still in the pipe
                except (queue.Empty, EOFError, OSError):
                    event = _ENDED
            if event is _ENDED:
                if not finished:
                    self._emit(ev.Failed(
                        f"The training process stopped unexpectedly (exit code {process.exitcode}); the checkpoints "
                        f"already written are intact.", ""))
                break
            if event is None:
                break
            finished = finished or isinstance(event, (ev.Finished, ev.Failed))
            self._emit(event)
        process.join(10)

    # -- GUI side ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and not self._ended and self._thread.is_alive()

    def start(self, config: Config, run_dir: Path, resume=None, paused: bool = False) -> None:
        if self.running:
            raise RuntimeError("a run is already going")
        self._reap(timeout=10)  # the previous run's worker, if it is still exiting
        self._ended = False
        self._announced_end = False
        self.run_dir = Path(run_dir)
        self.is_paused = paused
        context = multiprocessing.get_context("spawn")  # no fork: the parent holds Qt and threads
        events, self._commands = context.Queue(), context.Queue()
        if paused:
            self._commands.put(cmd.Pause())
        self._process = context.Process(
            target=run_in_process, name="gan-studio-training", daemon=True,
            args=(config.to_dict(), self.run_dir, str(resume) if resume else None, events, self._commands))
        self._process.start()
        # The window never puts events: closing its copy of the pipe's write end lets a read see the end of the
        # pipe when the worker dies, instead of waiting forever for the rest of a message it was killed writing.
        events._writer.close()
        self._thread = threading.Thread(target=self._read, args=(self._process, events),
                                        name="gan-studio-reader", daemon=True)
        self._thread.start()
        self._timer.start()
        self.runningChanged.emit(True)

    def send(self, command: cmd.Command) -> None:
        if self.running and self._commands is not None:
            self._commands.put(command)


    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the worker to end (after stop()); True when no thread or process is left."""
        self._reap(timeout)
        self._tick()
        return self._thread is None

    def _reap(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():  # it ignored Stop for too long: it must not outlive the window
                self._process.kill()
                self._process.join(5)
            self._process = None

    def _tick(self) -> None:
        with self._lock:
            metrics, self._metrics = self._metrics, []
            samples, self._samples = self._samples, None
            weights, self._weights = self._weights, None
            others, self._others = self._others, []
        # scalars and pictures first: a Finished among the others must come after the last of them
        if metrics:
            self.metricsArrived.emit(metrics)
        if samples is not None:
            self.samplesArrived.emit(samples)
        if weights is not None:
            self.generatorWeights.emit(weights)
        for event in others:
            self._dispatch(event)
        if self._thread is None:
            return
        if not self._thread.is_alive():
            self._ended = True
        if self._ended and not self._announced_end:
            self._announced_end = True
            self.runningChanged.emit(False)
        if not self._thread.is_alive():  # nothing more can arrive
            self._thread = None
            if self._process is not None and not self._process.is_alive():
                self._process.join()
                self._process = None
            self._timer.stop()

    def _dispatch(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.device = event.device
            self.started.emit(event)
        elif isinstance(event, ev.ParamChanged):
            self.paramChanged.emit(event)
        elif isinstance(event, ev.PhaseChanged):
            self.phaseChanged.emit(event)
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
            self._ended = True
            self.failed.emit(event)
        elif isinstance(event, ev.Finished):
            self._ended = True
            self.finished.emit(event)

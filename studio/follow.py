"""Following a run that another process writes: `gan-studio train` in a terminal here, or on a GPU server whose
run folder is shared or synced to this machine.

FollowBridge has EngineBridge's signals and commands, so the window drives it as it drives its own run. A
thread ("gan-studio-follow") looks at the folder every LOOK_SECONDS: the new complete lines of metrics.jsonl and
changes.jsonl (a torn last line waits), new sample PNGs (the newest decoded there, never on the GUI thread), new
checkpoints, and the heartbeat RUN/live.json (engine.run_control); a GUI timer turns what it found into signals.
Commands are lines appended to RUN/commands.jsonl, and only while steering is on: a followed run is read-only
until the person ticks Run → Steer this run. Following ends when the heartbeat says the run finished, or goes
stale (the process died, or the folder stopped syncing); the window then holds an opened run, as after File →
Open, and Start continues it. studio.following is the window's side (the Steer toggle, the status note).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal

from engine import algorithms
from engine import commands as cmd
from engine import events as ev
from engine.checkpoint import checkpoint_step
from engine.config import Config
from engine.run_control import COMMANDS_FILE, HEARTBEAT_FILE, STALE_SECONDS, LineTail, encode, judge
from studio.bridge import Steering
from studio.runs import _metrics_row, is_change

LOOK_SECONDS = 0.25
TICK_MS = 100
ROWS_PER_TICK = 2000  # a long backlog reaches the curves over several ticks, not in one long stall
READ_ONLY = "This run is only watched; tick Run → Steer this run to send it commands."
_ids = itertools.count(1)


def _parse(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None  # a damaged line is skipped, as File → Open skips it


class FollowBridge(Steering, QObject):
    started = Signal(object)
    metricsArrived = Signal(list)
    samplesArrived = Signal(object)
    generatorWeights = Signal(object)
    paramChanged = Signal(object)
    phaseChanged = Signal(object)
    paused = Signal(object)
    resumed = Signal(object)
    checkpointed = Signal(object)
    rejected = Signal(str)
    warning = Signal(str)
    progress = Signal(object)
    rolledBack = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    runningChanged = Signal(bool)
    snapshotsArrived = Signal(list)  # [(step, png path), ...] new on disk, in step order
    heartbeat = Signal(object)  # the newest RUN/live.json

    def __init__(self, run_dir: Path, config: Config, beat: dict, parent=None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.config = config
        self.beat = beat
        self.device = f"{beat.get('device', '?')} on {beat.get('host', '?')}"
        self.steering = False
        self.is_paused = False
        self.end_text = ""
        self._alive = True
        self._announced = False
        self._lock = threading.Lock()
        self._metrics: list = []
        self._snapshots: list = []
        self._samples = None
        self._others: list = []
        self._new_beat: dict | None = beat
        self._end: tuple | None = None
        self._outbox: list[str] = []
        self._sent: set = set()
        self._quit = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gan-studio-follow", daemon=True)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def begin(self) -> None:
        self._thread.start()
        self._timer.start()

    @property
    def running(self) -> bool:
        return self._alive

    # -- commands: lines for the thread to append ----------------------------------------------------
    def send(self, command: cmd.Command) -> None:
        if not self._alive:
            return
        if not self.steering:
            self.rejected.emit(READ_ONLY)
            return
        id_ = f"studio-{os.getpid()}-{next(_ids)}"
        try:
            line = encode(command, id_)
        except ValueError as exc:
            self.rejected.emit(str(exc))
            return
        with self._lock:
            self._sent.add(id_)
            self._outbox.append(line)
        self._wake.set()

    def rollback(self):
        self.rejected.emit("Roll back works on a run this window trains; a followed run rolls back on its own "
                           "(train.on_nan).")

    def watch_generator(self, on: bool = True):
        pass  # the explorer reads a followed run's checkpoints

    def join(self, timeout: float = 30.0) -> bool:
        """Stop following (the run itself goes on); True when the thread has ended."""
        self._quit.set()
        self._wake.set()
        self._timer.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the watching thread ----------------------------------------------------------------------------
    def _watch(self) -> None:
        logs = {name: LineTail(self.run_dir / name) for name in ("metrics.jsonl", "changes.jsonl")}
        pngs: set = set()
        checkpoints = {p.name for p in (self.run_dir / "checkpoints").glob("step_*.pt")}
        text, changed_at, changed = None, time.monotonic(), False
        while not self._quit.is_set():
            self._write_outbox()
            try:
                new_text = (self.run_dir / HEARTBEAT_FILE).read_text(encoding="utf-8")
            except OSError:
                new_text = text
            beat = self.beat
            if new_text != text:
                changed, changed_at = text is not None, time.monotonic()
                parsed = _parse(new_text)
                text, beat = new_text, parsed if isinstance(parsed, dict) else self.beat
            verdict = judge(beat, time.monotonic() - changed_at if changed else None)
            count = self._read_logs(logs)
            while count and verdict != "running":  # the run ended: its last rows are all there, read them all
                count = self._read_logs(logs)
            self._look_at_samples(pngs)
            checkpoints = self._look_at_checkpoints(checkpoints)
            with self._lock:
                self.beat = self._new_beat = beat
                if verdict != "running":
                    self._end = (verdict, beat)
                    return
            self._wake.wait(LOOK_SECONDS)
            self._wake.clear()

    def _write_outbox(self) -> None:
        with self._lock:
            lines, self._outbox = self._outbox, []
        if lines:
            try:
                with open(self.run_dir / COMMANDS_FILE, "a", encoding="utf-8") as handle:
                    handle.write("".join(lines))  # one append: whole lines, never interleaved with another writer's
            except OSError as exc:
                with self._lock:
                    self._others.append(("rejected", f"The command could not be written to {COMMANDS_FILE} "
                                                     f"({exc.strerror or exc}); the run did not get it."))

    def _read_logs(self, logs: dict) -> int:
        metrics, others = [], []
        for line in logs["metrics.jsonl"].read():
            row = _parse(line)
            if isinstance(row, dict) and isinstance(row.get("step"), int) and _metrics_row(row):
                metrics.append(ev.Metrics(row.pop("step"), row, row.pop("group", "train")))
        for line in logs["changes.jsonl"].read():
            row = _parse(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                continue
            if is_change(row) and row["name"] == "phase":
                others.append(ev.PhaseChanged(row["step"], row["old"], row["new"]))
            elif is_change(row):
                others.append(ev.ParamChanged(row["step"], row["name"], row["old"], row["new"]))
            elif row.get("answer") == "rejected" and self._ours(row.get("id")):
                others.append(("rejected", str(row.get("why", "The run refused the command."))))
        with self._lock:
            self._metrics += metrics
            self._others += others
        return len(metrics) + len(others)

    def _ours(self, id_) -> bool:
        with self._lock:
            return id_ in self._sent

    def _look_at_samples(self, seen: set) -> None:
        try:
            names = [entry.name for entry in os.scandir(self.run_dir / "samples")
                     if entry.name.startswith("step_") and entry.name.endswith(".png") and entry.name not in seen]
        except OSError:
            return
        new = sorted((checkpoint_step(Path(name)), self.run_dir / "samples" / name) for name in names)
        new = [(step, path) for step, path in new if step >= 0]
        if not new:
            return
        step, path = new[-1]
        try:
            with Image.open(path) as image:
                picture = np.asarray(image.convert("RGB"))
        except (OSError, ValueError):
            return  # half-synced: the next look reads it again
        seen.update(path.name for _, path in new)
        with self._lock:
            self._snapshots += new
            self._samples = ev.Samples(step, "images", picture=picture, path=path)

    def _look_at_checkpoints(self, seen: set) -> set:
        now = {p.name for p in (self.run_dir / "checkpoints").glob("step_*.pt")}
        new = sorted(self.run_dir / "checkpoints" / name for name in now - seen)
        with self._lock:
            self._others += [ev.Checkpointed(checkpoint_step(path), path) for path in new]
        return now

    # -- GUI side -----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        with self._lock:
            metrics, self._metrics = self._metrics[:ROWS_PER_TICK], self._metrics[ROWS_PER_TICK:]
            snapshots, self._snapshots = self._snapshots, []
            samples, self._samples = self._samples, None
            others, self._others = self._others, []
            beat, self._new_beat = self._new_beat, None
            end = self._end if not self._metrics else None  # the end comes after the last rows
        if not self._announced:
            self._announced = True
            declaration = algorithms.get(self.config.algorithm).declare(self.config)
            self.started.emit(ev.Started(int(self.beat.get("step", 0)), self.device, self.run_dir,
                                         self.config.to_dict(), declaration))
        if metrics:
            self.metricsArrived.emit(metrics)
        if snapshots:
            self.snapshotsArrived.emit(snapshots)
        if samples is not None:
            self.samplesArrived.emit(samples)
        for event in others:
            if isinstance(event, tuple):
                self.rejected.emit(event[1])
            elif isinstance(event, ev.ParamChanged):
                self.paramChanged.emit(event)
            elif isinstance(event, ev.PhaseChanged):
                self.phaseChanged.emit(event)
            elif isinstance(event, ev.Checkpointed):
                self.checkpointed.emit(event)
        if beat is not None and end is None:
            self._show_beat(beat)
        if end is not None and self._alive:
            self._finish(*end)

    def _show_beat(self, beat: dict) -> None:
        paused = bool(beat.get("paused"))
        if paused != self.is_paused:
            self.is_paused = paused
            step = int(beat.get("step", 0))
            (self.paused if paused else self.resumed).emit(ev.Paused(step) if paused else ev.Resumed(step))
        self.heartbeat.emit(beat)

    def _finish(self, verdict: str, beat: dict) -> None:
        self._alive = False
        self._timer.stop()
        step = int(beat.get("step", 0))
        where = f"pid {beat.get('pid')} on {beat.get('host')}"
        if verdict == "finished":
            reason = str(beat.get("reason", "done"))
            self.end_text = (f"The followed run failed at step {step}; the terminal that ran it ({where}) says why."
                             if reason == "failed" else f"The followed run finished at step {step} ({reason}).")
        elif verdict == "died":
            reason = "its process is gone"
            self.end_text = (f"The process writing this run ({where}) is gone; it stopped at step {step} without "
                             f"finishing, and Start continues it from its newest checkpoint.")
        else:
            reason = "no heartbeat"
            self.end_text = (f"The followed run stopped answering at step {step} (no heartbeat from {where} for "
                             f"{STALE_SECONDS:.0f} s): it died, or the folder stopped syncing; open it again to "
                             f"follow it if it comes back.")
        self.finished.emit(ev.Finished(step, reason))
        self.runningChanged.emit(False)

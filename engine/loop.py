"""The training loop, the same for every algorithm family: commands between steps, reports, samples,
EMA of the sampling networks, NaN guard and roll back, quality measurements, atomic checkpoints.

The loop knows nothing of a GUI and nothing of any one family. It reports through one
`emit(event)` callable and takes commands from `self.commands` (a queue.Queue), drained at the
top of every step and never in the middle of one; a paused trainer blocks on the queue. What a
step does is the family's (engine.algorithms): the loop calls `train_step`, then saves, restores
and checks whatever networks and optimizers the family declares.
"""

from __future__ import annotations

import inspect
import json
import queue
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

from engine import algorithms, ema
from engine import commands as cmd
from engine import events as ev
from engine.algorithms.base import build
from engine.checkpoint import atomic_write, checkpoint_step, data_fields, load_checkpoint, remove_stale_temps
from engine.config import Config, ConfigError, live_keys, resolve_key, short_name
from engine.device import inputs_to, pick_device
from engine.images import png_bytes
from engine.nan_guard import NanGuard
from engine.run_folder import RunFolder
from engine.speech.snapshot import save_audio_snapshot
from engine.tensorboard_log import TensorBoardLog
from engine.presets import to_toml
from engine.previews import DataPreview

class Trainer(NanGuard, RunFolder):
    def __init__(self, config: Config, run_dir: str | Path | None = None,
                 emit: Callable[[ev.Event], None] | None = None,
                 resume: str | Path | dict | None = None, dataset=None, interactive: bool = False, cancel=None,
                 group=None):
        """interactive: someone can answer a pause (the window); headless, a NaN never waits. cancel(): a
        Stop came while the data downloads (a family's make_data takes it if it has the parameter). group: an
        engine.distributed.Group when this is one of several processes (only rank 0 gets a run_dir)."""
        self.config = config.copy()
        self.interactive = interactive
        self._nan_rollbacks: dict = {}  # checkpoint step -> the step a NaN came at after rolling back to it
        self.emit = emit if emit is not None else (lambda event: None)
        self.commands: queue.Queue = queue.Queue()
        self.run_dir = Path(run_dir) if run_dir else None
        self.group = group
        self.device = group.device if group is not None else pick_device(self.config.train.device)
        self.amp = self.config.train.mixed_precision and self.device.type == "cuda"
        family = algorithms.get(self.config.algorithm)
        self.declaration = family.declare(self.config)
        seed = self.config.train.seed
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(seed + 1)

        extra = {"cancel": cancel} if cancel is not None and "cancel" in inspect.signature(family.make_data).parameters \
            else {}
        self.dataset = dataset if dataset is not None else family.make_data(
            self.config, progress=self._progress, warn=lambda text: self.emit(ev.Warning(text)), **extra)
        self.dataset.to(self.device)
        self.algorithm = build(self.config, self.dataset, self.device, self.rng)
        self.algorithm.build_optimizers()
        self.nets, self.opts = self.algorithm.nets, self.algorithm.opts
        self.ema: dict[str, torch.nn.Module] = ema.make_copies(self.nets, family.sampling_nets,
                                                               self.config.tricks.ema_decay)
        self.preview = DataPreview(self.dataset, seed, self.config.train.sample_count, self.device)
        fixed_rng = torch.Generator().manual_seed(seed + 2)
        self.fixed = inputs_to(self.algorithm.fixed_inputs(self.config.train.sample_count, fixed_rng), self.device)

        self.step = 0
        self._nan_stop = ""
        self.paused = False
        self.pending_steps = 0
        self.stop_requested = False
        self.save_on_stop = True
        self.last_good_checkpoint: Path | None = None
        self._last: dict = {}
        self._window_start = (time.perf_counter(), 0)
        self._force_report = False
        self.watch_generator = False
        self._file_lock = threading.Lock()
        self.quality = None
        if self.config.train.metrics_every:
            from engine.metrics.live import QualityProbe
            probe = QualityProbe(self, self.algorithm.quality_probes())
            if probe.problem:
                self.emit(ev.Warning(probe.problem))
            self.quality = probe if probe.enabled else None
        self._metrics_pool: ThreadPoolExecutor | None = None
        self._writes: ThreadPoolExecutor | None = None  # snapshots' files and report rows, off the training thread
        self._pending_writes: list = []

        if resume is not None:
            self._restore(resume if isinstance(resume, dict) else load_checkpoint(resume))
            if not isinstance(resume, dict):
                self.last_good_checkpoint = Path(resume)
        self.settings_version = self.rollbacks = 0  # counted for engine.distributed: the ranks follow rank 0
        if group is not None:
            group.join(self)
        if self.run_dir:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.run_dir / "checkpoints")
            remove_stale_temps(self.run_dir / "samples")
            remove_stale_temps(self.run_dir)
            text = to_toml(self.config).encode()
            atomic_write(self.run_dir / "config.toml", lambda handle: handle.write(text))
            if resume is not None:
                self._repair_logs()
        self.tensorboard = TensorBoardLog.of(self, resumed=resume is not None)

    def _progress(self, task: str, done: int, total: int) -> None:
        self.emit(ev.Progress(task, done, total))

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, steps: int | None = None) -> str:
        """Train until config.train.steps (or `steps`) steps, or a Stop; returns why it ended."""
        total = steps if steps is not None else self.config.train.steps
        try:
            self.emit(ev.Started(self.step, str(self.device), self.run_dir, self.config.to_dict(),
                                 self.declaration, self.algorithm.phase(self.step)))
            if self.config.train.mixed_precision and not self.amp:
                self.emit(ev.Warning(f"Mixed precision needs CUDA; training in float32 on {self.device}."))
            if self.run_dir and self.last_good_checkpoint is None:
                self.save_checkpoint()
            self.emit_samples()
            self._window_start = (time.perf_counter(), self.step)
            phase = self.algorithm.phase(self.step)
            while self.step < total:
                self._drain_commands()
                if self.group is not None:
                    self.group.follow(self)
                if self.stop_requested:
                    break
                if self.paused and self.pending_steps == 0:
                    continue
                report_now = self._force_report or (self.step + 1) % self.config.train.report_every == 0
                self._last = self.algorithm.train_step(self.step, report_now or self.pending_steps == 1)
                if self.ema:
                    ema.update(self.ema, self.nets, self.config.tricks.ema_decay, self.step)
                self.step += 1
                if self.algorithm.phase(self.step) != phase:
                    phase = self._phase_changed(phase)
                single_step = self.pending_steps > 0
                if single_step:
                    self.pending_steps -= 1
                if not self._finite_check():
                    continue
                if report_now or (single_step and self.pending_steps == 0):
                    self._report()
                if self.step % self.config.train.sample_every == 0 or (single_step and self.pending_steps == 0):
                    self.emit_samples()
                if self.group is not None and self.step % self.config.train.checkpoint_every == 0:
                    self.group.check_agreement(self)
                if self.run_dir and self.step % self.config.train.checkpoint_every == 0:
                    if self._weights_finite():  # a NaN checkpoint must never become "last good"
                        self.save_checkpoint()
                    else:
                        self.emit(ev.Warning(f"The weights hold NaN or Inf at step {self.step}; no checkpoint was "
                                             f"written."))
                if self.quality is not None and self.step % self.config.train.metrics_every == 0:
                    self.measure_quality()
            reason = self._nan_stop or ("stopped" if self.stop_requested else "done")
            if self.run_dir and reason != "nan" and (reason == "done" or self.save_on_stop) and self._weights_finite():
                if self.last_good_checkpoint is None or checkpoint_step(self.last_good_checkpoint) != self.step:
                    self.save_checkpoint()
            if reason == "done" and self.step % self.config.train.sample_every:
                self.emit_samples()
            self._finish_writes()
            self._finish_quality()
            self.emit(ev.Finished(self.step, reason))
            return reason
        except Exception as exc:  # the worker must never die silently
            self._finish_writes(raising=False)
            self._finish_quality()
            first = str(exc).splitlines()[0] if str(exc) else ""
            disk = self.disk_error(exc)
            message = disk or f"Training failed at step {self.step}: {type(exc).__name__}: {first}"
            self.emit(ev.Failed(message.rstrip(": "), "" if disk else traceback.format_exc(), self.step))
            return "failed"
        finally:
            self.tensorboard.close()

    # -- commands ------------------------------------------------------------------------------------
    def _drain_commands(self) -> None:
        while not self.stop_requested:
            try:
                if self.paused and self.pending_steps == 0:
                    command = self.commands.get()
                else:
                    command = self.commands.get_nowait()
            except queue.Empty:
                return
            self._handle(command)

    def _handle(self, command: cmd.Command) -> None:
        if isinstance(command, cmd.Pause):
            if not self.paused:
                self.paused = True
                self.emit(ev.Paused(self.step))
        elif isinstance(command, cmd.Resume):
            if self.paused:
                self.paused = False
                self.pending_steps = 0
                self._window_start = (time.perf_counter(), self.step)
                self.emit(ev.Resumed(self.step))
        elif isinstance(command, cmd.Step):
            if not self.paused:
                self.emit(ev.CommandRejected("Step works on a paused run; pause first."))
            elif not isinstance(command.n, int) or isinstance(command.n, bool) or command.n < 1:
                self.emit(ev.CommandRejected(f"Step needs a whole number n >= 1, not {command.n!r}."))
            else:
                self.pending_steps = command.n
        elif isinstance(command, cmd.Stop):
            self.stop_requested = True
            self.save_on_stop = command.save
        elif isinstance(command, cmd.Set):
            self.apply_set(command.name, command.value)
        elif isinstance(command, cmd.SaveNow):
            if not self.run_dir:
                self.emit(ev.CommandRejected("This run has no folder to save into; start it with a run folder."))
            elif not self._weights_finite():
                self.emit(ev.CommandRejected("The weights hold NaN or Inf, so they were not saved; roll back first."))
            else:
                self.save_checkpoint()
        elif isinstance(command, cmd.SampleNow):
            self.emit_samples()
        elif isinstance(command, cmd.Rollback):
            self._rollback()
        elif isinstance(command, cmd.WatchGenerator):
            self.watch_generator = command.on
            if command.on:
                self.emit_generator_weights()
        else:
            self.emit(ev.CommandRejected(f"Unknown command {command!r}."))

    def apply_set(self, name: str, value) -> None:
        """A live change between steps: checked like any setting, recorded (step, old, new), marked."""
        try:
            if not isinstance(name, str):
                raise ConfigError(f"A setting is named by text (like 'lr_d'), not {name!r}.")
            key = resolve_key(name, self.config)
            live = self.config.live_keys()
            if key not in live:
                if key in live_keys():
                    raise ConfigError(f"{key} does nothing in this run (algorithm {self.config.algorithm!r} with "
                                      f"these options), so it was not changed.")
                shorts = sorted(short_name(key) for key in live)
                raise ConfigError(f"{key} cannot change while training; it needs a restart "
                                  f"(live settings: {', '.join(shorts)}).")
            key, old, new = self.config.set(key, value)
        except ConfigError as exc:
            self.emit(ev.CommandRejected(str(exc)))
            return
        if old == new:
            return
        self.algorithm.settings_changed()
        self.settings_version += 1
        self._announce_change(key, old, new)
        self._force_report = True

    def _announce_change(self, key: str, old, new) -> None:
        """A live setting changed at this step: said (ParamChanged, a marker) and kept in changes.jsonl."""
        short = short_name(key)
        self.emit(ev.ParamChanged(self.step, short, old, new))
        self._log_change({"step": self.step, "name": short, "old": old, "new": new})

    def _phase_changed(self, old: str) -> str:
        """Mark the start of a new phase, live and in changes.jsonl, as a live change is marked."""
        new = self.algorithm.phase(self.step)
        self.emit(ev.PhaseChanged(self.step, old, new))
        self._log_change({"step": self.step, "name": "phase", "old": old, "new": new})
        self._force_report = True
        return new

    # -- reports ------------------------------------------------------------------------------------
    def _report(self) -> None:
        """Every scalar the last step left, the declared settings, and the speed since the last report."""
        self._force_report = False
        now = time.perf_counter()
        start_time, start_step = self._window_start
        values = {name: float(value) for name, value in self._last.items()}
        for name in self.declaration.settings:
            values[name] = self.config.get(name)
        if self.step > start_step and now > start_time:
            values["steps_per_sec"] = (self.step - start_step) / (now - start_time)
        self._window_start = (now, self.step)
        self._publish(ev.Metrics(self.step, values, phase=self.algorithm.phase(self.step)), background=True)

    def _publish(self, event: ev.Metrics, background: bool = False) -> None:
        """Emits the row, then logs it (on the writer thread from the training thread: 0.3 ms a report)."""
        self.emit(event)

        def write():
            self.tensorboard.scalars(event.step, event.values, event.group)
            if self.run_dir:
                row = {"step": event.step, **event.values}
                if event.group != "train":
                    row["group"] = event.group
                with self._file_lock, open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")

        if background:
            self._in_background(write)
        else:
            write()

    def measure_quality(self) -> None:
        """Snapshot now (training thread); compute on the metrics thread; publish when done."""
        snap = self.quality.snapshot(self)
        step, probe = self.step, self.quality
        if self._metrics_pool is None:
            self._metrics_pool = ThreadPoolExecutor(1, thread_name_prefix="gan-studio-metrics")

        def work():
            try:
                self._publish(ev.Metrics(step, probe.compute(snap), group="quality"))
            except Exception as exc:  # a failed measurement must not stop training
                self.emit(ev.Warning(f"Quality metrics failed at step {step}: {exc}"))

        self._metrics_pool.submit(work)

    def _finish_quality(self) -> None:
        if self._metrics_pool is not None:
            self._metrics_pool.shutdown(wait=True)
            self._metrics_pool = None

    # -- samples -------------------------------------------------------------------------------------
    def sampling_nets(self) -> dict:
        """The networks samples come from: the EMA copies where there are some."""
        return {name: self.ema.get(name, self.nets[name]) for name in type(self.algorithm).sampling_nets}

    @torch.no_grad()
    def generate(self, inputs: dict) -> torch.Tensor:
        nets = self.sampling_nets()
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        try:
            return self.algorithm.generate(inputs, nets)
        finally:
            for name, net in nets.items():
                net.train(modes[name])

    def emit_samples(self) -> ev.Samples | None:
        if self.group is not None and not self.group.leader:
            return None  # rank 0 alone draws the previews
        fields = self.algorithm.preview(self.preview, self.generate(self.fixed))
        path = (self.run_dir / "samples" / f"step_{self.step:07d}.png") if self.run_dir else None
        event = ev.Samples(self.step, path=path, phase=self.algorithm.phase(self.step), **fields)

        def write():  # PNG encoding and TensorBoard's image cost ring8 3 % of its steps on the training thread
            png = png_bytes(event.picture) if event.picture is not None else None
            if path is not None:
                atomic_write(path, lambda handle: handle.write(png))
                if event.audio is not None:
                    save_audio_snapshot(path.with_suffix(".npz"), event.audio, event.rate, event.text)
            self.tensorboard.samples(event, png)  # in order with the reports' scalars: one writer thread does both

        self._in_background(write)
        self.emit(event)
        if self.watch_generator:
            self.emit_generator_weights()
        return event

    def _in_background(self, write) -> None:
        """Runs `write` on the writer thread, one at a time and in order; a failed write (a full disk) is
        raised here, on the training thread, at the next write handed over, checkpoint or the end of the run."""
        still = []
        for future in self._pending_writes:
            if future.done():
                future.result()
            else:
                still.append(future)
        if self._writes is None:
            self._writes = ThreadPoolExecutor(1, thread_name_prefix="gan-studio-writes")
        self._pending_writes = still + [self._writes.submit(write)]

    def flush_writes(self, raising: bool = True) -> None:
        """Waits for every file the writer thread holds: before a checkpoint (what it covers is on disk when it
        is) and at the end of a run (tests and the window read the files then)."""
        pending, self._pending_writes = self._pending_writes, []
        for future in pending:
            try:
                future.result()
            except Exception:
                if raising:
                    raise

    def _finish_writes(self, raising: bool = True) -> None:
        try:
            self.flush_writes(raising)
        finally:
            if self._writes is not None:
                self._writes.shutdown(wait=True)
                self._writes = None

    def emit_generator_weights(self) -> None:
        weights = {net_name: {name: tensor.detach().cpu().numpy().copy() for name, tensor in net.state_dict().items()}
                   for net_name, net in self.sampling_nets().items()}
        self.emit(ev.GeneratorWeights(self.step, self.config.to_dict(), tuple(self.dataset.shape),
                                      self.dataset.num_classes, weights, data_fields(self.dataset)))

"""TensorBoard event files in RUN/tensorboard/, beside metrics.jsonl: every published scalar (tagged
"train/NAME" or "quality/NAME"), the sample grid of every snapshot, a sequence model's samples as text,
and the run's settings as hyper-parameters ("section.key").

Optional twice over: `train.tensorboard = false` turns it off, and without the tensorboard package a run
says so once and trains on. Writing never stops training: the first error is one warning, then no more
TensorBoard for that run. The writer opens at the first write (a trainer that never runs leaves nothing)
and closes when `Trainer.run` ends; a later write opens a new event file in the same folder.
"""

from __future__ import annotations

import numbers
import threading
from pathlib import Path
from typing import Callable

from engine import events as ev
from engine.images import png_bytes

MISSING = ("TensorBoard logs are off: the tensorboard package is not installed "
           "(pip install 'gan-studio[tensorboard]').")
FLUSH_SECONDS = 15  # how stale a live `tensorboard --logdir runs` may be


def flat_settings(config: dict) -> dict:
    """{"optim": {"lr_g": 1e-3}} -> {"optim.lr_g": 1e-3}: numbers, flags and words as they are, a short
    list as its text; nothing else (the description, nested tables)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                if isinstance(sub_value, (bool, numbers.Real, str)):
                    out[f"{key}.{sub}"] = sub_value if isinstance(sub_value, (bool, str)) else float(sub_value)
                elif isinstance(sub_value, (list, tuple)) and len(sub_value) <= 16:
                    out[f"{key}.{sub}"] = ", ".join(str(item) for item in sub_value)
        elif key != "description" and isinstance(value, (bool, numbers.Real, str)):
            out[key] = value
    return out


def _scalars_summary(group: str, values: dict):
    """One event for a report's scalars, as add_scalar would write each (a simple value a tag): twelve
    add_scalar calls cost 0.3 ms a report on the writer thread, which shares the GIL with training."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    return Summary(value=[Summary.Value(tag=f"{group}/{name}", simple_value=v) for name, v in values.items()])


def _image_summary(array, png: bytes):
    """The picture as add_image("samples", ...) would write it, from its PNG bytes: the snapshot's are encoded once
    for the sample file and this (add_image encoding them again cost the writer thread 4.8 ms a ring8 snapshot)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    height, width = array.shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag="samples", image=image)])


class TensorBoardLog:
    """open(run_dir, config) / scalars(step, values, group) / picture(step, array) / text(step, lines) / close().

    Thread-safe: quality scalars come from the metrics thread. run_dir None: every call does nothing.
    """

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn
        self.folder: Path | None = None
        self.config: dict = {}
        self.purge_step: int | None = None
        self.writer = None
        self.settings_written = False
        self.last_step = -1  # the newest step the training thread wrote: a step back (a roll back) purges
        self.lock = threading.Lock()

    @classmethod
    def of(cls, trainer, resumed: bool) -> "TensorBoardLog":
        """A trainer's log: into its run folder unless train.tensorboard is off; warnings go out as events. A
        resumed trainer's steps after its checkpoint were lost, and vanish from TensorBoard too."""
        log = cls(lambda text: trainer.emit(ev.Warning(text)))
        log.open(trainer.run_dir if trainer.config.train.tensorboard else None, trainer.config.to_dict(),
                 purge_step=trainer.step + 1 if resumed else None)
        return log

    def open(self, run_dir: str | Path | None, config: dict, purge_step: int | None = None) -> None:
        """Where to write (nothing happens yet). purge_step: one past a resumed run's step; TensorBoard hides
        what the earlier files hold from that step on (the training that was lost)."""
        self.folder = Path(run_dir) / "tensorboard" if run_dir else None
        self.config, self.purge_step = config, purge_step

    def scalars(self, step: int, values: dict, group: str = "train") -> None:
        numbers_only = {name: float(value) for name, value in values.items() if isinstance(value, numbers.Real)}
        if numbers_only:
            self._write(step, group == "train", lambda w: w._get_file_writer().add_summary(
                _scalars_summary(group, numbers_only), step))

    def picture(self, step: int, array, png: bytes | None = None) -> None:
        """array: H x W x 3 uint8; png: the same picture already encoded (the sample file's bytes), used as it is."""
        if array is not None:
            data = png if png is not None else png_bytes(array)
            self._write(step, True, lambda w: w._get_file_writer().add_summary(_image_summary(array, data), step))

    def text(self, step: int, lines) -> None:
        if lines:
            body = "\n".join("    " + line for line in lines)  # a code block keeps spaces and line breaks
            self._write(step, True, lambda w: w.add_text("samples", body, step))

    def samples(self, event, png: bytes | None = None) -> None:
        """An events.Samples: its picture (png: already encoded), and its lines when the samples are text."""
        self.picture(event.step, event.picture, png)
        if event.kind == "text":
            lines = event.text or tuple(event.joiner.join(map(str, row)) for row in event.tokens or ())
            self.text(event.step, lines)

    def close(self) -> None:
        with self.lock:
            self._close()

    # -- inside ------------------------------------------------------------------------------------
    def _write(self, step: int, in_order: bool, write) -> None:
        with self.lock:
            if self.folder is None:
                return
            try:
                if in_order and step < self.last_step and self.writer is not None:
                    self._close()  # rolled back: the steps after this one are gone
                    self.purge_step = step + 1
                if self.writer is None and not self._start():
                    return
                write(self.writer)
                if in_order:
                    self.last_step = step
            except Exception as exc:  # TensorBoard must never stop training
                self.folder = None
                self._close(quiet=True)
                self.warn(f"TensorBoard logs are off from step {step}: {type(exc).__name__}: {exc}")

    def _start(self) -> bool:
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError:
            self.folder = None
            self.warn(MISSING)
            return False
        quiet_writer_threads()
        self.writer = SummaryWriter(str(self.folder), purge_step=self.purge_step, flush_secs=FLUSH_SECONDS)
        self.purge_step = None
        if not self.settings_written:
            # the session's settings only: the HParams dashboard then finds the metrics among the scalars itself
            _, session_start, _ = hparams(flat_settings(self.config), {})
            self.writer.file_writer.add_summary(session_start)
            self.settings_written = True
        return True

    def _close(self, quiet: bool = False) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()  # flushes
            except Exception as exc:
                if not quiet:
                    self.warn(f"TensorBoard's last events could not be written: {type(exc).__name__}: {exc}")


def quiet_writer_threads() -> None:
    """TensorBoard's writer thread keeps a failed write (a full disk) for its next call, where `_write` says it
    as one warning, and re-raises it, so Python would print its traceback too: that one is left unprinted."""
    previous = threading.excepthook
    if getattr(previous, "quiets_tensorboard", False):
        return

    def hook(args):
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook.quiets_tensorboard = True
    threading.excepthook = hook

"""Exports: the dialog, and the writing, with the slow kinds (samples from a checkpoint, a timelapse) on their
own threads."""

from __future__ import annotations

import io
import struct
import threading
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QButtonGroup, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QRadioButton,
                               QSpinBox, QVBoxLayout)

from engine.checkpoint import by_step
from studio.runs import latest_checkpoint

EXPORT_KINDS = (
    ("grid", "Sample grid (PNG)"),
    ("each", "One PNG per sample (folder)"),
    ("gif", "Timelapse of the fixed-noise samples (GIF)"),
    ("curves_png", "Curves (PNG)"),
    ("curves_csv", "Curves (CSV)"),
    ("onnx", "ONNX model (.onnx)"),
)
SAMPLE_KINDS = ("grid", "each")  # drawn afresh from a checkpoint, by count, seed and scale
SUFFIXES = {"grid": "png", "curves_png": "png", "gif": "gif", "curves_csv": "csv", "onnx": "onnx"}


def make_timelapse(run_dir: Path, out: Path, frame_ms: int = 120) -> Path:
    """An animated GIF of a run's sample snapshots, one frame each in step order, looping, written atomically.

    Streamed: the sizes come from the PNG headers (nothing decoded), then each frame is decoded, padded to the
    largest with its corner's colour (text previews wrap to more or fewer lines), encoded and written before the
    next is read, so a long run's timelapse needs the memory of one frame, not of all of them."""
    from PIL import Image

    from engine.checkpoint import atomic_write

    frames = by_step((Path(run_dir) / "samples").glob("step_*.png"))
    if not frames:
        raise ValueError("this run has no sample snapshots yet")
    sizes = []
    for frame in frames:
        with Image.open(frame) as img:  # reads the header only
            sizes.append(img.size)
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)

    def write(handle) -> None:
        handle.write(gif_header(width, height))
        for frame in frames:
            handle.write(gif_frame(padded_frame(frame, width, height), frame_ms))
        handle.write(b"\x3b")  # trailer

    return atomic_write(Path(out), write)


def padded_frame(path: Path, width: int, height: int):
    """One snapshot decoded, padded to width x height with its corner's colour, and reduced to 255 colours."""
    from PIL import Image

    from engine.images import pad_to

    with Image.open(path) as img:
        picture = np.asarray(img.convert("RGB"))
    return Image.fromarray(pad_to(picture, height, width)).quantize(colors=255)


def gif_header(width: int, height: int, loop: int = 0) -> bytes:
    """GIF89a with a width x height canvas, no global colour table (each frame brings its own), looping."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x70, 0, 0)
            + b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00")


def _skip_blocks(data: bytes, i: int) -> int:
    """The index after a chain of GIF data sub-blocks starting at i (each: length byte, bytes; 0 ends it)."""
    while data[i]:
        i += data[i] + 1
    return i + 1


def gif_frame(frame, frame_ms: int) -> bytes:
    """One animation frame: a graphic control extension (its delay), then the image block (descriptor, its own
    colour table, LZW data) of the one-frame GIF Pillow encodes for `frame` (a "P" image)."""
    buffer = io.BytesIO()
    frame.save(buffer, format="GIF")
    data = buffer.getvalue()
    packed = data[10]
    table = data[13:13 + 3 * 2 ** ((packed & 7) + 1)] if packed & 0x80 else b""
    i = 13 + len(table)
    while data[i] == 0x21:  # extensions of the one-frame file: not needed here
        i = _skip_blocks(data, i + 2)
    if data[i] != 0x2C:
        raise ValueError("Pillow wrote a GIF frame this exporter cannot read")
    descriptor, i = bytearray(data[i:i + 10]), i + 10
    if descriptor[9] & 0x80:  # the frame has its own colour table already
        start, i = i, i + 3 * 2 ** ((descriptor[9] & 7) + 1)
        body = data[start:_skip_blocks(data, i + 1)]
    else:  # the file's global table becomes the frame's local one
        descriptor[9] = (descriptor[9] & 0x40) | 0x80 | (packed & 7)
        body = table + data[i:_skip_blocks(data, i + 1)]
    control = b"\x21\xf9\x04\x04" + struct.pack("<H", max(0, round(frame_ms / 10))) + b"\x00\x00"
    return control + bytes(descriptor) + body


def export_samples(checkpoint: Path, kind: str, path: Path, count: int, seed: int, scale: int) -> Path:
    """`count` samples of a checkpoint drawn from `seed`: one picture of all ("grid"), or a PNG each ("each")."""
    from engine.images import save_png
    from engine.latent import latent_for
    from engine.sampler import load_sampler

    sampler = load_sampler(checkpoint)
    grid, singles = sampler.pictures(sampler.generate(latent_for(sampler, count, seed).as_dict()))
    up = (lambda p: p.repeat(scale, 0).repeat(scale, 1)) if scale > 1 else (lambda p: p)
    if kind == "each":
        for i, picture in enumerate(singles):
            save_png(path / f"sample_{i:04d}.png", up(picture))
    else:
        save_png(path, up(grid))
    return path


class Exporter(QObject):
    """Writes exports of the window's run; slow kinds run on their own threads and end in done or failed.

    Samples come from a checkpoint: the run's newest, or, while it trains, one it is asked to write first.
    """

    done = Signal(str)  # the path written
    failed = Signal(str)  # one sentence
    busy = Signal(str)  # a slow export started: what it is doing

    def __init__(self, curves, bridge, run_dir, parent=None):
        super().__init__(parent)
        self.curves, self.bridge, self.run_dir = curves, bridge, run_dir  # run_dir: a function, the run's folder
        self.pending: tuple | None = None
        self.threads: list[threading.Thread] = []

    def ask(self, parent, name: str) -> None:
        """The export dialog, then where to write."""
        dialog = ExportDialog(parent)
        if dialog.exec() != QDialog.Accepted:
            return
        kind = dialog.kind()
        if kind == "each":
            path = QFileDialog.getExistingDirectory(parent, "Export one PNG per sample into")
        else:
            path, _ = QFileDialog.getSaveFileName(parent, "Export", f"{name}-{kind}.{SUFFIXES[kind]}")
        if path:
            self.export(kind, Path(path), dialog.count.value(), dialog.seed.value(), dialog.scale.value())

    def export(self, kind: str, path: Path, count: int = 64, seed: int = 0, scale: int = 1) -> None:
        path = Path(path)
        run_dir = self.run_dir()
        try:
            if kind == "curves_csv":
                self.curves.write_csv(path)
                self.done.emit(str(path))
            elif kind == "curves_png":
                self.curves.write_png(path)
                self.done.emit(str(path))
            elif kind == "gif":
                if run_dir is None:
                    raise ValueError("there is no run to make a timelapse of")
                self.run(lambda: make_timelapse(run_dir, path), path)
            elif self.bridge.running:
                self.pending = (kind, path, count, seed, scale)
                self.bridge.save_now()  # the export uses the checkpoint this writes
            else:
                checkpoint = latest_checkpoint(run_dir) if run_dir else None
                if checkpoint is None:
                    raise ValueError("there is no checkpoint yet; train for a moment first")
                self.samples(checkpoint, kind, path, count, seed, scale)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Export failed: {exc}.")

    def cancel(self, why: str) -> None:
        """The checkpoint an export waits for will not come (the engine refused to save, or the run ended)."""
        if self.pending is not None:
            self.pending = None
            self.failed.emit(f"Export failed: {why}")

    def checkpointed(self, checkpoint: Path) -> None:
        """A checkpoint was written: the export that waited for one goes on."""
        if self.pending is not None:
            args, self.pending = self.pending, None
            self.samples(Path(checkpoint), *args)

    def samples(self, checkpoint: Path, kind: str, path: Path, count: int, seed: int, scale: int) -> None:
        """The kinds drawn from a checkpoint: pictures of samples, or the sampling network as ONNX."""
        if kind == "onnx":
            from engine.onnx_export import export_onnx
            self.run(lambda: export_onnx(checkpoint, path), path)
        else:
            self.run(lambda: export_samples(checkpoint, kind, path, count, seed, scale), path)

    def run(self, work, path: Path) -> None:
        self.busy.emit(f"Exporting {path.name}…")

        def target():
            try:
                work()
            except Exception as exc:  # reported to the person, never raised into Qt
                self.failed.emit(f"Export failed: {exc}")
                traceback.print_exc()
            else:
                self.done.emit(str(path))

        thread = threading.Thread(target=target, name="gan-studio-export", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)


class ExportDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        layout = QVBoxLayout(self)
        self.group = QButtonGroup(self)
        for i, (kind, label) in enumerate(EXPORT_KINDS):
            button = QRadioButton(label)
            button.setProperty("kind", kind)
            self.group.addButton(button, i)
            layout.addWidget(button)
        self.group.button(0).setChecked(True)
        form = QFormLayout()
        self.count = QSpinBox()
        self.count.setRange(1, 1024)
        self.count.setValue(64)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(2)
        self.scale.setToolTip("Each pixel becomes scale × scale pixels")
        form.addRow("samples", self.count)
        form.addRow("seed", self.seed)
        form.addRow("scale", self.scale)
        layout.addLayout(form)
        self.group.buttonToggled.connect(lambda *_: self._enable_fields())
        self._enable_fields()
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def kind(self) -> str:
        return self.group.checkedButton().property("kind")

    def _enable_fields(self) -> None:
        """Count, seed and scale shape the sample pictures only; the other kinds have nothing to set."""
        drawn = self.kind() in SAMPLE_KINDS
        for field in (self.count, self.seed, self.scale):
            field.setEnabled(drawn)

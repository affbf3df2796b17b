"""The sample panel: the newest samples as the run draws them (a picture, 2-D points over D's field,
painter curves), and a slider back through the snapshots kept on disk."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStackedWidget, QTextBrowser, QVBoxLayout, QWidget

from engine.text.view import shade
from studio.audio import AudioBar
from studio.theme import set_widget_dark

SAMPLES_REDRAW_MS = 200


def _field_lut() -> np.ndarray:
    """White at 0.5, blue towards 'real' (1), orange towards 'fake' (0): GAN Lab's reading of D."""
    t = np.linspace(0.0, 1.0, 256)[:, None]
    fake = np.array([253, 174, 107])
    real = np.array([107, 174, 214])
    white = np.array([255, 255, 255])
    lut = np.where(t < 0.5, fake + (white - fake) * (t / 0.5), white + (real - white) * ((t - 0.5) / 0.5))
    return lut.astype(np.uint8)


class SamplesPanel(QWidget):
    """The newest samples, and a slider to scrub back through every snapshot kept on disk."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshots: list[tuple[int, Path | None]] = []
        self.latest = None
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(SAMPLES_REDRAW_MS)
        self._redraw_timer.timeout.connect(self._draw_latest)
        self.stack = QStackedWidget()
        self.image_widget = pg.GraphicsLayoutWidget()
        self.image_view = self.image_widget.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image_item = pg.ImageItem()
        self.image_view.addItem(self.image_item)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setAspectLocked(True)
        self.field_item = pg.ImageItem()
        self.field_item.setLookupTable(_field_lut())
        self.plot_widget.addItem(self.field_item)
        self.real_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(31, 119, 180, 140))
        self.fake_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(230, 85, 13, 200))
        self.curve_item = pg.PlotDataItem(pen=pg.mkPen(230, 85, 13, 120))
        self.band_items = [pg.PlotDataItem(pen=pg.mkPen(31, 119, 180, width=3)) for _ in range(2)]
        for item in (self.real_item, self.fake_item, self.curve_item, *self.band_items):
            self.plot_widget.addItem(item)
        self.text_view = QTextBrowser()  # sequence models: the tokens as text, shaded by their rewards
        self.text_view.setOpenLinks(False)
        self.stack.addWidget(self.image_widget)
        self.stack.addWidget(self.plot_widget)
        self.stack.addWidget(self.text_view)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Scrub back through the run's sample snapshots")
        self.slider.valueChanged.connect(self._scrubbed)
        self.label = QLabel("no samples yet")
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack, 1)
        self.audio_bar = AudioBar()  # speech models: play the clips of the snapshot on show
        layout.addWidget(self.audio_bar)
        layout.addLayout(row)

    @property
    def live(self) -> bool:
        return self.slider.value() >= self.slider.maximum()

    def clear(self) -> None:
        self.snapshots.clear()
        self.latest = None
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.image_item.clear()
        self.audio_bar.hide_clips()
        self.label.setText("no samples yet")

    def add_snapshot(self, step: int, path: Path | None) -> None:
        if self.snapshots and self.snapshots[-1][0] == step:
            self.snapshots[-1] = (step, path)
            return
        was_live = self.live
        self.snapshots.append((step, path))
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self.snapshots) - 1)
        if was_live:
            self.slider.setValue(len(self.snapshots) - 1)
        self.slider.blockSignals(False)

    def show_samples(self, samples) -> None:
        self.latest = samples
        self.add_snapshot(samples.step, samples.path)
        if self.live and not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _draw_latest(self) -> None:
        if self.live and self.latest is not None:
            self._draw_live(self.latest)

    def _draw_live(self, s) -> None:
        """Points and painter curves are drawn as plots; any other kind (images, text, ...) as its picture."""
        self.label.setText(f"step {s.step} (live)")
        if s.kind == "audio" and s.audio is not None:
            self.audio_bar.show_clips(s.audio, s.rate, s.text or (), tuple(s.title.split(" | ")))
        else:
            self.audio_bar.hide_clips()
        if s.kind == "points" and s.points is not None:
            self._draw_points(s)
        elif s.kind == "curves" and s.points is not None:
            self._draw_curves(s)
        elif s.kind == "text" and s.tokens is not None:
            self.stack.setCurrentWidget(self.text_view)
            self.text_view.setHtml(text_html(s))
            return
        else:
            self.stack.setCurrentWidget(self.image_widget)
            self.image_item.setImage(s.picture, autoLevels=False, levels=(0, 255))
            return
        self.stack.setCurrentWidget(self.plot_widget)
        x0, x1, y0, y1 = s.extent
        self.plot_widget.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)

    def _draw_points(self, s) -> None:
        """Generated points (orange) over the real ones (blue) and, for a GAN, D's reading of the plane."""
        x0, x1, y0, y1 = s.extent
        self.curve_item.setData([], [])
        for band in self.band_items:
            band.setData([], [])
        if s.field is not None:
            levels = (0.0, 1.0) if s.field.min() >= 0 and s.field.max() <= 1 else (
                float(s.field.min()), float(s.field.max()) + 1e-9)
            self.field_item.setImage(s.field, autoLevels=False, levels=levels)
            self.field_item.setRect(x0, y0, x1 - x0, y1 - y0)
        else:
            self.field_item.clear()
        if s.real is not None:
            self.real_item.setData(s.real[:, 0], s.real[:, 1])
        self.fake_item.setData(s.points[:, 0], s.points[:, 1])

    def _draw_curves(self, s) -> None:
        """The painter's first 64 strokes between the two bands that real strokes lie in."""
        self.field_item.clear()
        self.real_item.setData([], [])
        self.fake_item.setData([], [])
        xs = np.linspace(-1.0, 1.0, s.points.shape[1])
        curves = s.points[:64]
        xx = np.tile(xs, len(curves))
        connect = np.ones(xx.shape, dtype=bool)
        connect[len(xs) - 1::len(xs)] = False
        self.curve_item.setData(xx, curves.reshape(-1), connect=connect)
        for band, a in zip(self.band_items, (1.0, 2.0)):
            band.setData(xs, a * xs ** 2 + a - 1)

    def show_step(self, step: int) -> None:
        """Jump to the snapshot nearest to a step (clicking a curve does this)."""
        if not self.snapshots:
            return
        steps = np.array([s for s, _ in self.snapshots])
        self.slider.setValue(int(np.abs(steps - step).argmin()))

    def _scrubbed(self, index: int) -> None:
        if not self.snapshots:
            return
        if self.live and self.latest is not None:
            self._draw_live(self.latest)
            return
        step, path = self.snapshots[index]
        if path is None or not Path(path).is_file():
            self.label.setText(f"step {step} (not on disk)")
            return
        with Image.open(path) as img:
            picture = np.asarray(img.convert("RGB"))
        self.stack.setCurrentWidget(self.image_widget)
        self.image_item.setImage(picture, autoLevels=False, levels=(0, 255))
        self.audio_bar.show_snapshot(Path(path).with_suffix(".npz"))
        self.label.setText(f"step {step}")

    def set_dark(self, dark: bool) -> None:
        set_widget_dark(self.image_widget, [], dark)
        set_widget_dark(self.plot_widget, [self.plot_widget.getPlotItem()], dark)

    def current_picture(self) -> np.ndarray | None:
        """The picture on show; for text, the picture the engine saved of it (the same tokens and shades)."""
        if self.stack.currentWidget() is self.text_view and self.latest is not None:
            return self.latest.picture
        return self.image_item.image if self.stack.currentWidget() is self.image_widget else None

    def current_text(self) -> str:
        return self.text_view.toPlainText() if self.stack.currentWidget() is self.text_view else ""


def text_html(s) -> str:
    """The sequences of a text Samples event as HTML: one paragraph each, tokens on their reward's colour."""
    parts = [f"<p style='color:#666'>{html.escape(s.title)}</p>"] if s.title else []
    for r, tokens in enumerate(s.tokens):
        spans = []
        for i, token in enumerate(tokens):
            text = html.escape(token).replace(" ", "&nbsp;") or "&nbsp;"
            if s.shades is not None and i < len(s.shades[r]):
                colour = "#%02x%02x%02x" % shade(s.shades[r][i])
                text = f"<span style='background-color:{colour}; color:#141414'>{text}</span>"
            spans.append(text)
        parts.append(f"<p style='font-family:monospace'>{(html.escape(s.joiner) or '').join(spans)}</p>")
    return "".join(parts)

"""Live views: training curves and the sample panel (images, 2-D points over D's field, painter curves)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PIL import Image
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QStackedWidget, QVBoxLayout, QWidget)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")

# Repainting plots (axes above all) holds the GIL on the GUI thread and so slows the training
# thread; data arrive at any rate, but the curves repaint at most this often (bench/studio_overhead.py).
CURVES_REDRAW_MS = 500
SAMPLES_REDRAW_MS = 200

PLOTS = (
    ("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"),
                ("wasserstein", "W estimate", "#2ca02c"))),
    ("D(x) and D(G(z))", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728"),
                          ("energy_real", "energy of x", "#1f77b4"), ("energy_fake", "energy of G(z)", "#d62728"))),
    ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))),
)
SERIES = [name for _, series in PLOTS for name, _, _ in series]
QUALITY_COMPANIONS = {"test_accuracy": "baseline_accuracy", "baseline_accuracy": "test_accuracy"}
QUALITY_LABELS = {"test_accuracy": "semi-supervised D", "baseline_accuracy": "same net, labels only"}
# Reported every time but not curves of the model: settings and speed.
NOT_TERMS = {"lr_g", "lr_d", "k", "steps_per_sec"}
# Each model's own live quantities (BEGAN's k_t and M, feature matching, VAE's KL, ...) share one
# plot that appears with the first of them, one colour per name in order of arrival.
TERM_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#2ca02c", "#ff7f0e")
TERM_LABELS = {"began_k": "k_t", "convergence": "M", "ls_margin": "Δ(x, G(z))", "ls_violated": "margin violated",
               "margin_active": "fakes under m", "pullaway": "pull-away", "feature_matching": "feature matching",
               "historical_d": "hist. avg D", "historical_g": "hist. avg G", "supervised_loss": "supervised CE",
               "baseline_loss": "labels-only CE", "d_lipschitz_bound": "Lipschitz bound of D",
               "instance_noise": "instance noise σ", "recon": "reconstruction", "kl": "KL",
               "minibatch_closeness": "fakes' closeness (minibatch disc.)"}


class SeriesBuffer:
    """Preallocated arrays that double when full; views are handed to setData without copies."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.steps = np.zeros(capacity)
        self.values = {name: np.full(capacity, np.nan) for name in SERIES}
        self.extra: dict[str, np.ndarray] = {}

    def append(self, step: int, values: dict) -> None:
        if self.n == len(self.steps):
            grow = len(self.steps)
            self.steps = np.concatenate([self.steps, np.zeros(grow)])
            for store in (self.values, self.extra):
                for name in store:
                    store[name] = np.concatenate([store[name], np.full(grow, np.nan)])
        self.steps[self.n] = step
        for name, value in values.items():
            store = self.values if name in self.values else self.extra
            if name not in store:
                store[name] = np.full(len(self.steps), np.nan)
            store[name][self.n] = value
        self.n += 1

    def series(self, name: str) -> np.ndarray:
        store = self.values if name in self.values else self.extra
        return store[name][: self.n]


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (NaN-aware enough for curves that start late)."""
    if window <= 1 or len(y) < 2:
        return y
    valid = np.isfinite(y)
    filled = np.where(valid, y, 0.0)
    csum = np.cumsum(np.insert(filled, 0, 0.0))
    ccount = np.cumsum(np.insert(valid.astype(float), 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - window)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[idx] - csum[lo]) / (ccount[idx] - ccount[lo])
    out[~valid] = np.nan
    return out


class CurvesPanel(QWidget):
    stepClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.buffer = SeriesBuffer()
        self.ghost: SeriesBuffer | None = None
        self.markers: list[tuple[int, str]] = []
        self._marker_items: list = []
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        self.labels: dict[str, str] = {}
        self._in_legend: set[str] = set()
        self.items: dict[str, pg.PlotDataItem] = {}
        self.ghost_items: dict[str, pg.PlotDataItem] = {}
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(CURVES_REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        self.first_plot = None
        for row, (title, series) in enumerate(PLOTS):
            plot = self._add_plot(row, title)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            for name, label, colour in series:
                self.ghost_items[name] = plot.plot(pen=pg.mkPen(colour, width=1, style=Qt.DashLine))
                self.items[name] = plot.plot(pen=pg.mkPen(colour, width=1.5))  # named once reported
                self.labels[name] = label
                self.plots[name] = plot
        self.layout_widget.scene().sigMouseClicked.connect(self._clicked)  # one scene holds every plot
        self._dark = False
        self.terms_plot: pg.PlotItem | None = None
        self.term_items: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        # quality measurements (modes captured, Fréchet distance, ...) come from the metrics thread
        self.quality = SeriesBuffer()
        self.quality_plot = self._add_plot(len(PLOTS), "Quality")
        self.quality_legend = self.quality_plot.legend
        # a measurement shown with the one it is compared against (the semi-supervised D and the labels-only net)
        self.quality_companion = self.quality_plot.plot(pen=pg.mkPen("#8c564b", width=1.5, style=Qt.DashLine),
                                                        symbol="t", symbolSize=6, symbolBrush="#8c564b")
        self.quality_item = self.quality_plot.plot(pen=pg.mkPen("#9467bd", width=1.5), symbol="o", symbolSize=5,
                                                   symbolBrush="#9467bd")
        self.quality_choice = QComboBox()
        self.quality_choice.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.quality_choice.setToolTip("Which quality measurement the bottom plot shows")
        self.quality_choice.currentTextChanged.connect(lambda _text: self.redraw())
        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(1, 50)
        self.smoothing.setValue(1)
        self.smoothing.setToolTip("Smoothing: moving average over this many reports")
        self.smoothing.valueChanged.connect(self.redraw)
        self.log_scale = QCheckBox("log scale")
        self.log_scale.toggled.connect(self._set_log)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("smoothing"))
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.log_scale)
        controls.addWidget(QLabel("quality"))
        controls.addWidget(self.quality_choice)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget, 1)
        layout.addLayout(controls)

    def _add_plot(self, row: int, title: str) -> pg.PlotItem:
        """A plot in the given row with a legend and a grid, its step axis linked to the first plot's."""
        plot = self.layout_widget.addPlot(row=row, col=0, title=title)
        plot.addLegend(offset=(-10, 5))
        plot.showGrid(x=True, y=True, alpha=0.2)
        if self.first_plot is None:
            self.first_plot = plot
        else:
            plot.setXLink(self.first_plot)
        return plot

    def _term_item(self, name: str) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
        if self.terms_plot is None:
            self.terms_plot = self._add_plot(len(PLOTS) + 1, "Model terms")
            self.terms_plot.setLogMode(y=self.log_scale.isChecked())
            if self._dark:
                set_widget_dark(self.layout_widget, [self.terms_plot], True)
            for step, text in self.markers:
                self._add_marker_line(self.terms_plot, step, text)
        if name not in self.term_items:
            colour = TERM_COLOURS[len(self.term_items) % len(TERM_COLOURS)]
            ghost = self.terms_plot.plot(pen=pg.mkPen(colour, width=1, style=Qt.DashLine))
            item = self.terms_plot.plot(pen=pg.mkPen(colour, width=1.5), name=TERM_LABELS.get(name, name))
            self.term_items[name] = (ghost, item)
        return self.term_items[name]

    def _all_plots(self) -> list:
        plots = list({id(p): p for p in self.plots.values()}.values())
        return plots + ([self.terms_plot] if self.terms_plot is not None else [])

    def clear(self, keep_as_ghost: bool = False) -> None:
        self.ghost = self.buffer if keep_as_ghost else None
        self.buffer = SeriesBuffer()
        if self.terms_plot is not None:
            self.layout_widget.removeItem(self.terms_plot)
            self.terms_plot = None
            self.term_items.clear()
        self.quality = SeriesBuffer()
        self.quality_choice.clear()
        for item in self._marker_items:
            item.getViewBox().removeItem(item) if item.getViewBox() else None
        self._marker_items.clear()
        self.markers.clear()
        self.redraw()

    def add_metrics(self, metrics: list) -> None:
        for m in metrics:
            if getattr(m, "group", "train") == "quality":
                self.quality.append(m.step, m.values)
                for name in m.values:
                    if self.quality_choice.findText(name) < 0:
                        self.quality_choice.addItem(name)
            else:
                self.buffer.append(m.step, m.values)
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def add_marker(self, step: int, text: str) -> None:
        self.markers.append((step, text))
        for plot in self._all_plots():
            self._add_marker_line(plot, step, text)

    def _add_marker_line(self, plot, step: int, text: str) -> None:
        line = pg.InfiniteLine(pos=step, angle=90, pen=pg.mkPen("#888", style=Qt.DotLine),
                               label=text, labelOpts={"position": 0.9, "color": "#555"})
        plot.addItem(line)
        self._marker_items.append(line)

    def term_names(self, store: "SeriesBuffer | None" = None) -> list[str]:
        """The model's own live quantities seen so far (in this run, or in `store`), in order of arrival."""
        store = self.buffer if store is None else store
        return [name for name in store.extra if name not in NOT_TERMS]

    def redraw(self) -> None:
        window = self.smoothing.value()
        for store, items in ((self.buffer, self.items), (self.ghost, self.ghost_items)):
            for name, item in items.items():
                self._draw_series(item, store, name, window)
        self._update_legends()
        ghost_terms = self.term_names(self.ghost) if self.ghost is not None else []
        for name in dict.fromkeys(self.term_names() + ghost_terms):
            ghost_item, item = self._term_item(name)
            self._draw_series(item, self.buffer, name, window)
            self._draw_series(ghost_item, self.ghost, name, window)

        name = self.quality_choice.currentText()
        companion = QUALITY_COMPANIONS.get(name)
        self.quality_legend.clear()
        if name and self.quality.n:
            steps = self.quality.steps[: self.quality.n]
            self.quality_item.setData(steps, self.quality.series(name), connect="finite")
            if companion and companion in self.quality.extra:
                self.quality_companion.setData(steps, self.quality.series(companion), connect="finite")
                self.quality_legend.addItem(self.quality_item, QUALITY_LABELS.get(name, name))
                self.quality_legend.addItem(self.quality_companion, QUALITY_LABELS.get(companion, companion))
            else:
                self.quality_companion.setData([], [])
        else:
            self.quality_item.setData([], [])
            self.quality_companion.setData([], [])

    def _draw_series(self, item, store: SeriesBuffer | None, name: str, window: int) -> None:
        if store is None or store.n == 0 or (name not in store.values and name not in store.extra):
            item.setData([], [])
            return
        y = smooth(store.series(name), window)
        if self.log_scale.isChecked():
            y = np.where(y > 0, y, np.nan)
        item.setData(store.steps[: store.n], y, connect="finite")

    def _update_legends(self) -> None:
        """A legend lists only the series this run reports (no 'W estimate' for a GAN that has none)."""
        for name, item in self.items.items():
            reported = self.buffer.n > 0 and name in self.buffer.values and bool(
                np.isfinite(self.buffer.series(name)).any())
            if reported == (name in self._in_legend):
                continue
            legend = self.plots[name].legend
            if reported:
                legend.addItem(item, self.labels[name])
                self._in_legend.add(name)
            else:
                legend.removeItem(item)
                self._in_legend.discard(name)

    def _set_log(self, on: bool) -> None:
        for plot in self._all_plots():
            plot.setLogMode(y=on)
        self.redraw()

    def _clicked(self, event) -> None:
        for plot in self._all_plots():
            if plot.sceneBoundingRect().contains(event.scenePos()):
                point = plot.vb.mapSceneToView(event.scenePos())
                self.stepClicked.emit(int(round(point.x())))
                return

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        set_widget_dark(self.layout_widget, self._all_plots() + [self.quality_plot], dark)

    def write_csv(self, path: Path) -> None:
        names = SERIES + sorted(self.buffer.extra)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step"] + names)
            for i in range(self.buffer.n):
                row = [int(self.buffer.steps[i])]
                for name in names:
                    value = self.buffer.series(name)[i]
                    row.append("" if not np.isfinite(value) else f"{value:.6g}")
                writer.writerow(row)

    def flush(self) -> None:
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self.redraw()

    def write_png(self, path: Path) -> None:
        self.flush()
        pixmap = self.layout_widget.grab()
        if not pixmap.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")


def set_widget_dark(widget, plots, dark: bool) -> None:
    background, foreground = ("#1e1e1e", "#d0d0d0") if dark else ("w", "k")
    widget.setBackground(background)
    for plot in plots:
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
        plot.titleLabel.setText(plot.titleLabel.text, color=foreground)


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
        self.stack.addWidget(self.image_widget)
        self.stack.addWidget(self.plot_widget)
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
        self.label.setText(f"step {s.step} (live)")
        if s.kind == "images":
            self.stack.setCurrentWidget(self.image_widget)
            self.image_item.setImage(s.grid, autoLevels=False, levels=(0, 255))
            return
        self.stack.setCurrentWidget(self.plot_widget)
        x0, x1, y0, y1 = s.extent
        if s.kind == "points":
            self.curve_item.setData([], [])
            for band in self.band_items:
                band.setData([], [])
            if s.field is not None:
                levels = (0.0, 1.0) if s.field.min() >= 0 and s.field.max() <= 1 else (
                    float(s.field.min()), float(s.field.max()) + 1e-9)
                self.field_item.setImage(s.field, autoLevels=False, levels=levels)
                self.field_item.setRect(x0, y0, x1 - x0, y1 - y0)
            if s.real is not None:
                self.real_item.setData(s.real[:, 0], s.real[:, 1])
            self.fake_item.setData(s.points[:, 0], s.points[:, 1])
        else:
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
        self.plot_widget.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)

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
        self.label.setText(f"step {step}")

    def set_dark(self, dark: bool) -> None:
        set_widget_dark(self.image_widget, [], dark)
        set_widget_dark(self.plot_widget, [self.plot_widget.getPlotItem()], dark)

    def current_picture(self) -> np.ndarray | None:
        return self.image_item.image if self.stack.currentWidget() is self.image_widget else None

"""Training curves, drawn as the run's algorithm declares them (engine.events.Declaration)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from engine.events import Declaration
from studio.theme import set_widget_dark

# Repainting plots (axes above all) holds the GIL on the GUI thread and so slows the training
# thread; data arrive at any rate, but the curves repaint at most this often (bench/studio_overhead.py).
CURVES_REDRAW_MS = 500
# Reported every step by every run, and neither a curve of the model nor a setting.
SPEED = "steps_per_sec"
# Each model's own live quantities (BEGAN's k_t and M, feature matching, VAE's KL, ...) share one
# plot that appears with the first of them, one colour per name in order of arrival.
TERM_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#2ca02c", "#ff7f0e")


class SeriesBuffer:
    """Preallocated arrays that double when full; views are handed to setData without copies."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.steps = np.zeros(capacity)
        self.values: dict[str, np.ndarray] = {}  # in order of first arrival

    def append(self, step: int, values: dict) -> None:
        if self.n == len(self.steps):
            grow = len(self.steps)
            self.steps = np.concatenate([self.steps, np.zeros(grow)])
            for name in self.values:
                self.values[name] = np.concatenate([self.values[name], np.full(grow, np.nan)])
        self.steps[self.n] = step
        for name, value in values.items():
            if name not in self.values:
                self.values[name] = np.full(len(self.steps), np.nan)
            self.values[name][self.n] = value
        self.n += 1

    def has(self, name: str) -> bool:
        return name in self.values

    def series(self, name: str) -> np.ndarray:
        return self.values[name][: self.n]


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
    """One plot per declared plot, a "Model terms" plot for the rest, and a Quality plot.

    Plot items are made once per declaration (declare); new data only go through setData.
    """

    stepClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.declaration = Declaration(plots=())
        self.buffer = SeriesBuffer()
        self.ghost: SeriesBuffer | None = None
        self.markers: list[tuple[int, str]] = []
        self._marker_items: list = []
        self._dark = False
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.scene().sigMouseClicked.connect(self._clicked)  # one scene holds every plot
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(CURVES_REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        # quality measurements (modes captured, Fréchet distance, ...) come from the metrics thread
        self.quality = SeriesBuffer()
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
        self._build_plots()

    # -- plots from the declaration -------------------------------------------------------------
    def declare(self, declaration: Declaration) -> None:
        """Draw what this algorithm declares; the plots are rebuilt only when they change."""
        old, self.declaration = self.declaration, declaration
        if (old.plots, old.terms, old.settings) != (declaration.plots, declaration.terms, declaration.settings):
            self._build_plots()
        self.redraw()

    def _build_plots(self) -> None:
        self.layout_widget.clear()
        self._marker_items.clear()
        self.first_plot = None
        self.plots: dict[str, pg.PlotItem] = {}  # series name -> its plot
        self.labels: dict[str, str] = {}
        self.items: dict[str, pg.PlotDataItem] = {}
        self.ghost_items: dict[str, pg.PlotDataItem] = {}
        self._in_legend: set[str] = set()
        for row, (title, series) in enumerate(self.declaration.plots):
            plot = self._add_plot(row, title)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            for name, label, colour in series:
                self.ghost_items[name] = plot.plot(pen=pg.mkPen(colour, width=1, style=Qt.DashLine))
                self.items[name] = plot.plot(pen=pg.mkPen(colour, width=1.5))  # named once reported
                self.labels[name] = label
                self.plots[name] = plot
        self.terms_plot: pg.PlotItem | None = None
        self.term_items: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.quality_plot = self._add_plot(len(self.declaration.plots), "Quality")
        self.quality_legend = self.quality_plot.legend
        # a measurement shown with the one it is compared against (the semi-supervised D and the labels-only net)
        self.quality_companion = self.quality_plot.plot(pen=pg.mkPen("#8c564b", width=1.5, style=Qt.DashLine),
                                                        symbol="t", symbolSize=6, symbolBrush="#8c564b")
        self.quality_item = self.quality_plot.plot(pen=pg.mkPen("#9467bd", width=1.5), symbol="o", symbolSize=5,
                                                   symbolBrush="#9467bd")
        for plot in self._curve_plots():
            plot.setLogMode(y=self.log_scale.isChecked())
            for step, text in self.markers:
                self._add_marker_line(plot, step, text)
        self.set_dark(self._dark)

    def _add_plot(self, row: int, title: str) -> pg.PlotItem:
        """A plot in the given row with a legend, its step axis linked to the first plot's. No grid: an axis
        that draws one is repainted over the whole plot, which made each repaint of the panel 35-43 ms
        instead of 5-6 (bench/studio_overhead.py)."""
        plot = self.layout_widget.addPlot(row=row, col=0, title=title)
        plot.addLegend(offset=(-10, 5))
        if self.first_plot is None:
            self.first_plot = plot
        else:
            plot.setXLink(self.first_plot)
        return plot

    def _term_item(self, name: str) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
        if self.terms_plot is None:
            self.terms_plot = self._add_plot(len(self.declaration.plots) + 1, "Model terms")
            self.terms_plot.setLogMode(y=self.log_scale.isChecked())
            if self._dark:
                set_widget_dark(self.layout_widget, [self.terms_plot], True)
            for step, text in self.markers:
                self._add_marker_line(self.terms_plot, step, text)
        if name not in self.term_items:
            colour = TERM_COLOURS[len(self.term_items) % len(TERM_COLOURS)]
            ghost = self.terms_plot.plot(pen=pg.mkPen(colour, width=1, style=Qt.DashLine))
            item = self.terms_plot.plot(pen=pg.mkPen(colour, width=1.5),
                                        name=self.declaration.terms.get(name, name))
            self.term_items[name] = (ghost, item)
        return self.term_items[name]

    def _curve_plots(self) -> list:
        """The plots over training steps (markers and the log scale apply to them, not to Quality)."""
        plots = list({id(p): p for p in self.plots.values()}.values())
        return plots + ([self.terms_plot] if self.terms_plot is not None else [])

    # -- data -------------------------------------------------------------------------------------
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
        for plot in self._curve_plots():
            self._add_marker_line(plot, step, text)

    def _add_marker_line(self, plot, step: int, text: str) -> None:
        index = next((i for i, marker in enumerate(self.markers) if marker == (step, text)), 0)
        line = pg.InfiniteLine(pos=step, angle=90, pen=pg.mkPen("#888", style=Qt.DotLine), label=text,
                               labelOpts={"position": 0.9 - 0.14 * (index % 3), "color": "#555",  # neighbours apart
                                          "anchors": [(1.05, 0.5), (1.05, 0.5)]})  # left of the line, off the legend
        plot.addItem(line)
        self._marker_items.append(line)

    def declared_series(self) -> list[str]:
        return [name for _, series in self.declaration.plots for name, _, _ in series]

    def term_names(self, store: "SeriesBuffer | None" = None) -> list[str]:
        """The model's own live quantities seen so far (in this run, or in `store`), in order of arrival:
        whatever is reported outside the declared plots and settings."""
        store = self.buffer if store is None else store
        known = {*self.declared_series(), *self.declaration.settings, SPEED}
        return [name for name in store.values if name not in known]

    # -- drawing ----------------------------------------------------------------------------------
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
        self._draw_quality()

    def _draw_quality(self) -> None:
        name = self.quality_choice.currentText()
        pair = self.declaration.quality_pairs.get(name)
        self.quality_legend.clear()
        if name and self.quality.n and self.quality.has(name):
            steps = self.quality.steps[: self.quality.n]
            self.quality_item.setData(steps, self.quality.series(name), connect="finite")
            if pair and self.quality.has(pair[1]):
                label, companion, companion_label = pair
                self.quality_companion.setData(steps, self.quality.series(companion), connect="finite")
                self.quality_legend.addItem(self.quality_item, label)
                self.quality_legend.addItem(self.quality_companion, companion_label)
            else:
                self.quality_companion.setData([], [])
        else:
            self.quality_item.setData([], [])
            self.quality_companion.setData([], [])

    def _draw_series(self, item, store: SeriesBuffer | None, name: str, window: int) -> None:
        if store is None or store.n == 0 or not store.has(name):
            item.setData([], [])
            return
        y = smooth(store.series(name), window)
        if self.log_scale.isChecked():
            y = np.where(y > 0, y, np.nan)
        item.setData(store.steps[: store.n], y, connect="finite")

    def _update_legends(self) -> None:
        """A legend lists only the series this run reports (no 'W estimate' for a GAN that has none)."""
        for name, item in self.items.items():
            reported = self.buffer.n > 0 and self.buffer.has(name) and bool(
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
        for plot in self._curve_plots():
            plot.setLogMode(y=on)
        self.redraw()

    def _clicked(self, event) -> None:
        for plot in self._curve_plots():
            if plot.sceneBoundingRect().contains(event.scenePos()):
                point = plot.vb.mapSceneToView(event.scenePos())
                self.stepClicked.emit(int(round(point.x())))
                return

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        set_widget_dark(self.layout_widget, self._curve_plots() + [self.quality_plot], dark)

    def flush(self) -> None:
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self.redraw()

    # -- export -----------------------------------------------------------------------------------
    def write_csv(self, path: Path) -> None:
        """step, then the declared series (empty where a run has none), then everything else, sorted."""
        declared = self.declared_series()
        names = declared + sorted(name for name in self.buffer.values if name not in declared)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step"] + names)
            for i in range(self.buffer.n):
                row = [int(self.buffer.steps[i])]
                for name in names:
                    value = self.buffer.series(name)[i] if self.buffer.has(name) else np.nan
                    row.append("" if not np.isfinite(value) else f"{value:.6g}")
                writer.writerow(row)

    def write_png(self, path: Path) -> None:
        self.flush()
        pixmap = self.layout_widget.grab()
        if not pixmap.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")

"""A settings form generated from the config's schema (engine.config): the algorithm, then one group per
section the algorithm reads, showing only the fields that do something for this algorithm and options."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QVBoxLayout,
                               QWidget)

from engine import algorithms
from engine.config import Config, field_spec

RESTART_TIP = "Needs a restart: this setting cannot change while a run is going."
INT32 = (-2 ** 31, 2 ** 31 - 1)  # what a QSpinBox holds
ALGORITHM_TIP = "The family of model that trains (a GAN, a VAE, ...); its own settings appear below"


def _text(value) -> str:
    if isinstance(value, list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _fits_spin_box(md) -> bool:
    """A QSpinBox holds a 32-bit int: an integer field whose allowed range is bounded and fits gets one; any
    other (a seed, a step count) gets a line edit, checked by engine.config like every other typed value."""
    low, high = md.get("min"), md.get("max")
    return low is not None and high is not None and INT32[0] <= low and high <= INT32[1]


def _help(key: str) -> str:
    return ALGORITHM_TIP if key == "algorithm" else field_spec(key).metadata.get("help", "")


class ConfigForm(QWidget):
    """One widget per config field; emits edited(key, value) when the person changes one."""

    edited = Signal(str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self.boxes: dict[str, QGroupBox] = {}  # section name -> its group
        self._rows: dict[str, QFormLayout] = {}  # key -> the form layout holding its row
        self._config: Config | None = None
        self._loading = False
        self._running = False
        self._live: set[str] = set()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        top.setContentsMargins(9, 6, 9, 0)
        self.algorithm_box = QComboBox()
        self.algorithm_box.setObjectName("algorithm")
        self.algorithm_box.setToolTip(ALGORITHM_TIP)
        for name in algorithms.names():
            self.algorithm_box.addItem(name, name)
        self.algorithm_box.currentIndexChanged.connect(
            lambda i: self._changed("algorithm", self.algorithm_box.itemData(i)))
        top.addRow("algorithm", self.algorithm_box)
        self.widgets["algorithm"] = self.algorithm_box
        self._layout.addLayout(top)
        self._layout.addStretch(1)
        self._sync_sections(Config())

    # -- building -----------------------------------------------------------------------------
    def _sync_sections(self, config: Config) -> None:
        """One group per section of this config: a family's own section comes and goes with the family."""
        wanted = config.sections()
        for section in [s for s in self.boxes if s not in wanted]:
            box = self.boxes.pop(section)
            for key in [k for k in self.widgets if k.startswith(section + ".")]:
                del self.widgets[key]
                del self._rows[key]
            self._layout.removeWidget(box)
            box.setParent(None)
            box.deleteLater()
        for section, cls in wanted.items():
            if section not in self.boxes:
                self._layout.insertWidget(self._layout.count() - 1, self._make_box(section, cls))

    def _make_box(self, section: str, cls: type) -> QGroupBox:
        box = QGroupBox(section)
        box.setObjectName(f"section-{section}")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            widget = self._make_widget(key, f)
            widget.setObjectName(key)
            form.addRow(f.name.replace("_", " "), widget)
            self.widgets[key] = widget
            self._rows[key] = form
            self._apply_lock(key)
        self.boxes[section] = box
        return box

    def _make_widget(self, key: str, f: dataclasses.Field) -> QWidget:
        md = f.metadata
        kind = f.type
        if kind == "bool":
            widget = QCheckBox()
            widget.toggled.connect(lambda on, k=key: self._changed(k, on))
        elif md.get("choices"):
            widget = QComboBox()
            for choice in md["choices"]:
                widget.addItem(str(choice), choice)
            widget.currentIndexChanged.connect(lambda i, k=key, w=widget: self._changed(k, w.itemData(i)))
        elif kind == "int" and _fits_spin_box(md):
            widget = QSpinBox()
            widget.setRange(int(md["min"]), int(md["max"]))
            widget.setKeyboardTracking(False)
            widget.valueChanged.connect(lambda v, k=key: self._changed(k, v))
        else:
            widget = QLineEdit()
            widget.editingFinished.connect(lambda k=key, w=widget: self._changed(k, self._parse(k, w.text())))
        return widget

    @staticmethod
    def _parse(key: str, text: str):
        if field_spec(key).type == "list":
            return "[" + text + "]"
        return text

    def _changed(self, key: str, value) -> None:
        if not self._loading:
            self.edited.emit(key, value)

    # -- showing a config ---------------------------------------------------------------------------
    def set_config(self, config: Config) -> None:
        """Show every value of `config`, and only the sections and rows that matter for it."""
        self._loading = True
        try:
            self._config = config
            self._sync_sections(config)
            for key in ["algorithm", *config.keys()]:
                self.set_value(key, config.get(key))
        finally:
            self._loading = False
        self.refresh_visibility()

    def refresh_visibility(self) -> None:
        """Hide the rows that do nothing for this config (BEGAN has no gradient penalty), and empty groups."""
        if self._config is None:
            return
        for section, box in self.boxes.items():
            shown = False
            for key in [k for k in self._rows if k.startswith(section + ".")]:
                relevant = self._config.relevant(key)
                self._rows[key].setRowVisible(self.widgets[key], relevant)
                shown = shown or relevant
            box.setVisible(shown)

    def is_shown(self, key: str) -> bool:
        """Whether a person sees this field's row (its group shown and the row in it)."""
        widget = self.widgets.get(key)
        return widget is not None and widget.isVisibleTo(self)

    def set_value(self, key: str, value) -> None:
        widget = self.widgets[key]
        was = self._loading
        self._loading = True
        try:
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex(max(0, widget.findData(value)))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            else:
                widget.setText(_text(value))
            widget.setStyleSheet("")
        finally:
            self._loading = was

    def mark_error(self, key: str, message: str) -> None:
        widget = self.widgets.get(key)
        if widget is not None:
            widget.setStyleSheet("border: 1px solid #d33;")
            widget.setToolTip(message)

    # -- running -----------------------------------------------------------------------------------
    def set_running(self, running: bool, live_keys=()) -> None:
        """While a run goes, only its live controls stay editable; the rest say why they are locked."""
        self._running, self._live = running, set(live_keys)
        for key in self.widgets:
            self._apply_lock(key)

    def _apply_lock(self, key: str) -> None:
        widget = self.widgets[key]
        locked = self._running and key not in self._live
        widget.setEnabled(not locked)
        widget.setToolTip(RESTART_TIP if locked else _help(key))
        widget.setProperty("live", key in self._live)

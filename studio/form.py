"""A settings form generated from the preset schema (engine.config)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QVBoxLayout,
                               QWidget)

from engine.config import SECTIONS, Config, field_spec, live_keys

RESTART_TIP = "Needs a restart: this setting cannot change while a run is going."


def _text(value) -> str:
    if isinstance(value, list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class ConfigForm(QWidget):
    """One widget per preset field; emits edited(key, value) when the person changes one."""

    edited = Signal(str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self._loading = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for section, cls in SECTIONS.items():
            box = QGroupBox(section)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for f in dataclasses.fields(cls):
                key = f"{section}.{f.name}"
                widget = self._make_widget(key, f)
                widget.setToolTip(f.metadata.get("help", ""))
                widget.setObjectName(key)
                form.addRow(f.name.replace("_", " "), widget)
                self.widgets[key] = widget
            layout.addWidget(box)
        layout.addStretch(1)

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
        elif kind == "int":
            widget = QSpinBox()
            widget.setRange(int(md.get("min") or 0), int(md.get("max") or 10_000_000))
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

    def set_config(self, config: Config) -> None:
        self._loading = True
        try:
            for key, widget in self.widgets.items():
                self.set_value(key, config.get(key))
        finally:
            self._loading = False

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

    def set_running(self, running: bool) -> None:
        """While a run goes, only live fields stay editable; the rest say why they are locked."""
        live = set(live_keys())
        for key, widget in self.widgets.items():
            locked = running and key not in live
            widget.setEnabled(not locked)
            help_text = field_spec(key).metadata.get("help", "")
            widget.setToolTip(RESTART_TIP if locked else help_text)
            widget.setProperty("live", key in live)

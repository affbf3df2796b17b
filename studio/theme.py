"""Light and dark: the plots' colours (pyqtgraph) and the widgets' palette (Qt)."""

from __future__ import annotations

import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")

DARK_PALETTE = (("Window", "#2b2b2b"), ("WindowText", "#e0e0e0"), ("Base", "#1e1e1e"), ("AlternateBase", "#2b2b2b"),
                ("Text", "#e0e0e0"), ("Button", "#3a3a3a"), ("ButtonText", "#e0e0e0"), ("Highlight", "#2f65ca"),
                ("HighlightedText", "#ffffff"), ("ToolTipBase", "#3a3a3a"), ("ToolTipText", "#e0e0e0"))


def set_widget_dark(widget, plots, dark: bool) -> None:
    """A pyqtgraph widget's background, and its plots' axes and titles, for the theme."""
    background, foreground = ("#1e1e1e", "#d0d0d0") if dark else ("w", "k")
    widget.setBackground(background)
    for plot in plots:
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
        plot.titleLabel.setText(plot.titleLabel.text, color=foreground)


def apply_palette(app, dark: bool) -> None:
    """The application's widget colours: Fusion with a dark palette, or the style's own."""
    from PySide6.QtGui import QColor, QPalette
    if dark:
        app.setStyle("Fusion")
        palette = QPalette()
        for role, colour in DARK_PALETTE:
            palette.setColor(getattr(QPalette, role), QColor(colour))
        app.setPalette(palette)
    else:
        app.setPalette(app.style().standardPalette())

"""Entry point of the studio window."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from studio.window import MainWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("GAN Studio")
    app.setOrganizationName("GAN Studio")
    window = MainWindow()
    window.show()
    install_quit_signals(app, window)
    return app.exec()


def install_quit_signals(app, window) -> None:
    """Ctrl-C in the terminal that started the studio, or SIGTERM: close the window as File → Quit would,
    saving a checkpoint of a running training first (the worker ignores SIGINT and waits to be told).
    Python handles signals only when it runs, so a timer gives it the chance every 200 ms."""
    import signal

    from PySide6.QtCore import QTimer

    def quit_saving(signum, frame):
        window.close_policy = "save"
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, quit_saving)
    signal.signal(signal.SIGTERM, quit_saving)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
    app._signal_timer = timer  # kept alive with the application


if __name__ == "__main__":
    sys.exit(main())

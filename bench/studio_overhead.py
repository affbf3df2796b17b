"""What the window costs: the same preset and steps headless and with the studio attached,
plus event-loop latency of the window while it trains at full speed.

    python bench/studio_overhead.py [--preset ring8] [--steps 1500] [--quick]

Prints steps/s both ways, their ratio, and p50 / p99 of how late a 10 ms timer fires on
the GUI thread (the time a click or key press would wait).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np


def headless(preset: str, steps: int, tmp: Path) -> float:
    from engine.presets import load_preset
    from engine.loop import Trainer
    trainer = Trainer(load_preset(preset), run_dir=tmp)
    start = time.perf_counter()
    trainer.run(steps)
    return steps / (time.perf_counter() - start)


def windowed(preset: str, steps: int, tmp: Path, probe_latency: bool = False) -> tuple[float, np.ndarray]:
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.window import MainWindow
    app = QApplication.instance() or QApplication([])
    tmp.mkdir(parents=True, exist_ok=True)
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    win.resize(1400, 900)
    win.show()
    win.select_preset(preset)
    win.config.set("train.steps", steps)
    lateness = []
    probe = QTimer()
    probe.setInterval(10)
    clock = QElapsedTimer()
    last = {"t": None}

    def tick():
        now = clock.nsecsElapsed() / 1e6
        if last["t"] is not None:
            lateness.append(max(0.0, now - last["t"] - 10.0))
        last["t"] = now

    probe.timeout.connect(tick)
    times = {}
    win.bridge.started.connect(lambda e: times.setdefault("start", time.perf_counter()))
    win.bridge.finished.connect(lambda e: (times.setdefault("end", time.perf_counter()), app.quit()))
    clock.start()
    if probe_latency:  # the probe's own wake-ups cost the trainer GIL time, so it runs separately
        probe.start()
    QTimer.singleShot(0, win.start)
    app.exec()
    probe.stop()
    win.close()
    return steps / (times["end"] - times["start"]), np.array(lateness)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="ring8")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="alternate the two this many times")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps = 400 if args.quick else args.steps
    repeat = 1 if args.quick else args.repeat
    bares, showns, lateness = [], [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["GAN_STUDIO_HOME"] = str(tmp / "home")
        for i in range(repeat):
            bares.append(headless(args.preset, steps, tmp / f"h{i}"))
            showns.append(windowed(args.preset, steps, tmp / f"w{i}")[0])
        probed, lateness = windowed(args.preset, steps, tmp / "probe", probe_latency=True)
    bare, shown = float(np.median(bares)), float(np.median(showns))
    print(f"preset {args.preset}, {steps} steps, median of {repeat} alternating runs, "
          f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
    print(f"{'':24s}{'steps/s':>10s}   runs")
    print(f"{'headless engine':24s}{bare:10.1f}   " + " ".join(f"{v:.1f}" for v in bares))
    print(f"{'studio window':24s}{shown:10.1f}   " + " ".join(f"{v:.1f}" for v in showns))
    print(f"ratio window / headless: {shown / bare:.3f}  (window cost {100 * (1 - shown / bare):.1f}%)")
    print(f"with the 10 ms latency probe running: {probed:.1f} steps/s")
    print(f"GUI event-loop lateness of a 10 ms timer: p50 {np.percentile(lateness, 50):.1f} ms, "
          f"p99 {np.percentile(lateness, 99):.1f} ms, max {lateness.max():.1f} ms over {len(lateness)} ticks")


if __name__ == "__main__":
    main()

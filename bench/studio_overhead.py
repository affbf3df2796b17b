"""What the window costs: the same preset and steps headless and with the studio attached,
plus event-loop latency of the window while it trains at full speed.

    python bench/studio_overhead.py [--preset ring8] [--steps 3000] [--repeat 7] [--quick]

Runs headless and windowed alternately (after one warm-up of each, not counted), and prints
steps/s both ways, the ratio of each pair and their median with its spread (half the
interquartile range), the p50 / p99 of how late a 10 ms timer fires on the GUI thread (the
time a click or key press would wait), and how long one repaint of the curves panel takes,
as shipped and with a grid. Each number is printed beside issue 18's goal.
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


def paint_cost(grid: bool) -> tuple[float, float]:
    """Median and max ms of one repaint of the curves panel holding 300 reports of a GAN run."""
    from types import SimpleNamespace
    from PySide6.QtWidgets import QApplication
    import studio.theme  # noqa: F401  (pyqtgraph's options, as the studio sets them)
    from engine.algorithms.gan import GanAlgorithm
    from engine.presets import load_preset
    from studio.curves import CurvesPanel
    app = QApplication.instance() or QApplication([])
    panel = CurvesPanel()
    panel.resize(700, 800)
    panel.show()
    panel.declare(GanAlgorithm.declare(load_preset("ring8")))
    if grid:
        for plot in panel._curve_plots() + [panel.quality_plot]:
            plot.showGrid(x=True, y=True, alpha=0.2)
    rng = np.random.default_rng(0)
    report = lambda step: SimpleNamespace(group="train", step=step, values={
        "d_loss": 1 + 0.1 * rng.normal(), "g_loss": 0.7 + 0.1 * rng.normal(), "d_real": 0.5,
        "d_fake": 0.4 + 0.01 * rng.normal(), "grad_norm_d": 1 + rng.random(), "grad_norm_g": 1.0})
    panel.add_metrics([report(10 * i) for i in range(1, 301)])
    panel.flush()
    app.processEvents()
    took = []
    for i in range(20):
        panel.add_metrics([report(3010 + 10 * i)])
        panel.flush()
        start = time.perf_counter()
        panel.layout_widget.viewport().repaint()
        took.append(1000 * (time.perf_counter() - start))
    panel.close()
    return float(np.median(took)), max(took)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="ring8")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=7, help="alternate the two this many times")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the trainer on both sides (0: torch's default). On 2 cores, 2 threads "
                             "swing a run between 270 and 360 steps/s; 1 thread stays within 2 %%")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.threads:  # before torch is imported here or in the worker process, which inherits it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    steps = 400 if args.quick else args.steps
    repeat = 1 if args.quick else args.repeat
    paints = {grid: paint_cost(grid) for grid in (False, True)}  # before the runs: their app has quit by then
    bares, showns = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["GAN_STUDIO_HOME"] = str(tmp / "home")
        if not args.quick:  # the first run of each pays for imports and caches
            headless(args.preset, steps, tmp / "warm-h")
            windowed(args.preset, steps, tmp / "warm-w")
        for i in range(repeat):
            bares.append(headless(args.preset, steps, tmp / f"h{i}"))
            showns.append(windowed(args.preset, steps, tmp / f"w{i}")[0])
        probed, lateness = windowed(args.preset, steps, tmp / "probe", probe_latency=True)
    from bench.throughput import median_spread
    ratios = np.array(showns) / np.array(bares)
    ratio, spread = median_spread(ratios)
    p99 = float(np.percentile(lateness, 99))
    met = lambda ok: "met" if ok else "NOT met"
    print(f"preset {args.preset}, {steps} steps, {repeat} alternating pairs after a warm-up, torch threads "
          f"{args.threads or 'default'}, QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
    print(f"{'':24s}{'steps/s':>10s}   runs")
    print(f"{'headless engine':24s}{np.median(bares):10.1f}   " + " ".join(f"{v:.1f}" for v in bares))
    print(f"{'studio window':24s}{np.median(showns):10.1f}   " + " ".join(f"{v:.1f}" for v in showns))
    print("window / headless, each pair: " + " ".join(f"{v:.3f}" for v in ratios))
    print(f"window / headless: median {ratio:.3f} ± {spread:.3f} (half the interquartile range)   "
          f"goal ≥ 0.95: {met(ratio >= 0.95)}; spread goal ±0.03: {met(spread <= 0.03)}")
    print(f"with the 10 ms latency probe running: {probed:.1f} steps/s")
    print(f"GUI event-loop lateness of a 10 ms timer: p50 {np.percentile(lateness, 50):.1f} ms, "
          f"p99 {p99:.1f} ms, max {lateness.max():.1f} ms over {len(lateness)} ticks   goal p99 ≤ 30 ms: {met(p99 <= 30)}")
    for grid, (median, worst) in paints.items():
        print(f"one repaint of the curves panel{' with a grid (not shipped)' if grid else ''}: "
              f"median {median:.1f} ms, max {worst:.1f} ms")


if __name__ == "__main__":
    main()

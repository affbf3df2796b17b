"""How fast the latent explorer's picture follows a slider, on this machine.

    python bench/explorer_latency.py [CHECKPOINT] [--moves 200]

Without a checkpoint it trains infogan_fashion for 20 steps first (on Fashion-MNIST when it is
installed, else on generated stand-in images; the latency does not depend on the weights).
Prints p50 / p99 of the time from moving a slider to the new picture being on screen
(debounce + generator forward pass on the explorer's thread + drawing).
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


def make_checkpoint(tmp: Path) -> Path:
    from engine.cli import main as cli
    from engine.data.images import DEBIAN_FASHION_MNIST
    extra = []
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from conftest import make_fake_idx_dir
        extra = ["--set", f"data.path={str(make_fake_idx_dir(tmp / 'fake'))!r}"]
    cli(["train", "infogan_fashion", "--steps", "20", "--out", str(tmp / "run"), "--set", "metrics_every=0"] + extra)
    return tmp / "run" / "checkpoints" / "step_0000020.pt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--moves", type=int, default=200)
    args = parser.parse_args()
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.window import MainWindow
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["GAN_STUDIO_HOME"] = str(tmp / "home")
        checkpoint = Path(args.checkpoint) if args.checkpoint else make_checkpoint(tmp)
        win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat))
        win.show()
        panel = win.explorer

        def wait_for_picture():
            loop = QEventLoop()
            panel.pictureShown.connect(loop.quit)
            QTimer.singleShot(10_000, loop.quit)
            loop.exec()
            panel.pictureShown.disconnect(loop.quit)

        panel.load_checkpoint(checkpoint)
        wait_for_picture()
        slider = panel.sliders[0][0]
        rng = np.random.default_rng(0)
        total = []
        for _ in range(args.moves):
            start = time.perf_counter()
            slider.setValue(int(rng.integers(0, slider.maximum() + 1)))
            wait_for_picture()
            total.append((time.perf_counter() - start) * 1000)
        compute = np.array(panel.latencies_ms[1:])
        total = np.array(total)
        shape = panel.picture.shape
        win.close()
    print(f"latent explorer, {args.moves} slider moves, picture {shape[1]}x{shape[0]}, "
          f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
    print(f"slider moved -> picture shown: p50 {np.percentile(total, 50):.1f} ms, p99 {np.percentile(total, 99):.1f} ms")
    print(f"  of which request -> forward pass -> shown (after the {10} ms debounce): "
          f"p50 {np.percentile(compute, 50):.1f} ms, p99 {np.percentile(compute, 99):.1f} ms")


if __name__ == "__main__":
    main()

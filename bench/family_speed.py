"""Steps per second of presets on this machine, one after another, nothing else running.

    python bench/family_speed.py [--steps 200] [--presets pix2pix_edges,cyclegan_edges,...]

Each preset is built (its data loaded), trained `warmup` steps, then timed over `steps` more steps with no run
folder, no quality metrics and no samples beyond the first, so the number is the training step's own cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.loop import Trainer
from engine.presets import load_preset

DEFAULT = ("dcgan_fashion,pix2pix_edges,cyclegan_edges,distancegan_edges,dtn_edges,srgan_fashion,lapgan_fashion,"
           "stackgan_fashion,composite_fashion,gran_fashion")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--presets", default=DEFAULT)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    for preset in args.presets.split(","):
        config = load_preset(preset, ["train.metrics_every=0", "train.sample_every=1000000",
                                      "train.report_every=50", "train.steps=1000000"])
        start = time.perf_counter()
        trainer = Trainer(config)
        built = time.perf_counter() - start
        trainer.run(args.warmup)
        start = time.perf_counter()
        trainer.run(args.warmup + args.steps)
        rate = args.steps / (time.perf_counter() - start)
        params = sum(p.numel() for net in trainer.nets.values() for p in net.parameters())
        print(f"  {preset:<20} {rate:6.1f} steps/s   data and networks built in {built:4.1f} s   "
              f"{params / 1e6:5.2f} M parameters", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

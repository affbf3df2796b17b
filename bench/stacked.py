"""Generators that work in stages against DCGAN at the same wall-clock budget, one run, this CPU.

    python bench/stacked.py [--minutes 3] [--n 2000] [--only dcgan_fashion lapgan_fashion ...]

Each preset trains for the same wall time (checked every 25 steps) on Fashion-MNIST with the studio's own
engine, then n samples of its sampling networks (the EMA copies where the preset keeps them) are scored
against n test images in the evaluator's space: Fréchet distance, precision, recall and the KL divergence
of the class histogram from uniform (engine.metrics.images.image_quality). StackGAN's own probe adds text
faithfulness (the evaluator's accuracy at recognising the class its description names) and the Fréchet
distance of stage I (enlarged) against stage II's. StackGAN trains stage I first: its stage1_steps is set so that
about --stage1-share of the budget's steps go to stage I.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.data import make_test_set
from engine.device import inputs_to
from engine.loop import Trainer
from engine.metrics.images import image_quality
from engine.presets import load_preset

PRESETS = ("dcgan_fashion", "lapgan_fashion", "stackgan_fashion", "composite_fashion", "gran_fashion")
CHUNK = 25


def train_for(preset: str, seconds: float, overrides=()) -> tuple[Trainer, float]:
    config = load_preset(preset, ["train.metrics_every=0", "train.steps=10000000", *overrides])
    trainer = Trainer(config)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert trainer.run(trainer.step + CHUNK) == "done", preset
    return trainer, time.perf_counter() - start


@torch.no_grad()
def score(trainer: Trainer, real: torch.Tensor, n: int) -> dict:
    inputs = trainer.algorithm.random_inputs(n, torch.Generator().manual_seed(123))
    fake = torch.cat([trainer.generate(inputs_to({k: v[i:i + 500] if torch.is_tensor(v) else v
                                                  for k, v in inputs.items()}, trainer.device)).float().cpu()
                      for i in range(0, n, 500)])
    values = image_quality(real, fake)
    for probe in trainer.algorithm.quality_probes():
        snap = probe.snapshot(trainer) if getattr(probe, "takes_source", False) else probe.snapshot()
        values.update(probe.compute(snap))
    return values


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--only", nargs="+", default=list(PRESETS))
    parser.add_argument("--stage1-share", type=float, default=0.5,
                        help="StackGAN: the share of the budget's steps given to stage I (its preset's stage1_steps "
                             "assumes 10,000 steps), from --stage-rate")
    parser.add_argument("--stage-rate", type=float, default=15.0,
                        help="StackGAN's expected steps/s over both stages on this machine, to place stage1_steps")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu; {args.minutes:g} minutes each, "
          f"{args.n} samples against {args.n} test images (evaluator space)")
    test = make_test_set(load_preset("dcgan_fashion"))
    real = test.scaled(torch.randperm(len(test), generator=torch.Generator().manual_seed(4))[:args.n])
    print(f"  {'preset':<20}{'steps':>7}{'Fréchet':>9}{'prec':>7}{'recall':>8}{'class KL':>9}  other")
    for preset in args.only:
        overrides = []
        if preset == "stackgan_fashion":
            stage1 = int(args.minutes * 60 * args.stage_rate * args.stage1_share)
            overrides = [f"stackgan.stage1_steps={stage1}"]
            print(f"  (stackgan.stage1_steps = {stage1})")
        trainer, wall = train_for(preset, args.minutes * 60, overrides)
        v = score(trainer, real, args.n)
        known = ("frechet_distance", "precision", "recall", "class_kl")
        other = ", ".join(f"{k} {val:.3f}" for k, val in v.items() if k not in known and isinstance(val, float))
        print(f"  {preset:<20}{trainer.step:>7}{v['frechet_distance']:>9.1f}{v['precision']:>7.2f}{v['recall']:>8.2f}"
              f"{v.get('class_kl', float('nan')):>9.3f}  {other}  ({wall:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

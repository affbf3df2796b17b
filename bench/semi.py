"""Semi-supervised GANs at 100 labels, side by side in one run, and the birthday-paradox support estimates.

    python bench/semi.py [--steps 1500] [--seeds 0 1 2] [--s 800]

For each seed, the same number of steps of sgan_fashion, triplegan_fashion and badgan_fashion (the studio's
own engine, real Fashion-MNIST, 100 labels: 10 per class, chosen by the seed). Each run trains a labels-only
copy of its classifier beside it; the labels-only row is the SGAN run's copy (the same network, the same 100
labels). Printed: test accuracy on 2,000 held-out images, mean and spread over the seeds, and wall time per
run. Then the birthday test (engine.metrics.birthday) at the same s for a DCGAN trained as long, the SGAN of
seed 0, and real test images: duplicates found and the support estimate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.data import make_test_set
from engine.loop import Trainer
from engine.metrics.birthday import calibrate, find_duplicates, size_ladder, support_estimate
from engine.metrics.evaluator import load_evaluator
from engine.presets import load_preset

FAMILIES = (("SGAN", "sgan_fashion"), ("Triple-GAN", "triplegan_fashion"), ("Bad GAN", "badgan_fashion"))
CLAIMS = ("Triple-GAN's C beats SGAN (Li et al.); Bad GAN beats feature-matching SGAN (Dai et al.); as quoted, "
          "both on MNIST / SVHN / CIFAR-10 with their own networks, not measured here.")


def train(preset: str, steps: int, seed: int) -> tuple[Trainer, float]:
    config = load_preset(preset, [f"train.seed={seed}", "train.metrics_every=0", "train.metrics_samples=2000"])
    trainer = Trainer(config)
    start = time.perf_counter()
    assert trainer.run(steps) == "done", preset
    return trainer, time.perf_counter() - start


def accuracies(trainer) -> dict:
    values = {}
    for probe in trainer.algorithm.quality_probes():
        values.update(probe.compute(probe.snapshot()))
    return values


def birthday(draw, calibration, evaluator, s: int, trials: int = 5) -> str:
    first = find_duplicates(draw(s, 0), calibration, evaluator, k=1)
    estimate = support_estimate(draw, size_ladder(50, s), calibration, evaluator, trials)
    return f"{first.verdict()}  {estimate.sentence()}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--s", type=int, default=800, help="batch size of the birthday test")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"{args.steps} steps each, 100 labels, seeds {args.seeds}; test accuracy on 2,000 held-out images")
    rows = {name: [] for name in ("labels only", *(n for n, _ in FAMILIES))}
    walls = {name: [] for name, _ in FAMILIES}
    kept = {}
    for seed in args.seeds:
        for name, preset in FAMILIES:
            trainer, wall = train(preset, args.steps, seed)
            values = accuracies(trainer)
            rows[name].append(values["test_accuracy"])
            walls[name].append(wall)
            if name == "SGAN":
                rows["labels only"].append(values["baseline_accuracy"])
                if seed == args.seeds[0]:
                    kept["SGAN"] = trainer
            print(f"  seed {seed} {name:11s} test accuracy {values['test_accuracy']:.4f} "
                  f"(its labels-only copy {values.get('baseline_accuracy', float('nan')):.4f})  {wall:6.1f} s",
                  flush=True)
    print(f"\n{'':14s}{'mean':>8s}{'spread':>9s}{'wall s':>9s}")
    for name, values in rows.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        wall = statistics.mean(walls[name]) if name in walls else float("nan")
        print(f"{name:14s}{statistics.mean(values):8.4f}{spread:9.4f}{wall:9.1f}")
    print(f"paper claims: {CLAIMS}")

    print(f"\nBirthday test at s = {args.s} (5 batches per size on the √2 ladder from 50):")
    dcgan, wall = train("dcgan_fashion", args.steps, args.seeds[0])
    kept = {"DCGAN": dcgan, **kept}
    evaluator = load_evaluator()
    test = make_test_set(load_preset("dcgan_fashion"))
    calibration = calibrate(test.images.cpu(), evaluator)
    for name, trainer in kept.items():
        def draw(n, t, trainer=trainer):
            inputs = trainer.algorithm.random_inputs(n, torch.Generator().manual_seed(1000 * (t + 1) + n))
            return trainer.generate({k: None if v is None else v.to(trainer.device) for k, v in inputs.items()})
        start = time.perf_counter()
        print(f"  {name:6s} {birthday(draw, calibration, evaluator, args.s)}  ({time.perf_counter() - start:.0f} s)")
    images = test.images.float().div(127.5).sub(1.0)

    def real(n, t):
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(t * 7 + n))[:n]]
    print(f"  {'real':6s} {birthday(real, calibration, evaluator, args.s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

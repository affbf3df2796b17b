"""What each model of the catalog reaches on a fixed CPU budget, side by side with DCGAN.

    python bench/catalog.py [--steps 1000] [--quick]

Every preset trains for the same number of generator steps on Fashion-MNIST, then the
evaluator scores 2,000 samples (Fréchet distance, precision, recall, class KL; not Inception
FID) and the table adds each model's own live quantity, averaged over its last five reports:
BEGAN's k_t and convergence M, EBGAN's energies, the loss-sensitive margin, the VAE's KL,
the Lipschitz bound of a spectrally normalised D, and for the semi-supervised GAN the test
accuracy of D against the same network trained on the 100 labels alone.
Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine import events as ev
from engine.presets import load_preset
from engine.data.images import DEBIAN_FASHION_MNIST
from engine.loop import Trainer

PRESETS = ("dcgan_fashion", "improved_fashion", "noise_annealing_fashion", "sngan_fashion", "ebgan_fashion",
           "began_fashion", "loss_sensitive_fashion", "sgan_fashion", "vae_fashion")
OWN = ("began_k", "convergence", "energy_real", "energy_fake", "ls_margin", "ls_violated", "kl", "recon",
       "d_lipschitz_bound", "feature_matching", "instance_noise")


def run(name: str, steps: int) -> tuple[dict, dict, float]:
    config = load_preset(name, [f"train.steps={steps}", f"metrics_every={steps}", "metrics_samples=2000",
                                "report_every=20"])
    train, quality = [], {}

    def emit(event):
        if isinstance(event, ev.Metrics):
            if event.group == "quality":
                quality.update(event.values)
            else:
                train.append(event.values)

    start = time.perf_counter()
    Trainer(config, emit=emit).run()
    seconds = time.perf_counter() - start
    own = {k: float(np.mean([t[k] for t in train[-5:] if k in t])) for k in OWN if any(k in t for t in train[-5:])}
    return quality, own, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 steps each, to check the script runs")
    parser.add_argument("--only", nargs="*", default=None, help="a subset of the presets")
    args = parser.parse_args()
    if not DEBIAN_FASHION_MNIST.is_dir():
        print("Fashion-MNIST is not in /usr/share/datasets/fashion-mnist; the presets will download it.")
    steps = 100 if args.quick else args.steps
    print(f"{steps} generator steps each, CPU unless CUDA is present\n")
    print(f"{'preset':26s} {'time':>6s} {'Fréchet':>8s} {'prec':>5s} {'recall':>6s} {'classKL':>7s}  own quantities")
    for name in args.only or PRESETS:
        quality, own, seconds = run(name, steps)
        q = lambda k, f: format(quality[k], f) if k in quality else "-"
        extra = dict(own)
        for k in ("test_accuracy", "baseline_accuracy"):
            if k in quality:
                extra[k] = quality[k]
        own_text = "  ".join(f"{k} {v:.3g}" for k, v in extra.items())
        print(f"{name:26s} {seconds:5.0f}s {q('frechet_distance', '8.1f')} {q('precision', '5.2f')} "
              f"{q('recall', '6.2f')} {q('class_kl', '7.2f')}  {own_text}", flush=True)


if __name__ == "__main__":
    main()

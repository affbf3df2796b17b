"""Do the Fashion-MNIST presets show their paper's behaviour within the time a person waits on a CPU?

    python bench/paper_goals.py [--only dcgan,began,loss_sensitive,infogan] [--seeds 0]
                                [--set KEY=VALUE ...] [--scale 1.0] [--quick]

Each row is issue 18's, printed beside its goal with met / NOT met:
  dcgan           1,000 steps; the preview (the EMA copy of G where the preset keeps one; dcgan_fashion
                  no longer does) against the trained G, in the evaluator's space: never worse.
  began           10 minutes of training: varied samples (class KL < 0.5) and k_t moving.
  loss_sensitive  1,000 steps: the share of pairs that violate their margin falls.
  infogan         15 minutes of training: the categorical code matches the labels (≥ 60 %).
Budgets are wall-clock minutes on this machine (--scale multiplies them; --quick is a smoke run of
seconds). --seeds 0,1,2 runs each row once per seed, one after another; --set changes a setting of every
row's preset. Quality is measured on 1,000 samples every quarter of the budget, InfoGAN's code accuracy on
the 10,000 test images. Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine import events as ev
from engine.data.images import DEBIAN_FASHION_MNIST
from engine.loop import Trainer
from engine.metrics.live import QualityProbe
from engine.presets import load_preset

met = lambda ok: "met" if ok else "NOT met"
SETS: list[str] = []  # --set: settings changed in every row's preset


class Reports(list):
    """The run's train reports, as an emit callable."""

    def __call__(self, event) -> None:
        if isinstance(event, ev.Metrics) and event.group == "train":
            self.append(dict(event.values))

    def series(self, name: str) -> list[float]:
        return [float(values[name]) for values in self if name in values]


def trainer_for(preset: str, seed: int, *overrides: str) -> tuple[Trainer, Reports]:
    reports = Reports()
    sets = ["metrics_every=0", "train.tensorboard=false", f"train.seed={seed}", *overrides, *SETS]
    config = load_preset(preset, sets)
    return Trainer(config, emit=reports), reports


def probe_for(trainer: Trainer, samples: int = 1000) -> QualityProbe:
    """One per run, as the training loop keeps one: the real images are read and embedded once."""
    trainer.config.train.metrics_samples = samples
    return QualityProbe(trainer, trainer.algorithm.quality_probes())


def quality(trainer: Trainer, probe: QualityProbe) -> dict:
    return probe.compute(probe.snapshot(trainer))


def for_minutes(trainer: Trainer, minutes: float, checks: int = 4) -> list[tuple[int, float, dict]]:
    """Train in chunks for `minutes` of wall time (training only); quality after each quarter."""
    seen, trained, chunk, probe = [], 0.0, 50, probe_for(trainer)
    for check in range(1, checks + 1):
        while trained < minutes * 60 * check / checks:
            start = time.perf_counter()
            trainer.run(trainer.step + chunk)
            trained += time.perf_counter() - start
        seen.append((trainer.step, trained, quality(trainer, probe)))
    return seen


def dcgan(scale: float, quick: bool, seed: int) -> None:
    steps = 20 if quick else int(1000 * scale)
    trainer, _ = trainer_for("dcgan_fashion", seed)
    trainer.run(steps)
    probe = probe_for(trainer)
    preview = quality(trainer, probe)
    ema, trainer.ema = trainer.ema, {}
    trained = quality(trainer, probe)
    trainer.ema = ema
    print(f"dcgan_fashion, seed {seed}, {steps} steps, evaluator space, 1,000 samples:")
    shown = "preview (EMA G)" if ema else "preview (G)"  # the preset keeps no EMA: it scored worse than G
    for name, q in ((shown, preview), ("trained G", trained)):
        print(f"  {name:16s} Fréchet {q['frechet_distance']:7.1f}  precision {q['precision']:.3f}  "
              f"recall {q['recall']:.3f}  class KL {q['class_kl']:.3f}")
    ok = preview["frechet_distance"] <= 1.05 * trained["frechet_distance"]
    print(f"  goal: the preview is never worse than the trained G (Fréchet within 5 %): {met(ok)}")


def began(scale: float, quick: bool, seed: int) -> None:
    minutes = 0.1 if quick else 10 * scale
    trainer, reports = trainer_for("began_fashion", seed)
    seen = for_minutes(trainer, minutes)
    k = reports.series("began_k")
    print(f"began_fashion, seed {seed}, {minutes:g} minutes:")
    for step, took, q in seen:
        print(f"  step {step:6d} ({took:5.0f} s)  class KL {q['class_kl']:.3f}  Fréchet {q['frechet_distance']:7.1f}  "
              f"recall {q['recall']:.3f}")
    best = min(q["class_kl"] for _, _, q in seen)
    moving = len(k) > 1 and max(k) > 0 and len(set(np.round(k, 6))) > len(k) // 2
    print(f"  k_t from {k[0]:.4f} to {k[-1]:.4f}, largest {max(k):.4f}")
    print(f"  goal: class KL < 0.5 (best {best:.3f}): {met(best < 0.5)}; k_t moving: {met(moving)}")


def loss_sensitive(scale: float, quick: bool, seed: int) -> None:
    steps = 40 if quick else int(1000 * scale)
    trainer, reports = trainer_for("loss_sensitive_fashion", seed, "report_every=10")
    trainer.run(steps)
    violated = reports.series("ls_violated")
    quarters = [float(np.mean(part)) for part in np.array_split(np.array(violated), 4) if len(part)]
    q = quality(trainer, probe_for(trainer))
    print(f"loss_sensitive_fashion, seed {seed}, {steps} steps: share of pairs violating their margin, by quarter: "
          + " ".join(f"{v:.2f}" for v in quarters) + f"; Fréchet {q['frechet_distance']:.1f}")
    print(f"  goal: the margin is met by a growing share (violations fall): {met(quarters[-1] < quarters[0])}")


def infogan(scale: float, quick: bool, seed: int) -> None:
    minutes = 0.1 if quick else 15 * scale
    trainer, reports = trainer_for("infogan_fashion", seed)
    seen = for_minutes(trainer, minutes)
    print(f"infogan_fashion, seed {seed}, {minutes:g} minutes:")
    for step, took, q in seen:
        print(f"  step {step:6d} ({took:5.0f} s)  code accuracy {100 * q['code_accuracy']:.1f} %  "
              f"Fréchet {q['frechet_distance']:.1f}")
    categorical = reports.series("info_categorical")
    if categorical:
        print(f"  Q's categorical cross-entropy: {categorical[0]:.3f} at the first report, {categorical[-1]:.4f} "
              f"at the last")
    best = max(q["code_accuracy"] for _, _, q in seen)
    print(f"  goal: code accuracy ≥ 60 % within 15 minutes (best {100 * best:.1f} %): {met(best >= 0.6)}")


ROWS = {"dcgan": dcgan, "began": began, "loss_sensitive": loss_sensitive, "infogan": infogan}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ROWS), help="comma-separated rows: " + ", ".join(ROWS))
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds; each row runs once per seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting of every row's preset (repeatable)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget by this")
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    args = parser.parse_args()
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        print("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); nothing to measure.")
        return
    SETS.extend(args.set)
    for name in args.only.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            ROWS[name](args.scale, args.quick, seed)
            sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Image-to-image families side by side in one run, on the built-in Fashion-MNIST tasks (32 x 32, grey).

    python bench/img2img.py [--steps 3000] [--held 1000] [--only pix2pix unpaired srgan]

Every row trains the studio's own engine from its preset for the same number of steps (one seed) and is scored
on the first `held` pairs of the test split, which training never sees (engine.img2img.metrics: L1, PSNR,
SSIM, Fréchet distance in the evaluator's space, sharpness = mean |Laplacian| beside the targets').

1. pix2pix (edges → item) against the same U-Net trained with L1 alone (pix2pix.gan_weight = 0), the paper's
   ablation: L1 alone should blur (sharpness below the targets'), the GAN term sharpen.
2. The unpaired task (A = items, B = edge maps of other items): CycleGAN, DistanceGAN and DTN, A → B error against
   the true pairs beside two trivial maps: the fixed edge detector itself (the truth, an upper bound) and the
   identity (the item unchanged, a lower bound); CycleGAN's cycle reconstruction error over training.
3. SRGAN (8 x 8 → 32 x 32) against bicubic up-sampling and the same G trained on the pixel MSE alone (SRResNet):
   the paper's claim is that SRGAN trades PSNR for realism (lower PSNR, lower Fréchet distance, sharper).
Printed with steps per second and wall time of each row (this CPU; compare only rows of one run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from engine import events as ev
from engine.img2img.data import edge_map
from engine.img2img.metrics import scores
from engine.loop import Trainer
from engine.presets import load_preset

COLUMNS = ("l1", "psnr", "ssim", "frechet_distance", "sharpness")


def train(preset: str, steps: int, held: int, overrides=(), curve_every: int = 0):
    """A trained Trainer, its wall time and steps per second, and its quality curve (step -> values)."""
    curve = {}

    def emit(event):
        if isinstance(event, ev.Metrics) and event.group == "quality":
            curve[event.step] = event.values

    config = load_preset(preset, [f"train.steps={steps}", f"train.metrics_every={curve_every}",
                                  f"train.metrics_samples={held}", *overrides])
    trainer = Trainer(config, emit=emit)
    start = time.perf_counter()
    assert trainer.run() == "done", preset
    trainer._finish_quality()
    wall = time.perf_counter() - start
    return trainer, wall, steps / wall, curve


@torch.no_grad()
def translate_held(trainer, direction: str, held: int) -> tuple:
    """(outputs, inputs, truths) of a direction on the first `held` test pairs."""
    data = trainer.dataset.held_out(held)
    x, truth = (data["a"], data.get("b")) if direction == "AtoB" else (data["b"], data["a"])
    nets = trainer.sampling_nets()
    for net in nets.values():
        net.eval()
    out = torch.cat([trainer.algorithm.translate(part, direction, nets) for part in x.split(250)])
    for net in nets.values():
        net.train()
    return out, x, truth


def row(name: str, values: dict, wall: float | None = None, rate: float | None = None) -> str:
    cells = [f"{values[k]:8.4f}" if k in values and k != "frechet_distance" else
             f"{values[k]:8.1f}" if k in values else "       —" for k in COLUMNS]
    target = values.get("target_sharpness")
    timing = f"  {rate:5.1f} steps/s  {wall:6.0f} s" if wall is not None else ""
    extra = f" (targets {target:.4f})" if target is not None else ""
    return f"  {name:<44}" + " ".join(cells) + extra + timing


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'':<44}" + " ".join(f"{c[:8]:>8}" for c in ("L1", "PSNR dB", "SSIM", "Fréchet", "sharp")))


def pix2pix(args) -> None:
    header(f"pix2pix, edges → item, {args.steps} steps, {args.held} held-out pairs")
    for name, overrides in (("pix2pix (GAN + 100·L1)", ()), ("same U-Net, L1 alone", ("pix2pix.gan_weight=0",))):
        trainer, wall, rate, _ = train("pix2pix_edges", args.steps, args.held, overrides)
        out, _, truth = translate_held(trainer, "AtoB", args.held)
        print(row(name, scores(out, truth), wall, rate), flush=True)


def unpaired(args) -> None:
    header(f"Unpaired items → edges (A → B against the held-out true pairs), {args.steps} steps")
    trainer = None
    for name, preset in (("CycleGAN", "cyclegan_edges"), ("DistanceGAN", "distancegan_edges"), ("DTN", "dtn_edges")):
        every = max(1, args.steps // 6) if preset == "cyclegan_edges" else 0
        t, wall, rate, curve = train(preset, args.steps, args.held, (), every)
        out, x, truth = translate_held(t, "AtoB", args.held)
        print(row(name, scores(out, truth), wall, rate), flush=True)
        if preset == "cyclegan_edges":
            trainer, cycle_curve = t, curve
    x, truth = translate_held(trainer, "AtoB", args.held)[1:]
    print(row("edge detector itself (upper bound)", scores(edge_map(((x + 1) * 127.5).round().to(torch.uint8))
                                                           .float().div(127.5).sub(1), truth)))
    print(row("identity: the item unchanged (lower)", scores(x, truth)))
    out, _, truth_a = translate_held(trainer, "BtoA", args.held)
    print(row("CycleGAN B → A (edges → items)", scores(out, truth_a)))
    print("  CycleGAN cycle reconstruction L1 over training (held-out; A → B → A, B → A → B):")
    for step, values in sorted(cycle_curve.items()):
        print(f"    step {step:6d}: {values.get('cycle_l1_ab', float('nan')):.4f}, "
              f"{values.get('cycle_l1_ba', float('nan')):.4f}")


def srgan(args) -> None:
    header(f"Super-resolution 8×8 → 32×32, {args.steps} steps")
    first = None
    for name, overrides in (("SRGAN (pixel MSE, then content + 10⁻³ GAN)", ()),
                            ("SRResNet, pixel MSE alone", ("srgan.content=mse", "srgan.adversarial_weight=0"))):
        trainer, wall, rate, _ = train("srgan_fashion", args.steps, args.held, overrides)
        out, x, truth = translate_held(trainer, "AtoB", args.held)
        print(row(name, scores(out, truth), wall, rate), flush=True)
        first = (x, truth)
    x, truth = first
    bicubic = F.interpolate(x, size=truth.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
    print(row("bicubic up-sampling", scores(bicubic, truth)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--held", type=int, default=1000)
    parser.add_argument("--only", nargs="+", default=["pix2pix", "unpaired", "srgan"],
                        choices=["pix2pix", "unpaired", "srgan"])
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    for part in args.only:
        {"pix2pix": pix2pix, "unpaired": unpaired, "srgan": srgan}[part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Engine against a bare PyTorch loop: same models, data, batch, loss, k; steps/s side by side.

    python bench/throughput.py [--quick] [--steps N] [--presets ring8,dcgan_fashion,wgan_gp_fashion]

The bare loop is the few lines a person would write by hand. The engine runs the preset as
configured (reports, samples, checkpoints into a temp run folder), so the ratio is what the
engine's bookkeeping costs. After one warm-up of each, runs alternate (engine, bare, engine,
bare, ...); each pair's ratio is printed, with their median and its spread (half the
interquartile range), so a noisy machine hurts both sides alike. On the CPU, one torch thread
by default (--threads): two threads on two cores swing a run by 30 %. Uses CUDA when present.
Issue 18's goal, engine / bare ≥ 0.97 on the CPU for ring8, is printed beside its row. The bare loop runs
twice a pair: with torch's default Adam, as a person writes it, and with the fused Adam the engine uses;
engine / fused is what the bookkeeping alone costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.nn.functional as F

from engine.presets import load_preset
from engine.data import make_dataset
from engine.data.images import DEBIAN_FASHION_MNIST
from engine.losses import get_loss
from engine.tricks import gradient_penalty, r1_penalty
from engine.models import build_models
from engine.device import pick_device
from engine.loop import Trainer
from engine import ema


def bare_loop(config, dataset, steps: int, device, fused: bool = False) -> float:
    """A hand-written GAN loop: k critic/discriminator steps, one generator step; the preset's R1 penalty
    (every r1_every D steps) and EMA of G's weights where it has them, since those are its training.
    Adam as torch makes it by default, or (fused) torch's fused Adam, which the engine uses."""
    torch.manual_seed(config.train.seed)
    rng = torch.Generator(device=device).manual_seed(config.train.seed + 1)
    G, D = build_models(config, dataset.shape, dataset.num_classes)
    G, D = G.to(device), D.to(device)
    o = config.optim
    if o.optimizer_d == "rmsprop":
        opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=o.lr_g), torch.optim.RMSprop(D.parameters(), lr=o.lr_d)
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=tuple(o.betas_g), fused=fused or None)
        opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=tuple(o.betas_d), fused=fused or None)
    loss = get_loss(config.loss.name)
    batch, nz, t = config.data.batch_size, config.model.noise_dim, config.tricks
    copies = ema.make_copies({"generator": G}, ["generator"], t.ema_decay)
    d_steps = 0
    start = time.perf_counter()
    for step in range(steps):
        for _ in range(config.train.discriminator_steps):
            real, _ = dataset.sample(batch, rng)
            with torch.no_grad():
                fake = G(torch.randn(batch, nz, generator=rng, device=device))
            d_loss = loss.d_loss(D(real).logit, D(fake).logit, 1.0)
            if loss.gradient_penalty:
                d_loss = d_loss + config.loss.gp_weight * gradient_penalty(D, real, fake, None, rng)
            if t.r1_weight > 0 and d_steps % t.r1_every == 0:
                d_loss = d_loss + 0.5 * t.r1_weight * t.r1_every * r1_penalty(D, real, None)
            d_steps += 1
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if loss.clips_weights:
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-config.loss.clip, config.loss.clip)
        fake = G(torch.randn(batch, nz, generator=rng, device=device))
        g_loss = loss.g_loss(D(fake).logit)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if copies:
            ema.update(copies, {"generator": G}, t.ema_decay, step)
    g_loss.item()  # wait for the device
    return steps / (time.perf_counter() - start)


def median_spread(ratios: np.ndarray) -> tuple[float, float]:
    """The median of paired ratios and half their interquartile range."""
    return float(np.median(ratios)), float(np.subtract(*np.percentile(ratios, [75, 25]))) / 2


def engine_loop(config, dataset, steps: int, tmp: Path) -> float:
    trainer = Trainer(config, run_dir=tmp, dataset=dataset)
    start = time.perf_counter()
    trainer.run(steps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="ring8,dcgan_fashion,wgan_gp_fashion")
    parser.add_argument("--steps", type=int, default=0, help="steps per run (default: per preset)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    args = parser.parse_args()
    device = pick_device("auto")
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.presets.split(","):
        overrides = []
        config = load_preset(name)
        if config.data.dataset == "fashion_mnist" and not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from conftest import make_fake_idx_dir
            fake = make_fake_idx_dir(Path(tempfile.mkdtemp()) / "fake", n=2048)
            overrides.append(f"data.path={str(fake)!r}")
        config = load_preset(name, overrides)
        low_dim = config.model.architecture == "mlp"
        steps = args.steps or ((300 if args.quick else 1500) if low_dim else (10 if args.quick else 150))
        repeat = 1 if args.quick else args.repeat
        dataset = make_dataset(config).to(device)
        engine_runs, bare_runs, fused_runs = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            if not args.quick:  # the first run of each pays for first-call costs
                engine_loop(config, dataset, steps, Path(tmp) / "warm")
                bare_loop(config, dataset, steps, device)
                bare_loop(config, dataset, steps, device, fused=True)
            for i in range(repeat):
                engine_runs.append(engine_loop(config, dataset, steps, Path(tmp) / f"run{i}"))
                bare_runs.append(bare_loop(config, dataset, steps, device))
                fused_runs.append(bare_loop(config, dataset, steps, device, fused=True))
        ratios = [median_spread(np.array(engine_runs) / np.array(runs)) for runs in (bare_runs, fused_runs)]
        rows.append((name, steps, engine_runs, bare_runs, fused_runs, ratios))
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"device {device}, torch {torch.__version__}, torch threads {threads}, "
          f"{1 if args.quick else args.repeat} alternating pairs")
    print("bare: torch's default Adam (a Python loop over the tensors on the CPU); fused: the bare loop with the "
          "fused Adam the engine uses, so engine/fused is the bookkeeping alone")
    print(f"{'preset':20s}{'steps':>7s}{'engine':>9s}{'bare':>8s}{'fused':>8s}{'engine/bare':>17s}{'engine/fused':>17s}"
          "   (steps/s)")
    for name, steps, engine_runs, bare_runs, fused_runs, ((ratio, spread), (ratio_f, spread_f)) in rows:
        goal = ""
        if name == "ring8" and device.type == "cpu":
            goal = f"   goal engine/bare ≥ 0.97: {'met' if ratio >= 0.97 else 'NOT met'}"
        print(f"{name:20s}{steps:7d}{np.median(engine_runs):9.1f}{np.median(bare_runs):8.1f}{np.median(fused_runs):8.1f}"
              f"{ratio:9.3f} ± {spread:.3f}{ratio_f:9.3f} ± {spread_f:.3f}{goal}")
        print(f"{'':20s}runs: engine " + " ".join(f"{v:.1f}" for v in engine_runs)
              + " | bare " + " ".join(f"{v:.1f}" for v in bare_runs)
              + " | fused " + " ".join(f"{v:.1f}" for v in fused_runs))


if __name__ == "__main__":
    main()

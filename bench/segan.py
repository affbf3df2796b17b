"""SEGAN against the noisy input, two classical enhancers and the same G trained with L1 alone, in one run.

    python bench/segan.py [--steps 2400] [--held 64] [--set segan.rate=16000 ...]

Data: the segan_speech preset's (sentences spoken by espeak-ng, 8 kHz), with `held` held-out sentences never
trained on, clip i mixed with noise kind i mod 4 (white, pink, brown, babble) at SNR (i div 4) mod 4 (0, 5, 10,
15 dB), so each kind and SNR has held / 16 clips. Rows:

- noisy: the input itself (its gains are 0 by definition);
- spectral subtraction (Boll 1979, Berouti's over-subtraction and floor) and a Wiener filter (decision-directed
  a-priori SNR, Ephraim & Malah 1984): engine.speech.classical, on the noisy clip alone;
- L1 alone: the same G and data, segan.gan_weight = 0 (no D);
- SEGAN: the preset (least squares GAN + 100 x L1).

Scores (engine.speech.metrics) against the clean clip: SNR and segmental SNR (30 ms frames, clamped to
[-10, 35] dB) and their gains over the noisy input, PESQ (narrow band at 8 kHz, wide band at 16 kHz) and STOI
when the packages `pesq` / `pystoi` are installed. Printed: the mean of every score per row, then the segmental
SNR gain and PESQ per noise kind and per SNR, with wall time, steps per second and the networks' sizes.
Compare only rows of one run (this CPU, one seed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from engine.loop import Trainer
from engine.presets import load_preset
from engine.speech.classical import spectral_subtraction, wiener
from engine.speech.metrics import mean_scores, score_clip

COLUMNS = (("snr", "SNR"), ("snr_gain", "ΔSNR"), ("segsnr", "segSNR"), ("segsnr_gain", "ΔsegSNR"), ("pesq", "PESQ"),
           ("stoi", "STOI"))


def train(steps: int, overrides: list) -> tuple:
    config = load_preset("segan_speech", [f"train.steps={steps}", "train.metrics_every=0",
                                          "train.sample_every=100000", "train.checkpoint_every=100000", *overrides])
    trainer = Trainer(config)
    start = time.perf_counter()
    assert trainer.run() == "done"
    wall = time.perf_counter() - start
    return trainer, wall


def enhance_all(trainer) -> list:
    nets = trainer.sampling_nets()
    for net in nets.values():
        net.eval()
    return [trainer.algorithm.enhance_array(clip.noisy, nets) for clip in trainer.dataset.held]


def scored(clips, outputs, rate) -> list:
    return [score_clip(c.clean, c.noisy, out, rate) for c, out in zip(clips, outputs)]


def size(net) -> str:
    return f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f} M"


def fmt(values: dict, key: str) -> str:
    return f"{values[key]:8.2f}" if key in values else "       —"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2400, help="training steps of each trained row")
    parser.add_argument("--held", type=int, default=64, help="held-out sentences scored (a multiple of 16)")
    parser.add_argument("--set", nargs="*", default=[], help="more preset overrides for both trained rows")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--no-l1", action="store_true", help="leave out the L1-alone row (half the time)")
    parser.add_argument("--quick", action="store_true", help="100 steps, 16 held-out clips: a check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.held = 100, 16
    common = [f"segan.held_clips={args.held}", f"train.device={args.device!r}", *args.set]

    rows, timing = {}, {}
    segan, wall = train(args.steps, common)
    timing["SEGAN (GAN + L1)"] = wall
    clips, rate = segan.dataset.held, segan.algorithm.rate
    rows["SEGAN (GAN + L1)"] = scored(clips, enhance_all(segan), rate)
    g, d = size(segan.nets["generator"]), size(segan.nets["discriminator"])
    if not args.no_l1:
        alone, wall = train(args.steps, [*common, "segan.gan_weight=0"])
        timing["same G, L1 alone"] = wall
        rows["same G, L1 alone"] = scored(clips, enhance_all(alone), rate)
    for name, method in (("Wiener (decision-directed)", wiener), ("spectral subtraction", spectral_subtraction)):
        start = time.perf_counter()
        rows[name] = scored(clips, [method(c.noisy, rate) for c in clips], rate)
        timing[name] = time.perf_counter() - start
    rows["noisy input"] = scored(clips, [c.noisy for c in clips], rate)

    order = [name for name in ("noisy input", "spectral subtraction", "Wiener (decision-directed)",
                               "same G, L1 alone", "SEGAN (GAN + L1)") if name in rows]
    s = segan.config.segan
    print(f"{segan.device}: {len(clips)} held-out clips at {rate} Hz; {args.steps} steps of batch {s.batch} x "
          f"{s.window} samples; "
          f"G {g} parameters, D {d}; {len(segan.dataset)} training windows")
    print(f"  {'':<28}" + "".join(f"{label:>9}" for _, label in COLUMNS) + "   wall time")
    for name in order:
        mean = mean_scores(rows[name])
        extra = f"   {timing[name]:6.0f} s ({args.steps / timing[name]:.1f} steps/s)" if name in (
            "SEGAN (GAN + L1)", "same G, L1 alone") else f"   {timing.get(name, 0):6.1f} s" if name in timing else ""
        print(f"  {name:<28}" + "".join(" " + fmt(mean, key) for key, _ in COLUMNS) + extra)

    labels = [c.label for c in clips]
    kinds = list(dict.fromkeys(label.rsplit(" ", 2)[0] for label in labels))
    snrs = list(dict.fromkeys(label.split(" ", 1)[1] for label in labels))
    for key, title in (("segsnr_gain", "segmental SNR gain, dB"), ("pesq", "PESQ"), ("snr_gain", "SNR gain, dB")):
        if key not in rows["noisy input"][0]:
            continue
        print(f"\n{title}, by noise kind and by SNR")
        print(f"  {'':<28}" + "".join(f"{k:>9}" for k in kinds) + "  |" + "".join(f"{v:>9}" for v in snrs))
        for name in order:
            cells = []
            for group in kinds:
                picked = [r[key] for r, label in zip(rows[name], labels) if label.startswith(group + " ")]
                cells.append(f"{np.mean(picked):9.2f}")
            cells.append("  |")
            for group in snrs:
                picked = [r[key] for r, label in zip(rows[name], labels) if label.endswith(" " + group)]
                cells.append(f"{np.mean(picked):9.2f}")
            print(f"  {name:<28}" + "".join(cells))


if __name__ == "__main__":
    main()

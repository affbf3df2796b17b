"""SeqGAN against MLE alone, on the oracle benchmark or on real text, in one run.

    python bench/seqgan.py [--preset seqgan_oracle] [--paper-oracle] [--mle-steps N] [--d-pre-steps N]
                           [--d-steps N] [--rounds N] [--seed S]

One training run of the preset (the studio's own engine) with the MLE-only continuation beside it:
both start from the same pre-trained G and take the same number of G updates. Printed: NLL-oracle
(oracle) or held-out NLL and BLEU-2/3/4 (text) of a random (untrained) G, of the pre-trained G, and of
both continuations at the end, with wall time per phase; MLE tokens per second; seconds per
adversarial round and the share of it spent in rollouts; a dozen samples of each for text. The
paper's rows are printed beside ours, labelled as quoted. --paper-oracle sets the oracle and the
networks to the paper's sizes (vocabulary 5,000, length 20, embedding and hidden 32, D's 12 widths
and 1,720 filters) and keeps this bench's shorter schedule, which it prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine import events as ev
from engine.algorithms.seqgan import PAPER_FILTERS, PAPER_WIDTHS
from engine.loop import Trainer
from engine.presets import load_preset
from engine.text.metrics import SequenceQuality

PAPER = (("random G", 10.310), ("MLE", 9.038), ("SeqGAN", 8.736))


def measure(trainer) -> dict:
    probe = SequenceQuality(trainer.algorithm, trainer.config.train.metrics_samples, trainer.config.train.seed)
    return probe.compute(probe.snapshot())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="seqgan_oracle")
    parser.add_argument("--paper-oracle", action="store_true")
    parser.add_argument("--mle-steps", type=int)
    parser.add_argument("--d-pre-steps", type=int)
    parser.add_argument("--d-steps", type=int, help="D minibatches per adversarial round")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_preset(args.preset)
    if args.paper_oracle:
        for key, value in (("vocab_size", 5000), ("seq_len", 20), ("oracle_samples", 10000), ("oracle_embed_dim", 32),
                           ("oracle_hidden_dim", 32), ("embed_dim", 32), ("hidden_dim", 32), ("d_embed_dim", 64),
                           ("d_widths", PAPER_WIDTHS), ("d_filters", PAPER_FILTERS)):
            config.set(f"seqgan.{key}", value, check=False)
    s = config.seqgan
    if args.mle_steps is not None:
        config.set("seqgan.mle_steps", args.mle_steps)
    if args.d_pre_steps is not None:
        config.set("seqgan.d_pre_steps", args.d_pre_steps)
    if args.d_steps is not None:
        config.set("seqgan.d_steps", args.d_steps)
    config.set("seqgan.mle_baseline", True)
    config.set("train.seed", args.seed)
    config.set("train.metrics_every", 0)
    config.check()
    round_steps = s.g_steps * s.rollouts + s.d_steps
    adversarial = args.rounds * round_steps
    total = s.mle_steps + s.d_pre_steps + adversarial
    config.set("train.steps", total)
    warnings = []
    trainer = Trainer(config, emit=lambda e: warnings.append(e.text) if isinstance(e, ev.Warning) else None)
    algorithm = trainer.algorithm
    rollout_time = [0.0]
    plain_pass = algorithm.rollout_pass

    def timed_pass(*a, **k):
        start = time.perf_counter()
        out = plain_pass(*a, **k)
        rollout_time[0] += time.perf_counter() - start
        return out

    algorithm.rollout_pass = timed_pass
    device = trainer.device
    print(f"# SeqGAN bench: preset {config.name}{' with the paper oracle sizes' if args.paper_oracle else ''}, "
          f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# data {s.source}: vocabulary {len(trainer.dataset.vocab)}, length {s.seq_len}, {len(trainer.dataset)} "
          f"training sequences; G embed {s.embed_dim} hidden {s.hidden_dim}; D widths {s.d_widths} filters "
          f"{s.d_filters}")
    print(f"# schedule: {s.mle_steps} MLE steps (batch {s.batch}), {s.d_pre_steps} D pre-training steps, "
          f"{args.rounds} rounds of {s.g_steps} G step(s) x {s.rollouts} rollouts + {s.d_steps} D steps; "
          f"lr_g {config.optim.lr_g}, lr_d {config.optim.lr_d}")
    rows = [("random G (untrained)", measure(trainer), 0.0)]
    timings = {}
    for name, until in (("MLE pre-training", s.mle_steps), ("D pre-training", s.mle_steps + s.d_pre_steps)):
        start = time.perf_counter()
        trainer.run(until)
        timings[name] = time.perf_counter() - start
    rows.append(("MLE pre-trained G", measure(trainer), timings["MLE pre-training"]))
    rollout_time[0] = 0.0
    start = time.perf_counter()
    trainer.run(total)
    timings["adversarial"] = time.perf_counter() - start
    end = measure(trainer)
    seqgan = {k: v for k, v in end.items() if not k.endswith("_mle")}
    mle_only = {k[:-4]: v for k, v in end.items() if k.endswith("_mle")}
    rows.append((f"MLE-only continuation, +{args.rounds * s.g_steps} G steps", mle_only, timings["adversarial"]))
    rows.append((f"SeqGAN, +{args.rounds * s.g_steps} G steps", seqgan, timings["adversarial"]))
    names = list(rows[0][1])
    print()
    print(f"| model | {' | '.join(names)} | wall s |")
    print("|---|" + "---|" * (len(names) + 1))
    for label, values, wall in rows:
        cells = " | ".join(f"{values.get(n, float('nan')):.3f}" for n in names)
        print(f"| {label} | {cells} | {wall:.0f} |")
    if s.source == "oracle":
        for label, value in PAPER:
            print(f"| paper (quoted; vocabulary 5,000, full schedule): {label} | {value:.3f} | |")
    tokens = s.mle_steps * s.batch * s.seq_len
    print()
    print(f"MLE pre-training: {tokens / max(1e-9, timings['MLE pre-training']):,.0f} tokens/s "
          f"({timings['MLE pre-training']:.1f} s); D pre-training {timings['D pre-training']:.1f} s")
    per_round = timings["adversarial"] / max(1, args.rounds)
    print(f"adversarial round: {per_round:.2f} s, of which rollouts {rollout_time[0] / max(1e-9, timings['adversarial']):.0%}")
    if s.source == "text":
        u = torch.rand(12, s.seq_len, generator=torch.Generator().manual_seed(99))
        for name in ("generator", "mle_generator"):
            print(f"\nsamples of {'SeqGAN' if name == 'generator' else 'MLE only'}:")
            for line in algorithm.as_text(algorithm.nets[name].sample(u.to(device))):
                print("  " + line)
    for text in warnings:
        print(f"warning: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

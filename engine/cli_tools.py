"""Verbs of `gan-studio` that live outside engine/cli.py: `birthday` (the birthday-paradox support test)."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config import ConfigError


def add_birthday(verbs) -> None:
    p = verbs.add_parser("birthday", help="look for repeated samples; estimate the support size (birthday paradox)")
    p.add_argument("checkpoint")
    p.add_argument("--s", type=int, default=400, help="samples in the batch searched for duplicates (default 400)")
    p.add_argument("--out", help="PNG of the closest pairs side by side (default pairs.png)")
    p.add_argument("--scan", action="store_true", help="also estimate the support: batches of growing size up to s")
    p.add_argument("--trials", type=int, default=5, help="batches per size in the scan (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu (default), cuda or mps")


def cmd_birthday(args) -> int:
    from engine.metrics.birthday import CheckpointTest, save_pairs

    if args.s < 2 or args.trials < 1:
        raise ConfigError("--s must be at least 2 and --trials at least 1.")
    tty = sys.stderr.isatty()
    progress = (lambda text, fraction: sys.stderr.write(f"\r\033[K{text}" if fraction < 1 else "\r\033[K")) \
        if tty else None
    test = CheckpointTest(args.checkpoint, device=args.device or "cpu", progress=progress)
    result = test.run(args.s, seed=args.seed, scan=args.scan, trials=args.trials, progress=progress)
    print(f"{Path(args.checkpoint).name}: step {test.step}, {args.s} samples, seed {args.seed}")
    print("\n".join(result.lines()))
    if not args.scan:
        print("(--scan tries growing batch sizes for a support estimate.)")
    out = Path(args.out or "pairs.png")
    save_pairs(result, out)
    print(f"Wrote {out}")
    return 0

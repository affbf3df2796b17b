"""Verbs of `gan-studio` that live outside engine/cli.py: `birthday` (the birthday-paradox support test) and
`translate` (pictures through an image-to-image checkpoint) and `enhance` (recordings through a SEGAN checkpoint)."""

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


def add_translate(verbs) -> None:
    p = verbs.add_parser("translate", help="translate pictures with an image-to-image checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("source", metavar="IN", help="a picture, or a folder of pictures (sub-folders included)")
    p.add_argument("out", metavar="OUT", help="the folder to write one PNG per picture into; for one picture "
                                              "it may be the .png file to write")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="AtoB (default), or BtoA for a model that translates both ways (CycleGAN)")
    p.add_argument("--prepare", action="store_true",
                   help="take each picture as an ordinary item and translate the built-in task's transform of it "
                        "(its edge map, or its low-resolution version)")
    p.add_argument("--device", help="cpu (default), cuda or mps")


def cmd_translate(args) -> int:
    from engine.device import pick_device
    from engine.translate import load_translator, translate_path

    tty = sys.stderr.isatty()
    progress = (lambda done, total: sys.stderr.write(f"\r\033[KTranslated {done} of {total} files")) if tty else None
    translator = load_translator(args.checkpoint, device=str(pick_device(args.device or "cpu")))
    written = translate_path(translator, args.source, args.out, args.direction, args.prepare, progress)
    if tty:
        sys.stderr.write("\r\033[K")
    if written.warning:
        sys.stderr.write(f"warning: {written.warning}\n")
    what = f"{len(written.files)} translation{'s' * (len(written.files) != 1)}"
    skipped = f"; {written.skipped} file{'s' * (written.skipped != 1)} skipped" if written.skipped else ""
    print(f"{Path(args.checkpoint).name}: {translator.family}, step {translator.step}, {args.direction}"
          f"{', each input the ' + translator.transform + ' of a picture' if args.prepare else ''}")
    print(f"Wrote {what} to {written.where}{skipped}")
    return 0


def add_enhance(verbs) -> None:
    p = verbs.add_parser("enhance", help="remove noise from recordings with a SEGAN checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("source", metavar="IN", help="a WAV file, or a folder of WAV files (sub-folders included)")
    p.add_argument("out", metavar="OUT", help="the WAV file to write for one file, or the folder to write into")
    p.add_argument("--device", help="cpu (default), cuda or mps")


def cmd_enhance(args) -> int:
    from engine.device import pick_device
    from engine.enhance import enhance_path, load_enhancer

    tty = sys.stderr.isatty()
    progress = (lambda done, total: sys.stderr.write(f"\r\033[KEnhanced {done} of {total} files")) if tty else None
    enhancer = load_enhancer(args.checkpoint, device=str(pick_device(args.device or "cpu")))
    written = enhance_path(enhancer, args.source, args.out, progress)
    if tty:
        sys.stderr.write("\r\033[K")
    skipped = f"; {written.skipped} file{'s' * (written.skipped != 1)} skipped (not readable WAV)" \
        if written.skipped else ""
    print(f"{Path(args.checkpoint).name}: SEGAN, step {enhancer.step}, {enhancer.rate} Hz")
    print(f"Wrote {len(written.files)} enhanced recording{'s' * (len(written.files) != 1)} to {written.where}{skipped}")
    return 0

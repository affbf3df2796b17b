"""`gan-studio`: the studio window with no arguments, or headless verbs.

    gan-studio train PRESET [--steps N] [--set k=v ...] [--out DIR] [--resume CKPT] [--device D] [--nproc N]
    gan-studio sample CKPT [--n 64] [--seed S] [--out grid.png] [--each DIR]
                      [--code c1=0.7] [--cat c0=3] [--label 4]
                      (a sequence model prints its samples, or writes them to --out FILE.txt)
    gan-studio eval CKPT [--n 2500]
    gan-studio export CKPT --onnx G.onnx   (the sampling network as ONNX, batch size free)
    gan-studio birthday CKPT [--s 400] [--scan] [--trials 5] [--seed S] [--out pairs.png]   (repeated samples)
    gan-studio translate CKPT IN OUT [--direction AtoB|BtoA] [--prepare]   (pictures through an image-to-image model)
    gan-studio enhance CKPT IN.wav OUT.wav   (or folders: recordings through a SEGAN model)
    gan-studio presets
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from pathlib import Path


from engine import commands as cmd
from engine import events as ev
from engine.checkpoint import CheckpointError, load_checkpoint
from engine.cli_tools import add_birthday, add_enhance, add_translate, cmd_birthday, cmd_enhance, cmd_translate
from engine.config import Config, ConfigError
from engine.data import DataError, DownloadError
from engine.images import save_png
from engine.latent import ALL_STAGES, latent_for, parse_assignments, stage_picture, text_latent
from engine.metrics.evaluator import EvaluatorError
from engine.paths import new_run_dir
from engine.presets import apply_overrides, load_preset, preset_paths
from engine.run_control import RunControl

USER_ERRORS = (ConfigError, CheckpointError, DataError, DownloadError, EvaluatorError, OSError)


class ProgressBar:
    """A one-line terminal progress bar fed by the trainer's events."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr  # looked up now: it may be redirected
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.last_line = 0.0
        self.values: dict = {}
        self.fields: tuple = ()  # (label, name, format) the run's algorithm declared
        self.step = 0

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.step = event.step
            self.fields = event.declaration.progress
            self._say(f"Training on {event.device}" + (f", run folder {event.run_dir}" if event.run_dir else ""))
        elif isinstance(event, ev.Metrics):
            self.step = event.step
            self.values = event.values
            self._draw()
        elif isinstance(event, ev.Progress):
            pct = f"{100 * event.done / event.total:.0f}%" if event.total else f"{event.done >> 20} MiB"
            if self.tty:
                self.stream.write(f"\r{event.task}: {pct}   ")
                self.stream.flush()
        elif isinstance(event, (ev.Warning, ev.CommandRejected)):
            self._say(f"warning: {getattr(event, 'text', None) or getattr(event, 'why', '')}")
        elif isinstance(event, ev.PhaseChanged):
            self._say(f"Step {event.step}: {event.new}")
        elif isinstance(event, ev.Paused) and event.reason:
            self._say(event.reason)
        elif isinstance(event, ev.Failed):
            self._say(event.message)
        elif isinstance(event, ev.Finished):
            self._draw(force=True)
            if self.tty:
                self.stream.write("\n")
            self._say(f"Finished at step {event.step} ({event.reason}).")

    def _say(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.tty and not force and now - self.last_line < 5.0:
            return
        self.last_line = now
        frac = min(1.0, self.step / max(1, self.total))
        bar = "#" * int(frac * 24) + "-" * (24 - int(frac * 24))
        v = self.values
        parts = [f"[{bar}] {self.step}/{self.total}"]
        if "steps_per_sec" in v:
            parts.append(f"{v['steps_per_sec']:.1f} steps/s")
        parts += [f"{label} {v[name]:{fmt}}" for label, name, fmt in self.fields if name in v]
        line = "  ".join(parts)
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def default_run_dir(config: Config) -> Path:
    return new_run_dir(Path("runs"), config.name)


def resume_run_dir(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (RUN/checkpoints/step_N.pt beside RUN/config.toml), or None."""
    checkpoint = Path(checkpoint).resolve()
    run = checkpoint.parent.parent
    if checkpoint.parent.name == "checkpoints" and (run / "config.toml").is_file():
        return run
    return None


def check_new_run_dir(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--out {folder} already holds files; give an empty or new folder, or continue that run "
                          f"with --resume.")


def cmd_train(args) -> int:
    from engine import distributed
    from engine.loop import Trainer

    if args.nproc not in (None, 1) and "WORLD_SIZE" not in os.environ:  # --nproc 1 is this process
        return distributed.launch(without_nproc(args.argv), args.nproc)
    if args.resume:
        state = load_checkpoint(args.resume)
        config = Config.from_saved(state["config"])
        apply_overrides(config, args.set or [])
        own = resume_run_dir(args.resume)  # None for a checkpoint from elsewhere (~/Downloads/x.pt)
        run_dir = Path(args.out) if args.out else own or default_run_dir(config)  # never write beside a stray one
        if args.out and own != run_dir.resolve():
            check_new_run_dir(run_dir)
    else:
        if not args.preset:
            raise ConfigError("Name a preset to train (see `gan-studio presets`), or give --resume CKPT.")
        config = load_preset(args.preset, args.set)
        run_dir = Path(args.out) if args.out else default_run_dir(config)
        check_new_run_dir(run_dir)
        state = None
    if args.steps is not None:
        config.set("train.steps", args.steps)
    if args.device:
        config.set("train.device", args.device)
    if config.train.on_nan == "pause":
        raise ConfigError("train.on_nan = 'pause' needs the window (nobody can resume a headless run); use "
                          "'rollback', 'stop' or 'auto'.")
    group = distributed.from_environment(config)
    follower = group is not None and not group.leader
    bar = ProgressBar(config.train.steps) if not follower else rank_messages(group.rank)
    outcome = {}

    def emit(event):
        bar(event)
        if isinstance(event, ev.Failed):
            outcome["failed"] = event

    try:
        trainer = Trainer(config, run_dir=None if follower else run_dir, emit=emit, resume=state, group=group)
    except BaseException:
        if group is not None:
            group.close()
        raise
    if args.resume:
        trainer.last_good_checkpoint = Path(args.resume)
    if not follower:  # RUN/commands.jsonl steers it and RUN/live.json says it is alive (engine.run_control)
        RunControl.attach(trainer)

    interrupted = {"count": 0}

    def on_sigint(signum, frame):
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        sys.stderr.write("\nStopping: saving a checkpoint (Ctrl-C again to quit without saving)...\n")
        trainer.commands.put(cmd.Stop(save=True))

    def on_sigterm(signum, frame):
        sys.stderr.write("\nStopping (SIGTERM): saving a checkpoint...\n")
        trainer.commands.put(cmd.Stop(save=True))

    # several processes: one Ctrl-C reaches them all, and rank 0 alone decides (the others follow its Stop)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if follower else on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        reason = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        if group is not None:
            group.close()
    if reason == "failed":
        sys.stderr.write(outcome["failed"].traceback)  # empty for a failure the message says all about
        return 1
    if reason == "nan":
        return 1
    if trainer.last_good_checkpoint:
        print(f"Last checkpoint: {trainer.last_good_checkpoint}")
    return 0


def without_nproc(argv: list[str]) -> list[str]:
    """The command line a launched process runs: the same, less --nproc N."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def rank_messages(rank: int):
    """What a rank other than 0 prints: its failures and warnings only (rank 0 draws the progress bar)."""
    def emit(event):
        if isinstance(event, (ev.Failed, ev.Warning)):
            sys.stderr.write(f"rank {rank}: {getattr(event, 'message', None) or event.text}\n")
    return emit


def cmd_sample(args) -> int:
    from engine.sampler import load_sampler

    if args.n < 1:
        raise ConfigError(f"--n {args.n} is not allowed; ask for at least 1 sample.")
    sampler = load_sampler(args.checkpoint, device=args.device or "cpu")
    if args.text is not None and (args.code or args.cat or args.label is not None):
        raise ConfigError("--text says what to draw by itself; leave out --code, --cat and --label with it.")
    latent = text_latent(sampler, args.text, args.n, args.seed) if args.text is not None else latent_for(
        sampler, args.n, args.seed, parse_assignments(args.code, "--code"), parse_assignments(args.cat, "--cat"),
        args.label)
    outputs = sampler.generate(latent.as_dict())
    if args.stages or args.stage:
        out = Path(args.out or "stages.png")
        save_png(out, stage_picture(sampler, outputs, ALL_STAGES if args.stages else args.stage))
        print(f"Wrote {out}: the stages of {args.n} samples")
        return 0
    lines = sampler.algorithm.as_text(outputs)
    if lines is not None:  # a sequence model: its samples are text
        if args.each:
            raise ConfigError("--each writes one picture per sample; a sequence model's samples are text: "
                              "use --out FILE.txt, or no option to print them.")
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            print(f"Wrote {len(lines)} sequences to {out}")
        else:
            print("\n".join(lines))
        return 0
    grid, singles = sampler.pictures(outputs)
    if args.each:
        folder = Path(args.each)
        for i, picture in enumerate(singles):
            save_png(folder / f"sample_{i:04d}.png", picture)
        print(f"Wrote {len(singles)} PNG files to {folder}")
    if args.out or not args.each:
        out = Path(args.out or "samples.png")
        save_png(out, grid)
        print(f"Wrote {out} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


def cmd_eval(args) -> int:
    """Quality metrics for a checkpoint (the same ones the studio plots while training)."""
    from engine.metrics.live import QualityProbe
    from engine.sampler import load_sampler

    state = load_checkpoint(args.checkpoint)
    state["config"].setdefault("train", {})["metrics_samples"] = args.n
    sampler = load_sampler(state, device=args.device or "cpu", nets="all", with_data=True)
    config = sampler.config
    probe = QualityProbe(sampler, sampler.algorithm.quality_probes())
    if probe.problem:
        sys.stderr.write(f"warning: {probe.problem}\n")
    if not probe.enabled:
        raise ConfigError(f"No quality metrics are defined for data.dataset = {config.data.dataset!r} "
                          f"({config.data.image_size}px, {config.data.channels} channels); they exist for ring8, "
                          f"grid25, painter, 28x28 Fashion-MNIST and the sequence models.")
    values = probe.compute(probe.snapshot(sampler))
    print(f"{Path(args.checkpoint).name}: step {state['step']}, {args.n} samples")
    for name, value in values.items():
        print(f"  {name:18s} {value:.4f}")
    return 0


def cmd_export(args) -> int:
    from engine.onnx_export import export_onnx
    print(export_onnx(args.checkpoint, args.onnx))
    return 0


def cmd_evaluator(args) -> int:
    from engine.metrics.evaluator import train_evaluator
    train_evaluator(epochs=args.epochs)
    return 0


def cmd_presets(args) -> int:
    for path in preset_paths():
        try:
            config = load_preset(path)
            print(f"{path.stem:24s} {config.description}")
        except ConfigError as exc:
            print(f"{path.stem:24s} (invalid: {exc})")
    return 0


def launch_studio() -> int:
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "minimal", "vnc"))
    if headless:
        sys.stderr.write("No display was found, so the studio window cannot open; train headless with "
                         "`gan-studio train ring8` (see `gan-studio --help`), or run under xvfb-run.\n")
        return 2
    try:
        app = importlib.import_module("studio.app")
    except ImportError as exc:
        sys.stderr.write(f"The studio window needs PySide6 and pyqtgraph ({exc}); install them with "
                         f"`make run`, or train headless with `gan-studio train PRESET`.\n")
        return 2
    problem = qt_platform_problem()
    if problem:
        sys.stderr.write(problem + "\n")
        return 2
    return app.main()


QT_PACKAGES = "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0"


def qt_platform_problem() -> str:
    """Qt ends the process (abort, no exception) when its platform plugin cannot load: try it in a child
    process first, and turn a failure into one sentence. "" when the window can open."""
    import subprocess
    code = "import sys\nfrom PySide6.QtGui import QGuiApplication\nQGuiApplication(sys.argv[:1])\n"
    try:
        probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""  # cannot tell: let the window try
    if probe.returncode == 0:
        return ""
    said = probe.stderr
    if "could not connect to display" in said:
        display = os.environ.get("DISPLAY", "")
        return (f"No display answered at DISPLAY={display!r}, so the studio window cannot open; start it from a "
                f"desktop session, or train headless with `gan-studio train ring8` (see `gan-studio --help`).")
    return (f"Qt's window plugin could not load, so the studio window cannot open; install its libraries "
            f"(sudo apt-get install {QT_PACKAGES}) or train headless with `gan-studio train ring8`.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-studio", description="Train GANs and watch them learn.")
    verbs = parser.add_subparsers(dest="verb")
    train = verbs.add_parser("train", help="train a preset headless")
    train.add_argument("preset", nargs="?", help="a preset name (see `gan-studio presets`) or a .toml path")
    train.add_argument("--steps", type=int, help="total generator steps")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset field")
    train.add_argument("--out", help="run folder (default runs/NAME-TIME)")
    train.add_argument("--resume", help="continue from a checkpoint")
    train.add_argument("--device", help="auto, cpu, cuda or mps")
    train.add_argument("--nproc", type=int, help="train on N processes (CPU cores or GPUs) with torch.distributed")
    sample = verbs.add_parser("sample", help="draw samples from a checkpoint")
    sample.add_argument("checkpoint")
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="grid PNG (default samples.png); a text file for sequence models")
    sample.add_argument("--each", help="folder for one PNG per sample")
    sample.add_argument("--code", action="append", metavar="cI=VALUE", help="pin continuous code I")
    sample.add_argument("--cat", action="append", metavar="cI=VALUE", help="pin categorical code I")
    sample.add_argument("--label", type=int, help="class label for conditional models")
    sample.add_argument("--text", help="a description, for text-conditioned models (StackGAN)")
    sample.add_argument("--stages", action="store_true", help="staged models: every stage of each sample, side by side")
    sample.add_argument("--stage", help="staged models: one stage, by its name")
    sample.add_argument("--device", help="cpu (default), cuda or mps")
    evaluate = verbs.add_parser("eval", help="quality metrics of a checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--n", type=int, default=2500, help="generated samples to measure")
    evaluate.add_argument("--device", help="cpu (default), cuda or mps")
    export = verbs.add_parser("export", help="write a checkpoint's sampling network as an ONNX model")
    export.add_argument("checkpoint")
    export.add_argument("--onnx", required=True, metavar="PATH", help="the .onnx file to write")
    evaluator = verbs.add_parser("evaluator", help="train the Fashion-MNIST evaluator shipped in engine/resources/")
    evaluator.add_argument("--epochs", type=int, default=3)
    add_birthday(verbs)
    add_translate(verbs)
    add_enhance(verbs)
    verbs.add_parser("presets", help="list the presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb is None:
        return launch_studio()
    args.argv = list(sys.argv[1:] if argv is None else argv)
    handler = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "export": cmd_export,
               "evaluator": cmd_evaluator, "presets": cmd_presets, "birthday": cmd_birthday,
               "translate": cmd_translate, "enhance": cmd_enhance}[args.verb]
    try:
        return handler(args)
    except USER_ERRORS as exc:
        sys.stderr.write(f"gan-studio: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""A run folder read back: its settings, curves, change markers, sample snapshots and checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import Config, ConfigError
from engine.events import Metrics
from engine.presets import load_preset


def marker_text(name: str, old, new) -> str:
    """The label of a change marker on the curves, live or read back from changes.jsonl; a new phase of
    training (name "phase") is labelled by its name."""
    if name == "phase":
        return str(new)
    show = lambda v: f"{v:g}" if isinstance(v, float) else v
    return f"{name} {show(old)}→{show(new)}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    files = sorted((Path(run_dir) / "checkpoints").glob("step_*.pt"))
    return files[-1] if files else None


@dataclass
class SavedRun:
    folder: Path
    config: Config
    metrics: list = field(default_factory=list)  # [Metrics, ...] as the run reported them
    markers: list = field(default_factory=list)  # [(step, text), ...]
    snapshots: list = field(default_factory=list)  # [(step, png path), ...]
    checkpoint: Path | None = None


def read_run(path: Path) -> SavedRun:
    """A run folder (or one of its checkpoints) read back; ConfigError (one sentence) if it is not one."""
    run_dir = Path(path)
    if run_dir.suffix == ".pt":
        run_dir = run_dir.parent.parent
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir} is not a GAN Studio run folder (it has no config.toml).")
    run = SavedRun(run_dir, load_preset(config_file))
    metrics_file = run_dir / "metrics.jsonl"
    if metrics_file.is_file():
        rows = [json.loads(line) for line in metrics_file.read_text(encoding="utf-8").splitlines() if line]
        run.metrics = [Metrics(r.pop("step"), r, r.pop("group", "train")) for r in rows]
    changes = run_dir / "changes.jsonl"
    if changes.is_file():
        for line in changes.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            run.markers.append((c["step"], marker_text(c["name"], c["old"], c["new"])))
    run.snapshots = [(int(png.stem.split("_")[1]), png) for png in sorted((run_dir / "samples").glob("step_*.png"))]
    run.checkpoint = latest_checkpoint(run_dir)
    return run

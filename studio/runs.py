"""A run folder read back: its settings, curves, change markers, sample snapshots and checkpoints.

Reading never fails on a damaged log: a torn or corrupt line of metrics.jsonl or changes.jsonl (a full disk or a
kill leaves one) is skipped and counted, and everything else is kept. The settings are those of the newest
checkpoint (live changes included), not the start-time config.toml, so Start continues the run as it was.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path

from engine.checkpoint import FORMAT, CheckpointError, by_step, checkpoint_step, load_checkpoint, read_jsonl
from engine.config import Config, ConfigError
from engine.events import Metrics
from engine.presets import load_preset

LOGS = ("metrics.jsonl", "changes.jsonl")


def marker_text(name: str, old, new) -> str:
    """The label of a change marker on the curves, live or read back from changes.jsonl; a new phase of
    training (name "phase") is labelled by its name."""
    if name == "phase":
        return str(new)
    show = lambda v: f"{v:g}" if isinstance(v, float) else v
    return f"{name} {show(old)}→{show(new)}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    files = by_step((Path(run_dir) / "checkpoints").glob("step_*.pt"))
    return files[-1] if files else None


@dataclass
class SavedRun:
    folder: Path
    config: Config
    metrics: list = field(default_factory=list)  # [Metrics, ...] as the run reported them
    markers: list = field(default_factory=list)  # [(step, text), ...]
    snapshots: list = field(default_factory=list)  # [(step, png path), ...]
    checkpoint: Path | None = None
    skipped: dict = field(default_factory=dict)  # log file name -> unreadable lines skipped
    note: str = ""  # one sentence when the checkpoint's settings could not be read

    def message(self) -> str:
        """One sentence on what could not be read, or ""."""
        total = sum(self.skipped.values())
        if not total:
            return self.note
        where = ", ".join(f"{n} in {name}" for name, n in self.skipped.items() if n)
        text = (f"Skipped {total} unreadable line{'s' if total != 1 else ''} of the run's logs ({where}; a full disk "
                f"or a kill leaves a torn line); everything else was restored.")
        return f"{text} {self.note}" if self.note else text


def _metrics_row(row: dict) -> bool:
    return isinstance(row.get("group", "train"), str) and all(
        isinstance(v, numbers.Real) for k, v in row.items() if k not in ("step", "group"))


def is_change(row: dict) -> bool:
    return isinstance(row.get("name"), str) and "old" in row and "new" in row


def _change_row(row: dict) -> bool:
    """A live or phase change, or the answer to a command from the commands file (engine.run_control)."""
    return is_change(row) or isinstance(row.get("answer"), str)


def checkpoint_config(path: Path) -> Config:
    """The settings a checkpoint was saved with, live changes included. The file is memory-mapped, so only its
    small pickled index is read, not its weights (a few milliseconds even for a large model); a checkpoint that
    cannot be mapped (an old format) is loaded whole. CheckpointError or ConfigError in one sentence."""
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not mappable (legacy format) or damaged: the full loader says which, in one sentence
        state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{Path(path).name} is not a GAN Studio checkpoint with settings.")
    return Config.from_saved(state["config"])


def read_run(path: Path, logs: bool = True) -> SavedRun:
    """A run folder (or one of its checkpoints) read back; ConfigError (one sentence) if it is not one. logs=False:
    its settings and newest checkpoint only (a run still being written, whose logs studio.follow streams)."""
    run_dir = Path(path)
    if run_dir.suffix == ".pt":
        run_dir = run_dir.parent.parent
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise ConfigError(f"{run_dir} is not a GAN Studio run folder (it has no config.toml).")
    checkpoint = latest_checkpoint(run_dir)
    config, note = None, ""
    if checkpoint is not None:
        try:
            config = checkpoint_config(checkpoint)
        except (CheckpointError, ConfigError) as exc:
            note = (f"The settings of {checkpoint.name} could not be read ({str(exc).rstrip('.')}), so those the "
                    f"run started with are shown.")
    run = SavedRun(run_dir, config or load_preset(config_file, saved=True), checkpoint=checkpoint, note=note)
    if not logs:
        return run
    rows, run.skipped["metrics.jsonl"] = read_jsonl(run_dir / "metrics.jsonl", _metrics_row)
    run.metrics = [Metrics(r.pop("step"), r, r.pop("group", "train")) for r in rows]
    changes, run.skipped["changes.jsonl"] = read_jsonl(run_dir / "changes.jsonl", _change_row)
    run.markers = [(c["step"], marker_text(c["name"], c["old"], c["new"])) for c in changes if is_change(c)]
    snapshots = ((checkpoint_step(png), png) for png in by_step((run_dir / "samples").glob("step_*.png")))
    run.snapshots = [(step, png) for step, png in snapshots if step >= 0]
    return run

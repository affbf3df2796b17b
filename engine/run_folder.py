"""The run folder's files as the loop keeps them: checkpoints (written atomically, the newest kept) and the
training state they hold (saved, restored, rolled back to), the change log, the logs repaired on resume, and one
sentence when the disk refuses a write."""

from __future__ import annotations

import errno
import json
from pathlib import Path

from engine import events as ev
from engine.checkpoint import (CheckpointError, by_step, check_data_matches, check_matches, data_fields,
                               load_checkpoint, repair_jsonl, restore_into, save_checkpoint)
from engine.config import Config
from engine.device import inputs_to

KEEP_CHECKPOINTS = 5
DISK_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO)


class RunFolder:
    """Mixed into engine.loop.Trainer (it uses the trainer's run_dir, step, emit, config, nets, opts, ema, rng,
    fixed inputs, dataset and algorithm)."""

    def _repair_logs(self) -> None:
        """On resume: drop torn lines (a full disk, a kill) and the rows after the checkpoint (training that was
        lost), so the curves neither break nor step back."""
        torn = later = 0
        for name in ("metrics.jsonl", "changes.jsonl"):
            t, l_ = repair_jsonl(self.run_dir / name, self.step)
            torn, later = torn + t, later + l_
        if torn:
            self.emit(ev.Warning(f"Dropped {torn} unreadable line(s) from the run's logs (a full disk or a kill "
                                 f"leaves a torn line)."))

    def _log_change(self, entry: dict) -> None:
        if self.run_dir:
            with open(self.run_dir / "changes.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    def save_checkpoint(self) -> Path:
        self.flush_writes()  # the rows and snapshots up to this step are on disk before the checkpoint is
        path = self.run_dir / "checkpoints" / f"step_{self.step:07d}.pt"
        save_checkpoint(path, self.state_dict())
        self.last_good_checkpoint = path
        self._prune_checkpoints()
        self.emit(ev.Checkpointed(self.step, path))
        return path

    def _prune_checkpoints(self) -> None:
        for old in by_step((self.run_dir / "checkpoints").glob("step_*.pt"))[:-KEEP_CHECKPOINTS]:
            if old != self.last_good_checkpoint:
                old.unlink(missing_ok=True)

    def disk_error(self, exc: BaseException) -> str:
        """One sentence for a write the disk refused (full, too large, read-only), or "" for other errors."""
        seen = set()
        while exc is not None and not (isinstance(exc, OSError) and exc.errno in DISK_ERRORS) and id(exc) not in seen:
            seen.add(id(exc))  # torch.save wraps the OSError in a RuntimeError: look down the chain
            exc = exc.__cause__ or exc.__context__
        if exc is None or id(exc) in seen:
            return ""
        where = self.run_dir if self.run_dir is not None else "the run folder"
        back = f"; resume from {self.last_good_checkpoint}" if self.last_good_checkpoint else ""
        return (f"Writing to {where} failed at step {self.step}: {exc.strerror or exc} (the disk is full or refuses "
                f"the file); the files already saved are intact — free some space{back}.")

    # -- the training state in a checkpoint ---------------------------------------------------------
    def state_dict(self) -> dict:
        algorithm = self.algorithm
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "algorithm": self.config.algorithm,
            "data": {"shape": list(self.dataset.shape), "num_classes": self.dataset.num_classes,
                     **data_fields(self.dataset)},
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "opts": {name: opt.state_dict() for name, opt in self.opts.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in algorithm.scalers.items()},
            "ema": {name: net.state_dict() for name, net in self.ema.items()},
            "rng": {"train": self.rng.get_state().cpu()},
            "fixed": inputs_to(self.fixed, "cpu"),
            "extra": algorithm.state(),
        }

    def _restore(self, state: dict) -> None:
        check_matches(state, self.config.algorithm, tuple(self.dataset.shape), self.dataset.num_classes)
        check_data_matches(state.get("data") or {}, self.dataset)
        restore_into(state, self.nets, self.opts, self.algorithm.scalers, self.ema)
        self.algorithm.settings_changed()
        self.rng.set_state(state["rng"]["train"].to(self.rng.get_state().device))
        self.fixed = inputs_to(state["fixed"], self.device)
        self.algorithm.load_state(state.get("extra") or {})
        self.step = int(state["step"])

    def _rollback(self) -> None:
        if self.last_good_checkpoint is None or not Path(self.last_good_checkpoint).is_file():
            self.emit(ev.CommandRejected("There is no checkpoint to roll back to yet."))
            return
        try:
            state = load_checkpoint(self.last_good_checkpoint)
            self._restore(state)
        except CheckpointError as exc:
            self.emit(ev.CommandRejected(str(exc)))
            return
        restored = Config.from_saved(state["config"])
        changed = []
        for key in self.config.live_keys():
            key, old, new = self.config.set(key, restored.get(key), check=False)
            if old != new:
                changed.append((key, old, new))
        self.algorithm.settings_changed()
        self.settings_version += 1
        self.rollbacks += 1
        self.emit(ev.RolledBack(self.step, self.last_good_checkpoint))
        for key, old, new in changed:  # the checkpoint's live settings are back: said and logged like any change
            self._announce_change(key, old, new)
        self.emit_samples()

"""Checkpoints: a plain dict of state dicts plus config, step, RNG state and fixed inputs.

Version 2 holds, for any algorithm family: `algorithm`, `data` (shape, classes), `nets`, `opts`,
`scalers` and `ema` (state dicts by the family's names), `rng`, `fixed` (the sample grid's inputs)
and `extra` (the family's own state: BEGAN's k_t, historical averages, ...). A version-1 file
(one trainer for everything, before families) is converted on load: it is all "gan" or "vae".

Written atomically (temp file in the same folder, fsync, os.replace), so a crash or a
full disk never leaves a half-written checkpoint under the real name. Read with
torch.load(weights_only=True): nothing in a checkpoint can run code.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

FORMAT = "gan-studio-checkpoint"
VERSION = 2
REQUIRED = ("step", "config", "nets", "opts", "rng", "fixed")  # what a version-2 checkpoint must hold


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message is one sentence."""


def atomic_write(path: Path, write) -> Path:
    """Call write(file_object) on a temp file next to path, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should look like any saved file
        os.replace(tmp, path)
        sync_folder(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power cut (where the system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> int:
    """Delete the temp files an interrupted atomic_write left in a folder (NAME.XXXX.tmp); returns how many."""
    removed = 0
    for tmp in Path(folder).glob("*.tmp") if Path(folder).is_dir() else ():
        if tmp.is_file() and tmp.name.count(".") >= 2:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def read_jsonl(path: Path, keep=lambda row: True) -> tuple[list[dict], int]:
    """The rows of a run's jsonl log that are JSON objects with an integer "step" (and pass `keep`), and how
    many non-empty lines were skipped as unreadable (a full disk or a kill leaves a torn last line)."""
    rows, skipped = [], 0
    path = Path(path)
    if not path.is_file():
        return rows, 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        step = row.get("step") if isinstance(row, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and keep(row):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def repair_jsonl(path: Path, last_step: int | None = None) -> tuple[int, int]:
    """Rewrite a run's jsonl log keeping only its readable rows and, with last_step, only those up to that step
    (rows after a checkpoint belong to training that was lost). Returns (unreadable rows, rows after)."""
    rows, torn = read_jsonl(path)
    kept = [row for row in rows if last_step is None or row["step"] <= last_step]
    later = len(rows) - len(kept)
    if torn or later:
        data = "".join(json.dumps(row) + "\n" for row in kept).encode()
        atomic_write(Path(path), lambda handle: handle.write(data))
    return torn, later


def save_checkpoint(path: Path, state: dict) -> Path:
    state = {"format": FORMAT, "version": VERSION, **state}
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; choose a .pt checkpoint written by GAN Studio.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in str(exc):
            raise CheckpointError(f"{path.name} holds objects other than weights, so it was not loaded "
                                  f"(only GAN Studio checkpoints are accepted).") from None
        raise CheckpointError(f"{path.name} is truncated or not a checkpoint ({text[:120]}); "
                              f"choose another file or an earlier checkpoint.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a GAN Studio checkpoint; choose a file written by GAN Studio.")
    if state.get("version") == 1:
        try:
            return _learned_variance_before(upgrade_v1(state))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{path.name} is a damaged version-1 checkpoint (it lacks {exc}); "
                                  f"choose another file.") from None
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path.name} is checkpoint version {state.get('version')}, this GAN Studio "
                              f"reads versions 1 and {VERSION}; open it with the GAN Studio that wrote it.")
    missing = [key for key in REQUIRED if key not in state]
    if missing or not isinstance(state.get("config"), dict) or not isinstance(state.get("nets"), dict):
        raise CheckpointError(f"{path.name} is damaged: it lacks {', '.join(missing) or 'a valid config or nets'}; "
                              f"choose another file or an earlier checkpoint.")
    if not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(f"{path.name} is damaged: its step is {state['step']!r}; choose another file.")
    return _learned_variance_before(state)


def _learned_variance_before(state: dict) -> dict:
    """InfoGAN's Q learned its continuous codes' variance before model.info_learned_variance existed: a run
    written then resumes, samples and exports as it trained."""
    model = state["config"].get("model")
    if isinstance(model, dict) and model.get("info_continuous") and "info_learned_variance" not in model:
        model["info_learned_variance"] = True
    return state


def restore_into(state: dict, nets: dict, opts: dict | None = None, scalers: dict | None = None,
                 ema: dict | None = None, prefer_ema: tuple = ()) -> None:
    """Load a version-2 state into modules by name (nets in `prefer_ema` take their EMA copy where
    there is one); refuse in one sentence when they do not fit."""
    try:
        for name, net in nets.items():
            weights = (state.get("ema") or {}).get(name) if name in prefer_ema else None
            net.load_state_dict(weights if weights is not None else state["nets"][name])
        for name, copy in (ema or {}).items():
            copy.load_state_dict(state["ema"].get(name) or state["nets"][name])
        for name, opt in (opts or {}).items():
            opt.load_state_dict(state["opts"][name])
        for name, scaler in (scalers or {}).items():
            if state["scalers"].get(name):
                scaler.load_state_dict(state["scalers"][name])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"The checkpoint's models do not match this preset ({first}); "
                              f"use the preset it was trained with.") from None


def check_matches(state: dict, algorithm: str, shape: tuple, num_classes: int) -> None:
    """Refuse, in one sentence, a checkpoint of another family or of other data than this run's."""
    if state.get("algorithm", algorithm) != algorithm:
        raise CheckpointError(f"The checkpoint was trained with algorithm {state.get('algorithm')!r}, not "
                              f"{algorithm!r}; use the preset it was trained with.")
    data = state.get("data") or {}
    if tuple(data.get("shape", ())) != tuple(shape) or data.get("num_classes") != num_classes:
        raise CheckpointError(
            f"The checkpoint was trained on data shaped {tuple(data.get('shape', ()))} with "
            f"{data.get('num_classes')} classes, not {tuple(shape)} with {num_classes}; "
            f"use the preset it was trained with.")


def data_fields(dataset) -> dict:
    """What a data set asks to keep in checkpoints beside its shape (a vocabulary, say)."""
    fields = getattr(dataset, "checkpoint_fields", None)
    return fields() if fields is not None else {}


def check_data_matches(data: dict, dataset) -> None:
    """Refuse, in one sentence, data whose kept fields (a vocabulary) differ from the checkpoint's."""
    for name, value in data_fields(dataset).items():
        if name in data and data[name] != value:
            raise CheckpointError(f"The checkpoint was trained on other data: its {name} differs from this data's; "
                                  f"use the data (file and settings) it was trained on.")


def by_step(files) -> list[Path]:
    """step_*.pt / step_*.png files in step order (names sort wrongly once a step has more than 7 digits)."""
    return sorted(files, key=lambda p: (checkpoint_step(p), p.name))


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint's file name (step_0001000.pt), or −1."""
    try:
        return int(Path(path).stem.split("_")[1])
    except (IndexError, ValueError):
        return -1


def upgrade_v1(old: dict) -> dict:
    """A version-1 checkpoint in the version-2 layout: G and D become the GAN family's generator and
    discriminator, or the VAE's decoder and encoder."""
    from engine.config import migrate
    config = migrate(old["config"])
    vae = config.get("algorithm") == "vae"
    names = {"g": "decoder", "d": "encoder"} if vae else {"g": "generator", "d": "discriminator"}
    nets = {names["g"]: old["generator"], names["d"]: old["discriminator"]}
    opts = {names["g"]: old["opt_g"], names["d"]: old["opt_d"]}
    if old.get("baseline") is not None:
        nets["baseline"], opts["baseline"] = old["baseline"], old["opt_baseline"]
    extra = {} if vae else {"loss_state": old.get("loss_state") or {}}
    if old.get("history") is not None:
        extra.update(history=old["history"], history_count=old["history_count"])
    return {
        "format": FORMAT, "version": VERSION, "step": old["step"],
        "config": {**config, "algorithm": "vae" if vae else "gan"},
        "algorithm": "vae" if vae else "gan",
        "data": {"shape": list(old["data_shape"]), "num_classes": old["num_classes"]},
        "nets": nets, "opts": opts,
        "scalers": {} if vae else {"generator": old.get("scaler_g"), "discriminator": old.get("scaler_d")},
        "ema": {names["g"]: old["ema"]} if old.get("ema") is not None else {},
        "rng": {"train": old["rng"]["train"]},
        "fixed": {k: v for k, v in old["fixed"].items() if not vae or k == "z"},
        "extra": extra,
    }

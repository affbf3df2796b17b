"""A sample step's audio kept beside its picture (samples/step_XXXXXXX.npz), so the studio's step slider can play
earlier snapshots: the clips as 16-bit integers (N x K x T), the rate and each clip's label."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from engine.checkpoint import atomic_write


def save_audio_snapshot(path: Path, audio: np.ndarray, rate: int, labels=()) -> Path:
    buffer = io.BytesIO()
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    np.savez(buffer, audio=pcm, rate=np.int64(rate), labels=np.array(list(labels or ()), dtype=str))
    data = buffer.getvalue()
    return atomic_write(Path(path), lambda handle: handle.write(data))


def load_audio_snapshot(path: Path) -> tuple[np.ndarray, int, tuple]:
    """(audio N x K x T float32, rate, labels); OSError or ValueError for a missing or damaged file."""
    with np.load(path, allow_pickle=False) as data:
        return data["audio"].astype(np.float32) / 32767, int(data["rate"]), tuple(str(x) for x in data["labels"])

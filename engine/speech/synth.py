"""Clean speech without a download: sentences spoken by espeak-ng in several voices and speeds.

A formant synthesiser is not a human voice, but it gives clean, perfectly aligned speech in seconds, which is
what a speech-enhancement GAN needs to show it learns; a person's own recordings come in through folders.py.
Sentences come from a text file or the system's fortune cookies; the held-out sentences are never spoken in
training. A corpus is built once and cached as an .npz named by a hash of everything that shapes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from engine.data.download import CancelFn, cancelled  # asked between utterances, as between chunks
from engine.paths import cache_dir
from engine.settings import ConfigError
from engine.speech.wav import decode_wav, resample

ESPEAK_MISSING = ("The built-in speech is synthesised with espeak-ng, which is not installed; install the Debian "
                  "package espeak-ng (apt-get install espeak-ng) or give a folder of noisy/ and clean/ WAV files.")
# Plain voices and voice+variant pairs that espeak-ng 1.51 ships (no mbrola): male and female, four accents.
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland+m3", "en-029+f2")
SPEEDS = (140, 170, 200)          # words per minute
TARGET_RMS = 0.05                 # about -26 dBFS: room for noise on top before anything clips
PEAK = 0.99
KEEP_SILENCE = 0.05               # seconds of lead-in and tail kept around the speech
MIN_WORDS, MAX_WORDS = 3, 14
CACHE_VERSION = 1
ESPEAK_TIMEOUT = 60.0
_PLAIN = re.compile(r"[\"']?[A-Za-z0-9][A-Za-z0-9 ,.;:!?'\"-]*")   # starts with a word: no ':-)' faces
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Cancelled(RuntimeError):
    """Building a corpus was stopped by its `cancel` callback; nothing was cached."""


@dataclass
class Corpus:
    """Clean utterances (float32 mono at `rate`) and the sentences they speak."""
    train: list[np.ndarray]
    held: list[np.ndarray]
    train_text: list[str]
    held_text: list[str]
    rate: int


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def sentences(text_file: str = "", limit: int = 0) -> list[str]:
    """Sentences of 3-14 words in plain ASCII letters, digits and punctuation, starting with a word (what
    espeak-ng reads without spelling out symbols), from text_file (one or more sentences per line) or the
    fortune cookies. Unique, in a shuffled order that is the same on every run; limit > 0 keeps the first
    `limit`."""
    if text_file:
        try:
            lines = Path(text_file).read_bytes().decode("utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise ConfigError(f"Could not read the text file {text_file} ({exc.strerror or exc}); check the "
                              f"path.") from None
    else:
        from engine.data.images import DataError
        from engine.text.data import fortune_lines   # imported here: it pulls in torch
        try:
            lines = fortune_lines()
        except DataError:
            raise ConfigError("The built-in sentences are the fortune cookies of the Debian package 'fortunes', "
                              "which is not installed; install it (apt-get install fortunes) or set "
                              "segan.text_file to a text file of sentences.") from None
    found = set()
    for line in lines:
        for part in _SENTENCE_END.split(" ".join(line.split())):
            words = part.split()
            if MIN_WORDS <= len(words) <= MAX_WORDS and _PLAIN.fullmatch(part) and "--" not in part:
                found.add(" ".join(words))
    ordered = sorted(found)
    shuffled = [ordered[i] for i in np.random.default_rng(0).permutation(len(ordered))]
    return shuffled[:limit] if limit > 0 else shuffled


@lru_cache(maxsize=1)
def _variants() -> frozenset[str]:
    """The voice variants (the part after '+') this espeak-ng has; empty when its data folder is not found.
    Asked because espeak-ng silently speaks the plain voice when a variant does not exist."""
    try:
        info = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    found = re.search(r"Data at:\s*(.+)", info)
    folder = Path(found.group(1).strip()) / "voices" / "!v" if found else None
    return frozenset(p.name for p in folder.iterdir()) if folder and folder.is_dir() else frozenset()


def synthesise(text: str, voice: str, speed: int, rate: int) -> np.ndarray:
    """`text` spoken by espeak-ng: float32 mono at `rate`, silence trimmed to KEEP_SILENCE at each end, RMS
    TARGET_RMS unless that would push the peak above PEAK."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError(ESPEAK_MISSING)
    variant = voice.partition("+")[2]
    if variant and _variants() and variant not in _variants():
        raise ConfigError(f"The espeak-ng voice {voice!r} names a variant {variant!r} that is not installed; "
                          f"list them with espeak-ng --voices=variant.")
    try:   # the text goes through stdin, so a sentence starting with '-' is not taken for an option
        done = subprocess.run([exe, "-v", voice, "-s", str(int(speed)), "--stdout", "--stdin"],
                              input=text.encode("utf-8"), capture_output=True, timeout=ESPEAK_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"espeak-ng failed with the voice {voice!r} ({exc}); check the voice name with "
                          f"espeak-ng --voices=en.") from None
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", errors="replace").strip() or f"exit status {done.returncode}"
        raise ConfigError(f"espeak-ng failed with the voice {voice!r} ({reason}); check the voice name with "
                          f"espeak-ng --voices=en.")
    audio, espeak_rate = decode_wav(done.stdout, f"espeak-ng's output for the voice {voice!r}")
    audio = resample(audio, espeak_rate, rate).astype(np.float64)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max()) if audio.size and audio.any() else []
    if len(loud) == 0:
        raise ConfigError(f"espeak-ng made no sound with the voice {voice!r} for the text {text[:60]!r}; use a "
                          f"text of ordinary words.")
    keep = int(KEEP_SILENCE * rate)
    audio = audio[max(0, loud[0] - keep):loud[-1] + 1 + keep]
    audio *= TARGET_RMS / np.sqrt(np.mean(audio ** 2))
    peak = np.abs(audio).max()
    if peak > PEAK:
        audio *= PEAK / peak
    return audio.astype(np.float32)


def voice_and_speed(index: int, voices: tuple[str, ...], speeds: tuple[int, ...]) -> tuple[str, int]:
    """The voice and speed of the index-th utterance of a set: voices cycle fastest and the speed shifts by
    one each voice round, so the first len(voices) utterances already span the speeds and every
    (voice, speed) pair comes up once in each len(voices) * len(speeds) utterances."""
    nv, ns = len(voices), len(speeds)
    c = index % (nv * ns)
    return voices[c % nv], speeds[(c // nv + c % nv) % ns]


def _cache_path(n_train: int, n_held: int, rate: int, voices, speeds, text_file: str) -> Path:
    source: dict = {"text_file": ""}
    if text_file:
        try:
            st = Path(text_file).stat()
        except OSError as exc:
            raise ConfigError(f"Could not read the text file {text_file} ({exc.strerror or exc}); check the "
                              f"path.") from None
        source = {"text_file": str(Path(text_file).resolve()), "mtime": st.st_mtime_ns, "size": st.st_size}
    key = json.dumps({"version": CACHE_VERSION, "n_train": n_train, "n_held": n_held, "rate": rate,
                      "voices": list(voices), "speeds": [int(s) for s in speeds], **source}, sort_keys=True)
    return cache_dir() / "speech" / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _save(path: Path, corpus: Corpus) -> None:
    """Write the cache atomically; a cache that cannot be written only costs a rebuild next time."""
    arrays = {"version": np.int64(CACHE_VERSION), "rate": np.int64(corpus.rate)}
    for name in ("train", "held"):
        clips, texts = getattr(corpus, name), getattr(corpus, name + "_text")
        arrays[name] = np.concatenate(clips) if clips else np.zeros(0, np.float32)
        arrays[name + "_len"] = np.array([len(c) for c in clips], dtype=np.int64)
        arrays[name + "_text"] = np.array(texts, dtype=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".part", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path, n_train: int, n_held: int, rate: int) -> Corpus | None:
    """The cached corpus, or None when there is none or it is damaged or does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or int(z["rate"]) != rate:
                return None
            parts = {}
            for name, count in (("train", n_train), ("held", n_held)):
                lengths, audio, texts = z[name + "_len"], z[name], z[name + "_text"].tolist()
                if len(lengths) != count or len(texts) != count or int(lengths.sum()) != len(audio):
                    return None
                parts[name] = [a.astype(np.float32) for a in np.split(audio, np.cumsum(lengths)[:-1])] \
                    if count else []
                parts[name + "_text"] = [str(t) for t in texts]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return Corpus(rate=rate, **parts)


def corpus(n_train: int, n_held: int, rate: int, voices: tuple[str, ...] = VOICES,
           speeds: tuple[int, ...] = SPEEDS, text_file: str = "",
           progress: Callable[[int, int], None] | None = None, cancel: CancelFn | None = None) -> Corpus:
    """n_held held-out and n_train training utterances of distinct sentences (held-out first in the sentence
    order, so growing n_train never moves a sentence into the held-out set). From the cache when built
    before with the same arguments; `cancel` (a callable or threading.Event) raises Cancelled between
    utterances."""
    voices, speeds = tuple(voices), tuple(int(s) for s in speeds)
    if n_train < 0 or n_held < 0 or rate <= 0 or not voices or not speeds:
        raise ValueError("corpus needs n_train, n_held >= 0, rate > 0 and at least one voice and speed")
    path = _cache_path(n_train, n_held, rate, voices, speeds, text_file)
    total = n_train + n_held
    cached = _load(path, n_train, n_held, rate) if path.is_file() else None
    if cached is not None:
        if progress:
            progress(total, total)
        return cached
    if not espeak_available():
        raise ConfigError(ESPEAK_MISSING)
    found = sentences(text_file)
    if len(found) < total:
        source = f"the text file {text_file}" if text_file else "the fortune cookies"
        raise ConfigError(f"{source[0].upper()}{source[1:]} has only {len(found)} usable sentences "
                          f"({MIN_WORDS}-{MAX_WORDS} plain words) but {total} are needed ({n_train} training, "
                          f"{n_held} held out); ask for fewer or give a longer text file.")
    held_text, train_text = found[:n_held], found[n_held:total]
    audio: dict[str, list[np.ndarray]] = {"held": [], "train": []}
    done = 0
    for name, texts in (("held", held_text), ("train", train_text)):
        for i, text in enumerate(texts):
            if cancelled(cancel):
                raise Cancelled("Making the speech corpus was cancelled.")
            audio[name].append(synthesise(text, *voice_and_speed(i, voices, speeds), rate))
            done += 1
            if progress:
                progress(done, total)
    result = Corpus(audio["train"], audio["held"], train_text, held_text, rate)
    _save(path, result)
    return result

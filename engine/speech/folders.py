"""A person's own speech: FOLDER/noisy/NAME.wav and FOLDER/clean/NAME.wav recordings of the same utterance.

Pairs are matched by file name (case-sensitive stem) and read in full before anything is returned, so a
problem with any file is reported, naming it, before training starts rather than hours into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from engine.settings import ConfigError
from engine.speech.wav import read_wav, resample

SILENT_RMS = 1e-4        # a clean recording quieter than this is silence: nothing to learn to recover
MIN_SECONDS = 0.1        # shorter pairs cannot fill even one training window
_SHOWN = 3               # unpaired names listed in an error message


def _wav_files(folder: Path) -> dict[str, Path]:
    """The WAV files directly in folder (sub-folders ignored), by stem."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() == ".wav"}


def _unpaired(side: str, other: str, names: list[str], files: dict[str, Path]) -> ConfigError:
    shown = ", ".join(files[n].name for n in names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
    plural = "file" if len(names) == 1 else "files"
    return ConfigError(f"{side}/ has {len(names)} {plural} with no partner in {other}/ ({shown}); give every "
                       f"noisy file a clean file of the same name.")


def pair_names(folder: str | Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """The noisy and clean WAV files of folder by stem, refusing (ConfigError) a folder whose files do not pair."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"The speech folder {root} does not exist; give a folder with noisy/ and clean/ "
                          f"sub-folders of WAV files.")
    for side in ("noisy", "clean"):
        if not (root / side).is_dir():
            raise ConfigError(f"The speech folder {root} has no {side}/ sub-folder; put the {side} WAV files in "
                              f"{root / side}.")
    noisy, clean = _wav_files(root / "noisy"), _wav_files(root / "clean")
    if not noisy and not clean:
        raise ConfigError(f"The speech folder {root} has no WAV files in noisy/ or clean/; add pairs of .wav "
                          f"files with the same names.")
    lonely_noisy = sorted(set(noisy) - set(clean))
    if lonely_noisy:
        raise _unpaired(f"{root / 'noisy'}", "clean", lonely_noisy, noisy)
    lonely_clean = sorted(set(clean) - set(noisy))
    if lonely_clean:
        raise _unpaired(f"{root / 'clean'}", "noisy", lonely_clean, clean)
    return noisy, clean


def load_pairs(folder: str | Path, rate: int,
               progress: Callable[[int, int], None] | None = None) -> tuple[list[np.ndarray], list[np.ndarray],
                                                                          list[str]]:
    """Noisy and clean float32 clips at `rate` and the pair names, sorted by name; each pair cut to the
    shorter of its two lengths (a recorder's trailing samples differ). progress(done, total) after each pair."""
    noisy_files, clean_files = pair_names(folder)
    names = sorted(noisy_files)
    noisy_out, clean_out = [], []
    for done, name in enumerate(names, 1):
        noisy = _read(noisy_files[name], rate)
        clean = _read(clean_files[name], rate)
        if np.sqrt(np.mean(np.square(clean, dtype=np.float64))) < SILENT_RMS:
            raise ConfigError(f"The clean recording {clean_files[name]} is silence; replace it or remove the "
                              f"pair {name}.")
        n = min(len(noisy), len(clean))
        if n < MIN_SECONDS * rate:
            raise ConfigError(f"The pair {name} in {folder} is only {n / rate:.3f} s long; give recordings of at "
                              f"least {MIN_SECONDS} s or remove it.")
        noisy_out.append(noisy[:n])
        clean_out.append(clean[:n])
        if progress:
            progress(done, len(names))
    return noisy_out, clean_out, names


def _read(path: Path, rate: int) -> np.ndarray:
    """read_wav (whose errors already name the file) resampled to rate."""
    audio, file_rate = read_wav(path)
    return resample(audio, file_rate, rate)

"""`gan-studio enhance CKPT IN OUT`: recordings through a SEGAN checkpoint's G.

IN is a WAV file or a folder of them (sub-folders included); each is read (any rate, mixed down to mono),
resampled to the model's rate, enhanced window by window, resampled back and written as a 16-bit WAV at its own
rate: OUT itself for one file (OUT may be a folder), else OUT/<its path under IN>. In a folder, files that are
not readable WAVs are skipped and counted; a single file that is not one is refused in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.checkpoint import load_checkpoint
from engine.settings import ConfigError


@dataclass
class Enhancer:
    algorithm: object
    nets: dict
    step: int

    @property
    def rate(self) -> int:
        return self.algorithm.rate

    def enhance(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """A recording at `rate` enhanced, at `rate` again, the same length."""
        from engine.speech.wav import resample
        at_model = resample(samples, rate, self.rate) if rate != self.rate else samples
        out = self.algorithm.enhance_array(at_model.astype(np.float32), self.nets)
        back = resample(out, self.rate, rate) if rate != self.rate else out
        fitted = np.zeros(len(samples), np.float32)
        fitted[:min(len(back), len(samples))] = back[:len(samples)]
        return fitted


def load_enhancer(source, device: str = "cpu") -> Enhancer:
    """An Enhancer from a checkpoint path, a loaded state or a Sampler; ConfigError for a model that is not SEGAN."""
    from engine.sampler import Sampler, load_sampler
    if isinstance(source, Sampler):
        sampler = source
    else:
        state = source if isinstance(source, dict) else load_checkpoint(Path(source))
        family = state["config"].get("algorithm", "gan")
        if family != "segan":
            name = "This checkpoint" if isinstance(source, dict) else Path(source).name
            raise ConfigError(f"{name} is a {family} model, which does not enhance speech; give a SEGAN checkpoint.")
        sampler = load_sampler(state, device=device)
    if sampler.config.algorithm != "segan":
        raise ConfigError(f"This is a {sampler.config.algorithm} model, which does not enhance speech.")
    return Enhancer(sampler.algorithm, sampler.sampling_nets(), sampler.step)


@dataclass
class Written:
    files: list = field(default_factory=list)
    skipped: int = 0
    where: Path | None = None


def wav_files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() == ".wav")


def enhance_path(enhancer: Enhancer, source, out, progress=None) -> Written:
    """Enhance IN (a WAV or a folder) into OUT; progress(done, total) after each file."""
    from engine.speech.wav import read_wav, write_wav
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if not source.exists():
        raise ConfigError(f"{source} does not exist; give a WAV file or a folder of WAV files to enhance.")
    if source.is_file():
        samples, rate = read_wav(source)
        target = out / source.name if out.is_dir() else out
        if target.resolve() == source.resolve():
            raise ConfigError(f"{target} is the input itself; give another file or a folder to write into.")
        write_wav(target, enhancer.enhance(samples, rate), rate)
        if progress:
            progress(1, 1)
        return Written([target], 0, target.parent)
    files = [f for f in wav_files(source) if out.resolve() not in f.resolve().parents]
    if not files:
        raise ConfigError(f"{source} holds no .wav file; give a WAV file or a folder of WAV files to enhance.")
    written = Written(where=out)
    for i, file in enumerate(files):
        try:
            samples, rate = read_wav(file)
        except ConfigError:
            written.skipped += 1
        else:
            target = out / file.relative_to(source)
            write_wav(target, enhancer.enhance(samples, rate), rate)
            written.files.append(target)
        if progress:
            progress(i + 1, len(files))
    if not written.files:
        raise ConfigError(f"None of the {len(files)} .wav files under {source} could be read; nothing was written.")
    return written

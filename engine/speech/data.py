"""SEGAN's data: clean speech and noisy versions of it, as training windows and as held-out clips.

Built in: sentences spoken by espeak-ng in several voices and speeds (engine.speech.synth), with noise
(engine.speech.noise: white, pink, brown, babble of other utterances) mixed in on the fly at SNRs drawn from a
list, so every training window is heard in many noises. The noise is a fixed bank made from a seed; which part of
it, which kind and which SNR each window gets are drawn from the run's generator, so resume is exact. Held-out
sentences (never trained on) are mixed once, deterministically: clip i gets noise kind i mod K and SNR
(i div K) mod S, so the held-out set covers every kind and SNR.

Your own: a folder with noisy/ and clean/ WAV files paired by name (engine.speech.folders); the last
`held_out` share of the pairs (at least one) is held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.settings import ConfigError

NOISE_SECONDS = 60  # of each kind in the training bank
HELD_NOISE_SEED = 7919  # the held-out clips' noise: another bank than training's


@dataclass
class HeldClip:
    noisy: np.ndarray
    clean: np.ndarray
    label: str  # "white 5 dB", or the file's name


def windows(signal: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Windows of `window` samples every `hop` (the paper: half a window), the last one zero-padded."""
    n = max(1, int(np.ceil(max(len(signal) - window, 0) / hop)) + 1)
    padded = np.zeros(window + (n - 1) * hop, np.float32)
    padded[:len(signal)] = signal
    return np.stack([padded[i * hop:i * hop + window] for i in range(n)])


class SpeechData:
    """Training windows (clean, and noisy where the folder gives them), the noise bank and held-out clips."""
    kind = "audio"
    num_classes = 0
    class_names = ()

    def __init__(self, rate: int, window: int, clean: list, held: list[HeldClip], noisy: list | None = None,
                 bank: dict | None = None, snrs: tuple = (), source: str = "synth"):
        self.rate, self.window, self.source = rate, window, source
        self.shape = (1, window)
        hop = window // 2
        pieces = [windows(c, window, hop) for c in clean]
        self.clean = torch.from_numpy(np.concatenate(pieces))
        # each window's utterance power sets its noise level, so a quiet window gets the utterance's SNR
        power = [np.full(len(w), float(np.mean(c ** 2)) + 1e-10, np.float32) for w, c in zip(pieces, clean)]
        self.power = torch.from_numpy(np.concatenate(power))
        self.noisy = None if noisy is None else torch.from_numpy(
            np.concatenate([windows(n, window, hop) for n in noisy]))
        self.kinds = tuple(bank) if bank else ()
        self.bank = torch.from_numpy(np.stack([bank[k] for k in self.kinds])) if bank else None
        self.snrs = torch.tensor(snrs, dtype=torch.float32)
        self.held = held

    def __len__(self) -> int:
        return len(self.clean)

    def to(self, device):
        for name in ("clean", "power", "noisy", "bank", "snrs"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        return self

    def sample_pairs(self, n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(noisy, clean), each n x 1 x window, drawn from rng."""
        device = self.clean.device
        pick = torch.randint(len(self.clean), (n,), generator=rng, device=rng.device).to(device)
        clean = self.clean[pick]
        if self.noisy is not None:
            return self.noisy[pick].unsqueeze(1), clean.unsqueeze(1)
        kind = torch.randint(len(self.kinds), (n,), generator=rng, device=rng.device).to(device)
        snr = self.snrs[torch.randint(len(self.snrs), (n,), generator=rng, device=rng.device).to(device)]
        start = torch.randint(self.bank.shape[1] - self.window, (n,), generator=rng, device=rng.device).to(device)
        index = start[:, None] + torch.arange(self.window, device=device)[None]
        noise = self.bank[kind[:, None], index]  # unit power
        scale = torch.sqrt(self.power[pick] / 10 ** (snr / 10))
        return (clean + scale[:, None] * noise).unsqueeze(1), clean.unsqueeze(1)

    def sample(self, n: int, rng: torch.Generator):
        return self.sample_pairs(n, rng)[1], None

    def checkpoint_fields(self) -> dict:
        return {"rate": self.rate, "window": self.window}


class SpeechSpace:
    """Stands in for the data when a checkpoint is only used to enhance: the rate and the window."""
    kind = "audio"
    num_classes = 0
    class_names = ()
    held: list = []

    def __init__(self, rate: int, window: int):
        self.rate, self.window = rate, window
        self.shape = (1, window)

    def to(self, device):
        return self


def held_mixtures(held: list[np.ndarray], kinds: tuple, snrs: tuple, rate: int,
                  speech: list[np.ndarray]) -> list[HeldClip]:
    from engine.speech.noise import mix, noise_bank
    longest = max(len(c) for c in held)
    bank = noise_bank(kinds, max(2.0, longest / rate + 1.0), rate, HELD_NOISE_SEED, speech)
    clips = []
    for i, clean in enumerate(held):
        kind, snr = kinds[i % len(kinds)], snrs[(i // len(kinds)) % len(snrs)]
        start = (i * 977) % max(1, len(bank[kind]) - len(clean))
        clips.append(HeldClip(mix(clean, bank[kind][start:start + len(clean)], snr).astype(np.float32),
                              clean.astype(np.float32), f"{kind} {snr:g} dB"))
    return clips


def make_speech(s, progress=None, cancel=None) -> SpeechData:
    """The data of a [segan] section: synthesised (source = 'synth') or a folder of pairs; progress(task, done,
    total) as the trainer's."""
    def told(task):
        return None if progress is None else (lambda done, total: progress(task, done, total))

    if s.source == "folder":
        from engine.speech.folders import load_pairs
        noisy, clean, names = load_pairs(s.folder, s.rate, told("Reading the noisy/ and clean/ recordings"))
        if len(names) < 2:
            raise ConfigError(f"segan.folder = {s.folder!r} has {len(names)} pair; at least 2 are needed, one to "
                              f"train on and one held out.")
        k = max(1, int(round(len(names) * s.held_out)))
        held = [HeldClip(n, c, name) for n, c, name in zip(noisy[-k:], clean[-k:], names[-k:])]
        return SpeechData(s.rate, s.window, clean[:-k], held, noisy=noisy[:-k], source="folder")
    from engine.speech.noise import noise_bank
    from engine.speech.synth import corpus
    kinds, snrs = tuple(s.noises), tuple(float(x) for x in s.snrs)
    speech = corpus(s.utterances, s.held_clips, s.rate, text_file=s.text_file,
                    progress=told("Speaking the sentences with espeak-ng (once; cached)"), cancel=cancel)
    bank = noise_bank(kinds, NOISE_SECONDS, s.rate, s.noise_seed, speech.train)
    held = held_mixtures(speech.held, kinds, snrs, s.rate, speech.train)
    return SpeechData(s.rate, s.window, speech.train, held, bank=bank, snrs=snrs)

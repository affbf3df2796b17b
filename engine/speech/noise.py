"""Noise to corrupt clean speech with, and mixing at an exact signal-to-noise ratio.

White, pink (1/f power) and brown (1/f^2) noise are the classic coloured noises: they weight the low
frequencies where speech lives progressively more, so they are progressively harder to remove. Babble
(several talkers at once) is the hardest: it is speech-shaped, so a spectral rule cannot tell it apart.
Every noise comes out at unit RMS, so the SNR of a mix is set by one scale factor.
"""

from __future__ import annotations

import numpy as np

NOISE_TYPES = ("white", "pink", "brown", "babble")
BABBLE_TALKERS = 5


def make_noise(kind: str, n: int, rng: np.random.Generator, speech: list[np.ndarray] | None = None) -> np.ndarray:
    """n samples of `kind` noise (one of NOISE_TYPES), float32 at unit RMS. Babble needs `speech`: utterances
    to talk over one another."""
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; use one of {', '.join(NOISE_TYPES)}")
    n = int(n)
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    if kind == "babble":
        noise = _babble(n, rng, speech)
    else:
        noise = rng.standard_normal(n)
        if kind != "white":
            noise = _coloured(noise, 1.0 if kind == "pink" else 2.0)
    return _unit_rms(noise)


def _coloured(white: np.ndarray, exponent: float) -> np.ndarray:
    """White noise whose power spectrum is reshaped to 1/f^exponent: amplitudes scaled by f^(-exponent/2)
    in the frequency domain; the DC bin is zeroed, as 1/f has no finite value there."""
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum *= f ** (-exponent / 2.0)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n=len(white))


def _babble(n: int, rng: np.random.Generator, speech: list[np.ndarray] | None) -> np.ndarray:
    """BABBLE_TALKERS utterances drawn at random (repeats allowed when there are fewer), each looped to n
    samples from a random starting point, summed."""
    talkers = [np.asarray(s, dtype=np.float64).reshape(-1) for s in (speech or []) if len(s) > 0]
    if not talkers:
        raise ValueError("babble noise needs speech utterances to mix; pass speech=[...]")
    out = np.zeros(n, dtype=np.float64)
    for index in rng.choice(len(talkers), size=BABBLE_TALKERS, replace=len(talkers) < BABBLE_TALKERS):
        utterance = talkers[int(index)]
        start = int(rng.integers(len(utterance)))
        out += np.take(utterance, np.arange(start, start + n), mode="wrap")
    return out


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x / rms if rms > 0 else x).astype(np.float32)


def noise_bank(kinds: tuple[str, ...] | list[str], seconds: float, rate: int, seed: int,
               speech: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """`seconds` of each kind of noise, the same for the same seed. Each kind draws from its own stream
    (seeded by the seed and its position in NOISE_TYPES), so adding a kind does not change the others."""
    n = int(round(seconds * rate))
    bank = {}
    for kind in kinds:
        if kind not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {kind!r}; use one of {', '.join(NOISE_TYPES)}")
        bank[kind] = make_noise(kind, n, np.random.default_rng([int(seed), NOISE_TYPES.index(kind)]), speech)
    return bank


def scale_for_snr(clean_power: float, noise_power: float, snr_db: float) -> float:
    """The factor for the noise so that 10*log10(clean_power / (factor^2 * noise_power)) = snr_db."""
    if noise_power <= 0:
        return 0.0
    return float(np.sqrt(clean_power / (noise_power * 10.0 ** (snr_db / 10.0))))


def fit_length(noise: np.ndarray, n: int) -> np.ndarray:
    """The noise cut, or looped, to n samples."""
    noise = np.asarray(noise).reshape(-1)
    if len(noise) >= n:
        return noise[:n]
    if len(noise) == 0:
        raise ValueError("cannot fit an empty noise clip to a length")
    return np.resize(noise, n)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + noise (cut or looped to the clean's length), the noise scaled so that the ratio of the mean
    squares over the whole clip is exactly snr_db decibels."""
    clean64 = np.asarray(clean, dtype=np.float64).reshape(-1)
    if len(clean64) == 0:
        return clean64.astype(np.float32)
    noise64 = fit_length(np.asarray(noise, dtype=np.float64), len(clean64))
    factor = scale_for_snr(float(np.mean(clean64 ** 2)), float(np.mean(noise64 ** 2)), snr_db)
    return (clean64 + factor * noise64).astype(np.float32)

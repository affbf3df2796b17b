"""The short-time Fourier transform shared by the speech metrics, the classical enhancers and the preview picture.

Analysis and synthesis both use a periodic Hann window; the inverse is the least-squares one of Griffin & Lim
(1984): overlap-add the windowed inverse frames and divide by the overlap-added squared window. That ratio gives
the input back exactly for any hop that covers every sample (50 % or 75 % overlap alike), so an enhancer whose
gain is 1 everywhere is a perfect pass-through; the signal is zero-padded by a window less a hop on both sides so
that holds up to the first and last sample too."""

from __future__ import annotations

import numpy as np


def hann(length: int) -> np.ndarray:
    """The periodic Hann window: sums to a constant at 50 % overlap, and so does its square at 75 %."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def window_sizes(rate: int, window_ms: float = 32.0, overlap: float = 0.75) -> tuple[int, int]:
    """(window length, hop) in samples. The window is a whole number of hops, so 32 ms at 75 % overlap is
    256 / 64 at 8 kHz and 512 / 128 at 16 kHz."""
    hops_per_window = max(1, round(1.0 / max(1e-6, 1.0 - overlap)))
    hop = max(1, round(rate * window_ms / 1000.0 / hops_per_window))
    return hop * hops_per_window, hop


def _padding(n: int, length: int, hop: int) -> tuple[int, int, int]:
    """(left pad, right pad, frames) so that the frames cover every sample with room to spare at both ends."""
    left = max(0, length - hop)
    frames = max(1, -(-(n + 2 * left - length) // hop) + 1)
    right = (frames - 1) * hop + length - n - left
    return left, right, frames


def stft(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Complex spectra, frames × (length // 2 + 1), of the Hann-windowed frames of the padded signal."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64).ravel())
    left, right, frames = _padding(len(x), length, hop)
    padded = np.pad(x, (left, right))
    index = np.arange(frames)[:, None] * hop + np.arange(length)[None, :]
    return np.fft.rfft(padded[index] * hann(length), axis=1)


def istft(spectra: np.ndarray, length: int, hop: int, n: int) -> np.ndarray:
    """The n samples whose stft(·, length, hop) is closest (least squares) to `spectra`."""
    left, right, frames = _padding(n, length, hop)
    if spectra.shape[0] != frames:
        raise ValueError(f"{spectra.shape[0]} frames given, but {n} samples need {frames}")
    window = hann(length)
    chunks = np.fft.irfft(spectra, n=length, axis=1) * window
    out = np.zeros(left + n + right)
    norm = np.zeros_like(out)
    if length % hop == 0:  # the window is whole hops: add hop-sized blocks, one pass per block of the window
        blocks, norm_blocks = out.reshape(-1, hop), norm.reshape(-1, hop)
        for j in range(length // hop):
            blocks[j:j + frames] += chunks[:, j * hop:(j + 1) * hop]
            norm_blocks[j:j + frames] += window[j * hop:(j + 1) * hop] ** 2
    else:
        for f in range(frames):
            out[f * hop:f * hop + length] += chunks[f]
            norm[f * hop:f * hop + length] += window ** 2
    out, norm = out[left:left + n], norm[left:left + n]
    return np.where(norm > 1e-8, out / np.maximum(norm, 1e-8), 0.0)

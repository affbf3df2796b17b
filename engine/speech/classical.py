"""The classical enhancers the benchmark holds SEGAN against: power spectral subtraction and a Wiener filter with
the decision-directed a-priori SNR. Both see only the noisy signal: the noise spectrum is estimated from its
quietest frames. Both work on 32 ms Hann frames at 75 % overlap, keep the noisy phase and resynthesise by weighted
overlap-add (engine.speech.stft), so a gain of 1 gives the input back exactly."""

from __future__ import annotations

import numpy as np

from engine.speech.stft import istft, stft, window_sizes

POWER_FLOOR = 1e-12  # noise power never below this, so |Y|²/N stays finite on digital silence


def estimate_noise_psd(power_frames: np.ndarray, quantile: float = 0.1) -> np.ndarray:
    """The noise power per frequency: the mean power spectrum of the frames whose total energy is in the lowest
    `quantile` of all frames (at least one frame). A crude stand-in for minimum statistics (Martin 2001), which
    tracks each bin's minimum over a sliding window: here the whole clip is one window and the noise is taken to
    be stationary, which holds for the benchmark's clips, and speech to pause for at least `quantile` of the time
    (natural speech is silent a fifth of the time or more). power_frames: frames × frequencies, |Y|²."""
    power_frames = np.asarray(power_frames, dtype=np.float64)
    if power_frames.ndim != 2 or power_frames.shape[0] == 0:
        raise ValueError("power_frames must be frames × frequencies with at least one frame")
    energy = power_frames.sum(axis=1)
    count = max(1, int(np.ceil(quantile * len(energy))))
    quietest = np.argsort(energy, kind="stable")[:count]
    return power_frames[quietest].mean(axis=0)


def _analyse(noisy: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """(spectra, |Y|², noise power per bin, window length, hop) of the noisy signal."""
    length, hop = window_sizes(rate, 32.0, 0.75)
    spectra = stft(noisy, length, hop)
    power = np.abs(spectra) ** 2
    noise = np.maximum(estimate_noise_psd(power), POWER_FLOOR)
    return spectra, power, noise, length, hop


def _synthesise(spectra: np.ndarray, gain: np.ndarray, length: int, hop: int, n: int) -> np.ndarray:
    return istft(spectra * gain, length, hop, n).astype(np.float32)


def spectral_subtraction(noisy: np.ndarray, rate: int, alpha: float = 2.0, beta: float = 0.01) -> np.ndarray:
    """Power spectral subtraction (Boll 1979) with over-subtraction and a spectral floor (Berouti, Schwartz &
    Makhoul 1979): |Ŝ|² = |Y|² − α·N where that exceeds β·N, else β·N; then Ŝ = |Ŝ| · e^{j∠Y}.
    Subtracting more than the mean noise (α > 1) removes most of the peaks that would be left as musical noise,
    and the floor masks those that remain under a faint broadband residue. α is fixed here (Berouti lowers it
    with the frame's SNR). Returns float32 of the input's length."""
    n = np.asarray(noisy).size
    spectra, power, noise, length, hop = _analyse(noisy, rate)
    cleaned = power - alpha * noise
    cleaned = np.where(cleaned > beta * noise, cleaned, beta * noise)
    gain = np.sqrt(cleaned / np.maximum(power, POWER_FLOOR))
    gain = np.where(power > POWER_FLOOR, np.minimum(gain, 1.0), 1.0)  # the floor may exceed a near-silent bin
    return _synthesise(spectra, gain, length, hop, n)


def wiener(noisy: np.ndarray, rate: int, alpha: float = 0.98, floor: float = 0.1) -> np.ndarray:
    """The Wiener gain G = ξ / (1 + ξ) with the a-priori SNR ξ from the decision-directed rule of Ephraim & Malah
    (1984): ξ_k = α · G²_{k−1} |Y_{k−1}|² / N + (1 − α) · max(γ_k − 1, 0),
    where γ_k = |Y_k|² / N is the a-posteriori SNR of frame k and G_{k−1} |Y_{k−1}| the previous frame's clean
    amplitude estimate. Smoothing ξ this way (α near 1) is what suppresses musical noise. The first frame takes
    ξ = max(γ − 1, 0). The gain is floored at `floor` (the applied, floored gain also feeds the next ξ) to leave
    a little natural-sounding noise rather than gaps. Returns float32 of the input's length."""
    n = np.asarray(noisy).size
    spectra, power, noise, length, hop = _analyse(noisy, rate)
    gamma = power / noise
    gain = np.empty_like(power)
    previous = np.maximum(gamma[0] - 1.0, 0.0)  # G²|Y|²/N of the frame before the first
    for k in range(len(power)):
        xi = alpha * previous + (1.0 - alpha) * np.maximum(gamma[k] - 1.0, 0.0)
        gain[k] = np.maximum(xi / (1.0 + xi), floor)
        previous = gain[k] ** 2 * gamma[k]
    return _synthesise(spectra, gain, length, hop, n)

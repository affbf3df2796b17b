"""Speech enhancement scores: SNR, segmental SNR, PESQ and STOI, each for the enhanced and the noisy clip and the
gain between them (the benchmark table of Pascual et al. 2017's SEGAN), plus the dB spectrogram of the preview.

SNR and segmental SNR are written here from their textbook definitions (Loizou, "Speech Enhancement: Theory and
Practice", 2nd ed., 2013, §11.1; Hu & Loizou 2008). PESQ (ITU-T P.862) and STOI (Taal et al. 2011) come from the
optional `pesq` and `pystoi` packages, imported only when asked for: without them those scores are None."""

from __future__ import annotations

import numpy as np

from engine.speech.stft import stft

SCORES = ("snr", "segsnr", "pesq", "stoi")
SNR_CAP = 100.0  # dB: the SNR of a perfect estimate (and minus that of a silent reference)
SILENT = 1e-10  # a clean frame with less energy than this is silence


def _pair(clean: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float64, cut to the shorter length (an enhancer may drop a few tail samples)."""
    clean = np.nan_to_num(np.asarray(clean, dtype=np.float64).ravel())
    est = np.nan_to_num(np.asarray(est, dtype=np.float64).ravel())
    n = min(len(clean), len(est))
    return clean[:n], est[:n]


def snr(clean: np.ndarray, est: np.ndarray) -> float:
    """10·log10(Σ clean² / Σ (clean − est)²) in dB, held to ±100 dB: +100 for a perfect estimate, −100 for a
    silent reference (whose every estimate but silence is infinitely bad)."""
    clean, est = _pair(clean, est)
    signal, error = float(np.sum(clean ** 2)), float(np.sum((clean - est) ** 2))
    if error <= 0.0:
        return SNR_CAP
    if signal <= 0.0:
        return -SNR_CAP
    return float(np.clip(10.0 * np.log10(signal / error), -SNR_CAP, SNR_CAP))


def segmental_snr(clean: np.ndarray, est: np.ndarray, rate: int, frame_ms: float = 30.0, overlap: float = 0.75,
                  low: float = -10.0, high: float = 35.0) -> float:
    """The mean over frames of each frame's SNR held to [low, high] dB (Hu & Loizou 2008, eq. 1; Loizou 2013,
    eq. 11.2): 30 ms Hann-windowed frames at 75 % overlap, as in Loizou's reference implementation. Every frame
    counts, silent ones too: the clamp is what keeps pauses from dominating the mean. A frame whose clean energy
    is below 1e-10 (silence) scores `low` whatever the estimate, as in that implementation, where the log of
    ~0 signal energy falls to the lower clamp; so pauses weigh the same for the noisy and the enhanced clip and
    the segSNR gain measures the speech frames."""
    clean, est = _pair(clean, est)
    length = max(2, round(rate * frame_ms / 1000.0))
    hop = max(1, round(length * (1.0 - overlap)))
    if len(clean) < length:  # shorter than a frame: one zero-padded frame
        clean, est = np.pad(clean, (0, length - len(clean))), np.pad(est, (0, length - len(est)))
    frames = 1 + (len(clean) - length) // hop
    index = np.arange(frames)[:, None] * hop + np.arange(length)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * (np.arange(length) + 1) / (length + 1))  # symmetric, no zero ends
    signal = np.sum((clean[index] * window) ** 2, axis=1)
    error = np.sum(((clean - est)[index] * window) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        ratio = 10.0 * np.log10(signal / np.maximum(error, 1e-300))
    ratio = np.where(signal < SILENT, low, ratio)
    return float(np.mean(np.clip(ratio, low, high)))


def pesq_score(clean: np.ndarray, est: np.ndarray, rate: int) -> float | None:
    """PESQ (ITU-T P.862 MOS-LQO): narrow band at 8 kHz, wide band at 16 kHz. None for other rates, without the
    `pesq` package, or where it fails (a clip too short, or without speech for its voice activity detector)."""
    mode = {8000: "nb", 16000: "wb"}.get(int(rate))
    if mode is None:
        return None
    try:
        from pesq import pesq
    except ImportError:
        return None
    clean, est = _pair(clean, est)
    if not np.any(clean):  # pesq divides by the reference's peak
        return None
    try:
        with np.errstate(all="ignore"):
            value = float(pesq(int(rate), clean, est, mode))
    except Exception:  # noqa: BLE001 - pesq raises its own errors (and C-level ones) on unusable clips
        return None
    return value if np.isfinite(value) else None


def stoi_score(clean: np.ndarray, est: np.ndarray, rate: int) -> float | None:
    """STOI (Taal et al. 2011), 0–1, from the `pystoi` package (which resamples to 10 kHz itself); None without it
    or where it fails."""
    try:
        from pystoi import stoi
    except ImportError:
        return None
    clean, est = _pair(clean, est)
    try:
        value = float(stoi(clean, est, int(rate), extended=False))
    except Exception:  # noqa: BLE001 - any failure of the optional scorer only drops the score
        return None
    return value if np.isfinite(value) else None


def _score(name: str, clean: np.ndarray, est: np.ndarray, rate: int) -> float | None:
    if name == "snr":
        return snr(clean, est)
    if name == "segsnr":
        return segmental_snr(clean, est, rate)
    if name == "pesq":
        return pesq_score(clean, est, rate)
    return stoi_score(clean, est, rate)


def score_clip(clean: np.ndarray, noisy: np.ndarray, enhanced: np.ndarray, rate: int) -> dict:
    """Each available score of the enhanced clip (`snr`), of the noisy one (`snr_noisy`) and the improvement
    (`snr_gain` = enhanced − noisy); the same for segsnr, pesq and stoi. A score that cannot be had (package
    missing, rate unsupported, clip unusable) for either clip is left out entirely."""
    scores: dict = {}
    for name in SCORES:
        enhanced_value = _score(name, clean, enhanced, rate)
        if enhanced_value is None:
            continue
        noisy_value = _score(name, clean, noisy, rate)
        if noisy_value is None:
            continue
        scores[name], scores[f"{name}_noisy"] = enhanced_value, noisy_value
        scores[f"{name}_gain"] = enhanced_value - noisy_value
    return scores


def mean_scores(clips: list[dict]) -> dict:
    """Each key's mean over the clips that have it (PESQ may fail on a clip that STOI scores)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for scores in clips:
        for key, value in scores.items():
            if value is None:
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def spectrogram_db(x: np.ndarray, rate: int, n_fft: int | None = None, hop: int | None = None,
                   floor_db: float = -80.0) -> np.ndarray:
    """The power spectrogram in dB, frequency × frames (row 0 is 0 Hz), float32. Hann windows of n_fft samples
    (default 32 ms, the usual speech analysis window) every hop samples (default a quarter window). 0 dB is full
    scale: the peak of a sine of amplitude 1, i.e. |X| divided by half the window's sum. Held at floor_db below."""
    if n_fft is None:
        n_fft = max(8, round(rate * 0.032))
    n_fft = int(n_fft)
    hop = max(1, int(hop) if hop is not None else n_fft // 4)
    magnitude = np.abs(stft(x, n_fft, hop)).T / (n_fft / 4.0)  # the periodic Hann window sums to n_fft / 2
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(magnitude)
    return np.maximum(db, floor_db).astype(np.float32)

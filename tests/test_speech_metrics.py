"""Speech metrics, the classical enhancers and the speech preview picture (engine.speech.metrics, .classical,
.picture, .stft), on synthetic speech-like signals: fast, CPU only."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from engine.speech.classical import estimate_noise_psd, spectral_subtraction, wiener
from engine.speech.metrics import (SCORES, mean_scores, pesq_score, score_clip, segmental_snr, snr, spectrogram_db,
                                   stoi_score)
from engine.speech.picture import render_clips
from engine.speech.stft import istft, stft, window_sizes

RATE = 8000


def speech_like(rate: int = RATE, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Voiced 'syllables': harmonics of a gliding 100–180 Hz pitch shaped by two formant bumps, 210 ms on and
    140 ms off (digital silence), peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 140.0 + 40.0 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros_like(t)
    for h in range(1, 20):
        formants = np.exp(-((h * 140 - 700) / 500) ** 2) + 0.5 * np.exp(-((h * 140 - 1800) / 600) ** 2) + 0.1
        x += (h * f0 < 0.45 * rate) * formants / np.sqrt(h) * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    cycle = (t % 0.35) / 0.35
    x *= np.clip(np.sin(np.pi * cycle / 0.6), 0.0, None) * (cycle < 0.6)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def add_white(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= np.sqrt(np.sum(x.astype(np.float64) ** 2) / np.sum(noise ** 2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    clean = speech_like()
    return clean, add_white(clean, 5.0)


# ---- SNR and segmental SNR ----

def test_snr_definition_and_caps():
    x = speech_like(seconds=0.5)
    assert snr(x, 0.9 * x) == pytest.approx(20.0, abs=1e-4)  # the error is a tenth of the signal
    assert snr(x, add_white(x, 7.0)) == pytest.approx(7.0, abs=1e-3)
    assert snr(x, x) == 100.0
    assert snr(np.zeros(100), np.ones(100)) == -100.0
    assert snr(x, np.concatenate([x, np.ones(10)])) == 100.0  # cut to the shorter length


def test_segmental_snr_clamps_and_silence():
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    assert segmental_snr(tone, tone, RATE) == pytest.approx(35.0)
    assert segmental_snr(tone, 0.9 * tone, RATE) == pytest.approx(20.0, abs=1e-6)
    assert segmental_snr(tone, -tone, RATE) == pytest.approx(-6.0206, abs=1e-3)
    assert segmental_snr(tone, tone + 100.0, RATE) == pytest.approx(-10.0)
    half_silent = np.concatenate([tone[:4000], np.zeros(4000)])  # silent frames score the low clamp, estimate or not
    value = segmental_snr(half_silent, half_silent, RATE)
    assert -10.0 < value < 35.0
    assert segmental_snr(half_silent, half_silent, RATE, low=-20.0) < value
    assert segmental_snr(tone[:50], tone[:50], RATE) == pytest.approx(35.0)  # shorter than a frame


# ---- PESQ and STOI wrappers ----

def test_pesq_returns_a_float_when_installed(pair):
    pytest.importorskip("pesq")
    clean, noisy = pair
    good, bad = pesq_score(clean, clean, RATE), pesq_score(clean, noisy, RATE)
    assert isinstance(good, float) and isinstance(bad, float) and good > bad
    assert pesq_score(clean, noisy, 22050) is None  # neither narrow nor wide band
    assert pesq_score(np.zeros(RATE, np.float32), np.zeros(RATE, np.float32), RATE) is None  # no speech


def test_stoi_returns_a_float_when_installed(pair):
    pytest.importorskip("pystoi")
    clean, noisy = pair
    good, bad = stoi_score(clean, clean, RATE), stoi_score(clean, noisy, RATE)
    assert isinstance(good, float) and 0.0 <= bad < good <= 1.0 + 1e-6


def test_pesq_and_stoi_are_none_without_their_packages(pair, monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # `import pesq` now raises ImportError
    monkeypatch.setitem(sys.modules, "pystoi", None)
    clean, noisy = pair
    assert pesq_score(clean, noisy, RATE) is None and stoi_score(clean, noisy, RATE) is None
    scores = score_clip(clean, noisy, noisy, RATE)
    assert set(scores) == {"snr", "snr_noisy", "snr_gain", "segsnr", "segsnr_noisy", "segsnr_gain"}


# ---- score_clip and mean_scores ----

def test_score_clip_keys_and_gains(pair):
    clean, noisy = pair
    scores = score_clip(clean, noisy, clean, RATE)
    for name in SCORES:
        if name in scores:
            assert scores[f"{name}_gain"] == pytest.approx(scores[name] - scores[f"{name}_noisy"])
    assert scores["snr"] == 100.0 and scores["snr_noisy"] == pytest.approx(5.0, abs=1e-3)
    assert scores["segsnr_gain"] > 0


def test_mean_scores_averages_each_key_over_the_clips_that_have_it():
    means = mean_scores([{"snr": 1.0, "pesq": 2.0}, {"snr": 3.0}, {"snr": 5.0, "pesq": None}])
    assert means == {"snr": 3.0, "pesq": 2.0}
    assert mean_scores([]) == {}


# ---- spectrogram ----

def test_spectrogram_db_full_scale_sine_peaks_at_zero_db():
    t = np.arange(RATE) / RATE
    db = spectrogram_db(np.sin(2 * np.pi * 1000 * t), RATE)
    assert db.dtype == np.float32 and db.shape[0] == 129  # 32 ms at 8 kHz: 256-point windows
    middle = db[:, db.shape[1] // 2]
    assert np.argmax(middle) == 32  # 1000 Hz / (8000 / 256)
    assert middle.max() == pytest.approx(0.0, abs=0.01)
    assert db.min() >= -80.0 and spectrogram_db(np.zeros(1000), RATE).max() == -80.0
    assert spectrogram_db(np.zeros(1000), RATE, n_fft=64, hop=32).shape[0] == 33


# ---- the STFT and the classical enhancers ----

@pytest.mark.parametrize("overlap", [0.5, 0.75])
@pytest.mark.parametrize("n", [16000, 12345, 100])
def test_unit_gain_stft_reconstructs_the_input(overlap, n):
    x = np.random.default_rng(n).standard_normal(n)
    length, hop = window_sizes(RATE, 32.0, overlap)
    assert length == 256 and hop == (128 if overlap == 0.5 else 64)
    assert np.max(np.abs(istft(stft(x, length, hop), length, hop, n) - x)) < 1e-4  # edges included


def test_estimate_noise_psd_averages_the_quietest_frames():
    power = np.ones((20, 3)) * 10.0
    power[[3, 7]] = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]  # the two quietest frames (10 %)
    assert np.allclose(estimate_noise_psd(power, 0.1), [2.0, 2.0, 2.0])
    assert np.allclose(estimate_noise_psd(power, 0.01), power[3])  # at least one frame; ties keep frame order


@pytest.mark.parametrize("enhance", [spectral_subtraction, wiener])
def test_baselines_raise_snr_and_segsnr_at_5_db(pair, enhance):
    clean, noisy = pair
    enhanced = enhance(noisy, RATE)
    assert enhanced.dtype == np.float32 and enhanced.shape == noisy.shape
    assert snr(clean, enhanced) - snr(clean, noisy) > 2.0  # measured: +4.3 dB (subtraction), +4.7 dB (Wiener)
    assert segmental_snr(clean, enhanced, RATE) - segmental_snr(clean, noisy, RATE) > 1.0  # measured ≈ +2.0 / +2.2


@pytest.mark.parametrize("enhance", [spectral_subtraction, wiener])
def test_baselines_leave_a_clean_signal_alone(enhance):
    clean = speech_like(seconds=1.0, seed=3)
    assert snr(clean, enhance(clean, RATE)) > 10.0
    quiet_floor = add_white(clean, 40.0, seed=4)  # no digital silence: the noise estimate is a faint floor
    assert snr(quiet_floor, enhance(quiet_floor, RATE)) > 10.0
    odd = enhance(clean[:777], RATE)
    assert odd.dtype == np.float32 and odd.shape == (777,)


# ---- the preview picture ----

def _clips(count: int = 4, seconds: float = 1.5) -> tuple[np.ndarray, list[str]]:
    rows, labels = [], []
    for i in range(count):
        clean = speech_like(seconds=seconds, seed=i)
        noisy = add_white(clean, 5.0 * i, seed=10 + i)
        rows.append([noisy, wiener(noisy, RATE), clean])
        labels.append(f"white {5 * i} dB")
    return np.array(rows, dtype=np.float32), labels


def test_render_clips_shape_panels_and_speed():
    clips, labels = _clips()
    names = ["noisy", "enhanced", "clean"]
    render_clips(clips, RATE, names, labels)  # warm the font and colour map caches
    start = time.perf_counter()
    picture = render_clips(clips, RATE, names, labels)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0  # measured ≈ 10 ms
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[1] == 2 * 4 + 3 * 240 + 2 * 4
    assert picture.shape[0] == 18 + 4 * (15 + 48 + 2 + 64) + 3 * 8 + 4
    spec = slice(18 + 15 + 48 + 2, 18 + 15 + 48 + 2 + 64)  # the first row's spectrograms
    noisy_spec, clean_spec = picture[spec, 4:244].astype(int), picture[spec, 492:732].astype(int)
    assert np.abs(noisy_spec - clean_spec).mean() > 20
    assert tuple(picture[0, 0]) == (40, 40, 40)
    unlabelled = render_clips(clips[:1], RATE, names[:2], panel_width=100, wave_height=20, spec_height=30)
    assert unlabelled.shape == (18 + 20 + 2 + 30 + 4, 2 * 4 + 3 * 100 + 2 * 4, 3)


def test_render_clips_survives_nan_and_silence():
    clips = np.zeros((2, 2, 4000), dtype=np.float32)
    clips[0, 0, :100] = np.nan
    picture = render_clips(clips, RATE, ["a", "b"], ["x", "y"])
    assert picture.dtype == np.uint8 and np.isfinite(picture).all()

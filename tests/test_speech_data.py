"""The speech data layer: WAV reading/writing, resampling, noise, espeak-ng synthesis and paired folders."""

from __future__ import annotations

import shutil
import struct
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from engine.settings import ConfigError
from engine.speech import folders, noise, synth
from engine.speech.wav import decode_wav, read_wav, resample, wav_bytes, write_wav

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_fortunes = pytest.mark.skipif(not Path("/usr/share/games/fortunes").is_dir(),
                                    reason="the fortunes package is not installed")


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def riff(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_write_read_round_trip(tmp_path):
    x = tone(440, 8000, 0.5)
    path = tmp_path / "a" / "b" / "x.wav"
    write_wav(path, np.concatenate([x, [1.5, -2.0]]), 8000)
    y, rate = read_wav(path)
    assert rate == 8000 and y.dtype == np.float32 and len(y) == len(x) + 2
    assert np.abs(y[:-2] - x).max() < 1e-4 and y[-2] == pytest.approx(1.0, abs=1e-4) and y[-1] <= -0.999
    assert path.read_bytes() == wav_bytes(np.concatenate([x, [1.5, -2.0]]), 8000)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]          # no temp file left behind


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_integer_pcm_widths_and_stereo(tmp_path, width):
    left, right = tone(300, 16000, 0.2, 0.6), tone(300, 16000, 0.2, 0.2)
    scale = float(2 ** (8 * width - 1) - 1)
    frames = np.round(np.stack([left, right], axis=1).astype(np.float64) * scale).astype(np.int64).reshape(-1)
    if width == 1:
        raw = (frames + 128).astype(np.uint8).tobytes()
    elif width == 3:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames)
    else:
        raw = frames.astype(f"<i{width}").tobytes()
    path = tmp_path / f"w{width}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(width)
        out.setframerate(16000)
        out.writeframes(raw)
    y, rate = read_wav(path)
    assert rate == 16000 and len(y) == len(left)
    assert np.abs(y - (left + right) / 2).max() < (0.02 if width == 1 else 1e-4)


def test_read_float_and_extensible(tmp_path):
    x = tone(500, 8000, 0.2)
    fmt_float = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    (tmp_path / "f.wav").write_bytes(riff(fmt_float, x.astype("<f4").tobytes()))
    y, rate = read_wav(tmp_path / "f.wav")
    assert rate == 8000 and np.array_equal(y, x)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    for tag, raw, width in ((3, x.astype("<f4").tobytes(), 4), (1, np.round(x * 32767).astype("<i2").tobytes(), 2)):
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 8000 * width, width, 8 * width, 22, 8 * width, 4)
        (tmp_path / "e.wav").write_bytes(riff(fmt + struct.pack("<H", tag) + guid_tail, raw))
        y, _ = read_wav(tmp_path / "e.wav")
        assert np.abs(y - x).max() < 1e-4


def test_read_refusals_name_the_file(tmp_path):
    cases = {"text.wav": b"hello, not audio at all", "empty.wav": b"",
             "nodata.wav": riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16), b""),
             "alaw.wav": riff(struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8), b"\x00" * 100)}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match=name):
            read_wav(tmp_path / name)
    with pytest.raises(ConfigError, match="missing.wav"):
        read_wav(tmp_path / "missing.wav")


def test_streamed_header_with_oversized_lengths():
    """espeak-ng --stdout writes 0x7ffff000 as the data length: the reader takes what is there."""
    data = bytearray(wav_bytes(tone(200, 8000, 0.1), 8000))
    data[4:8] = struct.pack("<I", 0x7FFFF024)
    data[40:44] = struct.pack("<I", 0x7FFFF000)
    assert len(decode_wav(bytes(data))[0]) == 800


def spectrum_peak(y: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * rate / len(y))


def test_resample_keeps_passband_and_removes_what_the_new_rate_cannot_hold():
    y = resample(tone(1000, 22050, 1.0, 0.5), 22050, 8000)
    assert y.dtype == np.float32 and len(y) == 8000
    middle = y[500:-500]
    assert spectrum_peak(middle, 8000) == pytest.approx(1000, abs=2)
    assert np.sqrt(2 * np.mean(middle ** 2)) == pytest.approx(0.5, rel=0.02)
    high = resample(tone(6000, 22050, 1.0, 0.5), 22050, 8000)[500:-500]
    assert np.sqrt(np.mean(high ** 2)) < 0.005        # would fold to 2 kHz at full level without the low-pass
    up = resample(tone(1000, 8000, 0.5), 8000, 16000)
    assert len(up) == 8000 and np.abs(up[200:-200] - tone(1000, 16000, 0.5)[200:-200]).max() < 1e-3
    x = tone(300, 8000, 0.1)
    assert np.array_equal(resample(x, 8000, 8000), x)


def slope(x: np.ndarray, rate: int) -> float:
    segments = x[: len(x) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = np.mean(np.abs(np.fft.rfft(segments, axis=1)) ** 2, axis=0)
    f = np.fft.rfftfreq(1024, 1 / rate)
    band = (f >= 100) & (f <= 3000)
    return float(np.polyfit(np.log10(f[band]), np.log10(power[band]), 1)[0])


def test_noise_colours_levels_and_determinism():
    rng = np.random.default_rng(1)
    rate = 8000
    for kind, expected in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        x = noise.make_noise(kind, 8 * rate, rng)
        assert x.dtype == np.float32 and np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1, abs=1e-4)
        assert slope(x, rate) == pytest.approx(expected, abs=0.3), kind
    speech = [tone(f, rate, 0.3 + 0.1 * i) for i, f in enumerate((150, 220, 330))]
    babble = noise.make_noise("babble", rate, rng, speech)
    assert len(babble) == rate and np.sqrt(np.mean(babble.astype(np.float64) ** 2)) == pytest.approx(1, abs=1e-4)
    with pytest.raises(ValueError):
        noise.make_noise("babble", 100, rng)
    a = noise.noise_bank(noise.NOISE_TYPES, 0.5, rate, seed=3, speech=speech)
    b = noise.noise_bank(("pink", "babble"), 0.5, rate, seed=3, speech=speech)
    assert set(a) == set(noise.NOISE_TYPES) and len(a["white"]) == 4000
    assert np.array_equal(a["pink"], b["pink"]) and np.array_equal(a["babble"], b["babble"])
    assert not np.array_equal(a["pink"], noise.noise_bank(("pink",), 0.5, rate, seed=4)["pink"])


def test_mix_hits_the_snr_exactly():
    rng = np.random.default_rng(0)
    clean = tone(200, 8000, 1.0, 0.05)
    for snr in (-5.0, 0.0, 2.5, 17.0):
        for n in (3000, 8000, 20000):      # noise shorter (looped), equal, longer (cut)
            n_clip = rng.standard_normal(n).astype(np.float32) * 3
            mixed = noise.mix(clean, n_clip, snr)
            residue = mixed.astype(np.float64) - clean
            measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(residue ** 2))
            assert len(mixed) == len(clean) and measured == pytest.approx(snr, abs=0.01)
    assert noise.scale_for_snr(1.0, 1.0, 20.0) == pytest.approx(0.1)


def make_pairs(root: Path, names=("b", "a"), rate=16000) -> None:
    for i, name in enumerate(names):
        write_wav(root / "clean" / f"{name}.wav", tone(200 + 50 * i, rate, 0.5), rate)
        write_wav(root / "noisy" / f"{name}.wav", tone(200 + 50 * i, rate, 0.6) + 0.01, rate)


def test_load_pairs_resamples_cuts_and_sorts(tmp_path):
    make_pairs(tmp_path)
    (tmp_path / "noisy" / "extra").mkdir()
    write_wav(tmp_path / "noisy" / "extra" / "lonely.wav", tone(100, 8000, 0.5), 8000)  # sub-folders ignored
    (tmp_path / "clean" / "notes.txt").write_text("not audio")
    seen = []
    noisy, clean, names = folders.load_pairs(tmp_path, 8000, progress=lambda d, t: seen.append((d, t)))
    assert names == ["a", "b"] and seen == [(1, 2), (2, 2)]
    assert [len(x) for x in noisy] == [4000, 4000] == [len(x) for x in clean]
    assert all(x.dtype == np.float32 for x in noisy + clean)


def test_load_pairs_refusals_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        folders.load_pairs(tmp_path / "nowhere", 8000)
    (tmp_path / "noisy").mkdir()
    with pytest.raises(ConfigError, match="no clean/"):
        folders.load_pairs(tmp_path, 8000)
    (tmp_path / "clean").mkdir()
    with pytest.raises(ConfigError, match="no WAV files"):
        folders.load_pairs(tmp_path, 8000)
    make_pairs(tmp_path)
    for stem in ("x1", "x2", "x3", "x4"):
        write_wav(tmp_path / "noisy" / f"{stem}.wav", tone(100, 8000, 0.5), 8000)
    with pytest.raises(ConfigError, match=r"noisy/ has 4 files with no partner in clean/ \(x1.wav, x2.wav, x3.wav"):
        folders.load_pairs(tmp_path, 8000)
    for stem in ("x1", "x2", "x3", "x4"):
        (tmp_path / "noisy" / f"{stem}.wav").unlink()
    write_wav(tmp_path / "clean" / "A.wav", tone(100, 8000, 0.5), 8000)           # names are case-sensitive
    with pytest.raises(ConfigError, match=r"clean/ has 1 file with no partner in noisy/ \(A.wav\)"):
        folders.load_pairs(tmp_path, 8000)
    (tmp_path / "clean" / "A.wav").unlink()
    bad = tmp_path / "noisy" / "a.wav"
    bad.write_bytes(b"")
    with pytest.raises(ConfigError, match="a.wav is empty"):
        folders.load_pairs(tmp_path, 8000)
    write_wav(bad, tone(100, 8000, 0.5), 8000)
    write_wav(tmp_path / "clean" / "b.wav", np.zeros(8000), 8000)
    with pytest.raises(ConfigError, match=r"clean.b\.wav is silence"):
        folders.load_pairs(tmp_path, 8000)
    write_wav(tmp_path / "clean" / "b.wav", tone(100, 8000, 0.05), 8000)
    with pytest.raises(ConfigError, match="pair b .*0.050 s"):
        folders.load_pairs(tmp_path, 8000)


def test_sentences_from_a_text_file(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("The cat sat on the mat. Go!\nA rather long sentence of many words that goes on and on "
                    "and on without end.\nThe cat sat on the mat.\nSymbols like # and @ are out.\n"
                    ":-) faces are out too.\nCafé au lait is not plain.\nThree little words.\n")
    found = synth.sentences(str(text))
    assert sorted(found) == ["The cat sat on the mat.", "Three little words."]
    assert synth.sentences(str(text)) == found and synth.sentences(str(text), limit=1) == found[:1]
    with pytest.raises(ConfigError, match="nothing.txt"):
        synth.sentences(str(tmp_path / "nothing.txt"))


@needs_fortunes
def test_fortune_sentences_are_many_and_stable():
    found = synth.sentences(limit=50)
    assert len(found) == 50 and len(set(found)) == 50 and found == synth.sentences(limit=50)
    assert all(3 <= len(s.split()) <= 14 for s in found)


def test_voice_and_speed_cycle_covers_everything():
    voices, speeds = synth.VOICES, synth.SPEEDS
    first = [synth.voice_and_speed(i, voices, speeds) for i in range(len(voices))]
    assert {v for v, _ in first} == set(voices) and {s for _, s in first} == set(speeds)
    combos = {synth.voice_and_speed(i, voices, speeds) for i in range(len(voices) * len(speeds))}
    assert len(combos) == len(voices) * len(speeds)


def test_missing_espeak_is_one_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    assert not synth.espeak_available()
    with pytest.raises(ConfigError, match="apt-get install espeak-ng"):
        synth.synthesise("Hello there friend.", "en-us", 170, 8000)
    with pytest.raises(ConfigError, match="apt-get install espeak-ng"):
        synth.corpus(2, 1, 8000)


@needs_espeak
def test_synthesise_voices_and_errors():
    for voice in synth.VOICES:
        x = synth.synthesise("The quick brown fox jumps over the lazy dog.", voice, 170, 8000)
        assert x.dtype == np.float32 and 1.0 < len(x) / 8000 < 6.0, voice
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(0.05, rel=1e-3)
        assert np.abs(x).max() <= 0.99
        loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
        assert loud[0] <= 0.05 * 8000 + 1 and len(x) - 1 - loud[-1] <= 0.05 * 8000 + 1
    with pytest.raises(ConfigError, match="xx-nosuch"):
        synth.synthesise("Hello there friend.", "xx-nosuch", 170, 8000)
    with pytest.raises(ConfigError, match="en-us\\+nosuch"):
        synth.synthesise("Hello there friend.", "en-us+nosuch", 170, 8000)


@needs_espeak
@needs_fortunes
def test_corpus_is_sensible_disjoint_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    seen = []
    c = synth.corpus(6, 2, 8000, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (8, 8) and len(seen) == 8 and c.rate == 8000
    assert len(c.train) == len(c.train_text) == 6 and len(c.held) == len(c.held_text) == 2
    assert not set(c.train_text) & set(c.held_text)
    for x in c.train + c.held:
        assert 0.5 <= len(x) / 8000 <= 8.0
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(0.05, rel=0.01)
    cached_files = list((tmp_path / "speech").glob("*.npz"))
    assert len(cached_files) == 1
    monkeypatch.setattr(synth, "synthesise", lambda *a, **k: pytest.fail("the cache was not used"))
    again = synth.corpus(6, 2, 8000)
    assert again.train_text == c.train_text and all(np.array_equal(a, b) for a, b in zip(again.train, c.train))
    cached_files[0].write_bytes(b"garbage")          # a corrupt cache is rebuilt, not trusted
    monkeypatch.undo()
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    rebuilt = synth.corpus(6, 2, 8000)
    assert rebuilt.held_text == c.held_text and np.array_equal(rebuilt.held[0], c.held[0])


@needs_espeak
def test_corpus_refusals_and_cancel(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    text = tmp_path / "few.txt"
    text.write_text("One two three.\nFour five six.\nSeven eight nine.\n")
    with pytest.raises(ConfigError, match="only 3 usable sentences"):
        synth.corpus(3, 1, 8000, text_file=str(text))
    stop = threading.Event()
    stop.set()
    for cancel in (lambda: True, stop):
        with pytest.raises(synth.Cancelled):
            synth.corpus(2, 1, 8000, text_file=str(text), cancel=cancel)
    assert not list(tmp_path.glob("speech/*.npz"))
    small = synth.corpus(2, 1, 8000, text_file=str(text), voices=("en-gb",), speeds=(200,))
    assert len(small.train) == 2 and small.held_text[0] not in small.train_text

"""SEGAN: trains on speech-like clips (no espeak-ng needed: a folder of WAVs the tests write), previews audio
(waveforms, spectrograms and the clips themselves, kept beside each snapshot), scores the held-out clips, learns
to remove noise, enhances WAV files from the command line and refuses bad presets and folders in one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.algorithms.segan import deemphasis, preemphasis
from engine.cli import main
from engine.config import ConfigError
from engine.presets import load_preset
from engine.speech.snapshot import load_audio_snapshot
from engine.speech.wav import read_wav, write_wav
from helpers import Recorder, quick

RATE = 8000
TINY = ["segan.window=512", "segan.g_channels=[8, 16, 16, 32]", "segan.d_channels=[8, 16, 16, 32]",
        "segan.batch=16", "segan.kernel=15"]


def speech_like(seconds: float, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Voiced 'syllables': a harmonic series on a random pitch, switched on and off about three times a second."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 80 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 14))
    envelope = np.clip(2.5 * np.sin(2 * np.pi * (2.5 + rng.random()) * t + rng.random() * 6), 0, 1)
    signal = voiced * envelope
    return (0.05 * signal / np.sqrt(np.mean(signal ** 2))).astype(np.float32)


def make_pairs(folder: Path, n: int = 24, seconds: float = 1.0, snr_db: float = 5.0, seed: int = 0,
               rate: int = RATE) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        clean = speech_like(seconds, rng, rate)
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        noise *= np.sqrt(np.mean(clean ** 2) / 10 ** (snr_db / 10) / np.mean(noise ** 2))
        write_wav(folder / "clean" / f"u{i:03d}.wav", clean, rate)
        write_wav(folder / "noisy" / f"u{i:03d}.wav", clean + noise, rate)
    return folder


def folder_run(tmp_path, *overrides, n=24, run_dir=None, **kwargs):
    data = make_pairs(tmp_path / "pairs", n)
    return quick("segan_speech", "segan.source='folder'", f"segan.folder={str(data)!r}", "segan.held_out=0.2",
                 *TINY, *overrides, run_dir=run_dir, **kwargs)


def test_emphasis_round_trip():
    x = torch.randn(3, 1, 4000) * 0.1
    back = deemphasis(preemphasis(x, 0.95), 0.95)
    assert torch.allclose(back, x, atol=1e-5)


def test_trains_previews_audio_and_keeps_it_beside_each_snapshot(tmp_path):
    trainer, events = folder_run(tmp_path, "report_every=2", "sample_every=3", "metrics_every=6",
                                 run_dir=tmp_path / "run")
    assert trainer.run(6) == "done"
    trainer._finish_quality()
    samples = events.of(ev.Samples)
    last = samples[-1]
    assert last.kind == "audio" and last.rate == RATE
    n, k, length = last.audio.shape
    assert n == 4 and k == 3 and length % 512 == 0 and length >= RATE // 2
    assert np.array_equal(last.audio[:, 0] != 0, last.audio[:, 0] != 0)
    assert not np.allclose(last.audio[:, 1], last.audio[:, 0])  # the enhanced clip is G's, not the input
    assert last.title == "noisy | enhanced | clean" and len(last.text) == 4
    assert last.picture.shape[1] > 3 * 200
    kept = tmp_path / "run" / "samples" / "step_0000006.npz"
    audio, rate, labels = load_audio_snapshot(kept)
    assert rate == RATE and labels == last.text
    assert np.abs(audio - last.audio).max() < 1e-4  # 16-bit: within one step
    quality = [m for m in events.of(ev.Metrics) if m.group == "quality"][-1].values
    for key in ("snr", "snr_noisy", "snr_gain", "segsnr", "segsnr_gain"):
        assert np.isfinite(quality[key])
    assert abs(quality["snr_noisy"] - 5.0) < 0.5  # the held-out pairs were mixed at 5 dB


def test_segan_learns_to_remove_noise(tmp_path):
    """Held-out SNR and segmental SNR rise above the noisy input's; D and G's L1 term take turns."""
    trainer, events = folder_run(tmp_path, "metrics_every=300", "report_every=20", n=32)
    trainer.run(600)
    trainer._finish_quality()
    quality = [m for m in events.of(ev.Metrics) if m.group == "quality"]
    first, last = quality[0].values, quality[-1].values
    l1 = [m.values["l1"] for m in events.of(ev.Metrics) if m.group == "train" and "l1" in m.values]
    assert np.mean(l1[-5:]) < 0.7 * np.mean(l1[:3])  # measured: 0.0156 -> 0.0089
    assert last["snr_gain"] > 1.0 and last["segsnr_gain"] > 0.4, last  # measured: 2.1 and 0.9 dB
    assert last["segsnr_gain"] > first["segsnr_gain"]  # measured: 0.6 at step 300
    if "pesq_gain" in last:
        assert last["pesq_gain"] > 0  # measured: 0.26


def test_l1_alone_trains_no_discriminator(tmp_path):
    trainer, _ = folder_run(tmp_path, "segan.gan_weight=0", "metrics_every=0")
    before = [p.detach().clone() for p in trainer.nets["discriminator"].parameters()]
    trainer.run(3)
    after = list(trainer.nets["discriminator"].parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_live_l1_weight_changes_the_loss(tmp_path):
    from engine import commands as cmd
    trainer, events = folder_run(tmp_path, "report_every=1", "metrics_every=0")
    trainer.run(1)
    trainer.commands.put(cmd.Set("l1_weight", 0.0))
    trainer.run(2)
    last = events.of(ev.Metrics)[-1].values
    assert trainer.config.segan.l1_weight == 0.0
    assert abs(last["g_loss"] - last["g_adv"]) < 1e-6  # G's loss is its adversarial term alone now


def test_enhance_cli_file_and_folder(tmp_path, capsys):
    trainer, _ = folder_run(tmp_path, "checkpoint_every=4", "metrics_every=0", run_dir=tmp_path / "run")
    trainer.run(4)
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000004.pt"
    rng = np.random.default_rng(3)
    recording = speech_like(1.3, rng, 16000) + 0.01 * rng.standard_normal(int(1.3 * 16000)).astype(np.float32)
    source = tmp_path / "in" / "talk.wav"
    write_wav(source, recording, 16000)
    assert main(["enhance", str(checkpoint), str(source), str(tmp_path / "out.wav")]) == 0
    out, rate = read_wav(tmp_path / "out.wav")
    assert rate == 16000 and len(out) == len(recording)  # at the input's own rate and length
    assert not np.allclose(out, recording, atol=1e-3)
    (tmp_path / "in" / "deeper").mkdir()
    shutil.copy(source, tmp_path / "in" / "deeper" / "again.wav")
    (tmp_path / "in" / "broken.wav").write_bytes(b"not a wav")
    assert main(["enhance", str(checkpoint), str(tmp_path / "in"), str(tmp_path / "enhanced")]) == 0
    printed = capsys.readouterr().out
    assert "Wrote 2 enhanced recordings" in printed and "1 file skipped" in printed
    assert (tmp_path / "enhanced" / "talk.wav").is_file() and (tmp_path / "enhanced" / "deeper" / "again.wav").is_file()


def test_enhance_refuses_a_model_that_is_not_segan(tmp_path, capsys):
    trainer, _ = quick("ring8", "checkpoint_every=2", run_dir=tmp_path / "run")
    trainer.run(2)
    write_wav(tmp_path / "a.wav", np.zeros(800, np.float32) + 0.1, RATE)
    code = main(["enhance", str(tmp_path / "run" / "checkpoints" / "step_0000002.pt"), str(tmp_path / "a.wav"),
                 str(tmp_path / "b.wav")])
    assert code != 0
    assert "does not enhance speech" in capsys.readouterr().err
    assert not (tmp_path / "b.wav").exists()


@pytest.mark.parametrize("override, key", [
    ("segan.noises=['white', 'rain']", "segan.noises"),
    ("segan.snrs=[]", "segan.snrs"),
    ("segan.window=3000", "segan.window"),
    ("segan.g_channels=[8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]", "segan.g_channels"),
    ("segan.d_channels=[8, -1]", "segan.d_channels"),
])
def test_bad_presets_are_refused_with_their_key(override, key):
    with pytest.raises(ConfigError) as refused:
        load_preset("segan_speech", [override])
    assert key in str(refused.value) and str(refused.value).count(".") >= 1


def test_a_folder_without_pairs_is_refused_before_anything_starts(tmp_path):
    data = make_pairs(tmp_path / "pairs", 3)
    (data / "clean" / "u001.wav").unlink()
    from engine.loop import Trainer
    config = load_preset("segan_speech", ["segan.source='folder'", f"segan.folder={str(data)!r}", *TINY])
    with pytest.raises(ConfigError) as refused:
        Trainer(config, emit=Recorder())
    assert "u001" in str(refused.value)


def test_play_buttons_play_the_snapshot_on_show(qtbot, tmp_path):
    """The newest clips while the slider is at its end; an earlier snapshot's own clips once scrubbed back."""
    from engine.images import save_png
    from engine.speech.snapshot import save_audio_snapshot
    from studio.samples import SamplesPanel
    panel = SamplesPanel()
    qtbot.addWidget(panel)
    opened = []
    panel.audio_bar.open_url = lambda url: opened.append(url.toLocalFile())
    panel.audio_bar.player = False  # the system player's path (the Qt one where PySide6 has Qt Multimedia)
    rng = np.random.default_rng(0)
    snapshots = []
    for step in (100, 200):
        audio = (0.1 * rng.standard_normal((2, 3, 1024))).astype(np.float32)
        png = tmp_path / f"step_{step:07d}.png"
        save_png(png, np.zeros((8, 8, 3), np.uint8))
        save_audio_snapshot(png.with_suffix(".npz"), audio, RATE, ("white 5 dB", "pink 5 dB"))
        panel.show_samples(ev.Samples(step, "audio", picture=np.zeros((8, 8, 3), np.uint8), audio=audio, rate=RATE,
                                      text=("white 5 dB", "pink 5 dB"), title="noisy | enhanced | clean", path=png))
        snapshots.append(audio)
    qtbot.waitUntil(lambda: panel.audio_bar.audio is snapshots[1])
    assert not panel.audio_bar.isHidden()
    assert [b.text() for b in panel.audio_bar.buttons[0]] == ["▶ noisy", "▶ enhanced", "▶ clean"]
    with qtbot.waitSignal(panel.audio_bar.played):
        panel.audio_bar.buttons[1][1].click()  # the pink clip, enhanced
    played, rate = read_wav(opened[-1])
    assert rate == RATE and np.abs(played - snapshots[1][1, 1]).max() < 1e-3
    panel.slider.setValue(0)  # back to step 100
    panel.audio_bar.buttons[1][1].click()
    played, _ = read_wav(opened[-1])
    assert np.abs(played - snapshots[0][1, 1]).max() < 1e-3
    panel.show_samples(ev.Samples(300, "images", picture=np.zeros((8, 8, 3), np.uint8)))
    panel.slider.setValue(panel.slider.maximum())
    qtbot.waitUntil(lambda: panel.audio_bar.isHidden())  # pictures of images have nothing to play


def test_sample_and_onnx_point_to_enhance(tmp_path, capsys):
    trainer, _ = folder_run(tmp_path, "checkpoint_every=2", "metrics_every=0", run_dir=tmp_path / "run")
    trainer.run(2)
    checkpoint = str(tmp_path / "run" / "checkpoints" / "step_0000002.pt")
    assert main(["sample", checkpoint, "--out", str(tmp_path / "s.png")]) != 0
    assert main(["export", checkpoint, "--onnx", str(tmp_path / "g.onnx")]) != 0
    err = capsys.readouterr().err
    assert err.count("use gan-studio enhance") == 2
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "g.onnx").exists()

"""Checkpoints refuse bad files; the CLI trains, resumes, samples and stops cleanly on Ctrl-C."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.checkpoint import CheckpointError, load_checkpoint
from engine.cli import main
from helpers import quick

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ring_checkpoint(tmp_path):
    assert main(["train", "ring8", "--steps", "12", "--out", str(tmp_path / "run"),
                 "--set", "checkpoint_every=6"]) == 0
    return tmp_path / "run" / "checkpoints" / "step_0000012.pt"


def test_train_writes_a_complete_run_folder(ring_checkpoint):
    run = ring_checkpoint.parent.parent
    assert {p.name for p in run.iterdir()} >= {"config.toml", "metrics.jsonl", "samples", "checkpoints"}
    state = load_checkpoint(ring_checkpoint)
    assert state["step"] == 12 and state["config"]["name"] == "ring8"
    assert {"rng", "fixed"} <= set(state) and state["version"] == 2 and state["algorithm"] == "gan"
    assert set(state["nets"]) == set(state["opts"]) == {"generator", "discriminator"}
    assert not list(run.rglob("*.tmp"))


def saved_tensors(path):
    """Every network, EMA and optimizer tensor of a checkpoint, by a flat name."""
    state = load_checkpoint(path)
    found = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            found[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)

    for part in ("nets", "ema", "opts"):
        walk(part, state.get(part) or {})
    return found


def test_cli_resume_continues_in_the_same_run(ring_checkpoint, tmp_path, capsys):
    assert main(["train", "--resume", str(ring_checkpoint), "--steps", "18"]) == 0
    resumed = ring_checkpoint.parent / "step_0000018.pt"
    assert resumed.is_file() and load_checkpoint(resumed)["step"] == 18
    # bit for bit what a straight run to 18 gives: the weights, the optimizers' moments and the data draws resumed
    assert main(["train", "ring8", "--steps", "18", "--out", str(tmp_path / "straight"),
                 "--set", "checkpoint_every=6"]) == 0
    straight = saved_tensors(tmp_path / "straight" / "checkpoints" / "step_0000018.pt")
    after = saved_tensors(resumed)
    assert straight.keys() == after.keys() and any(k.startswith("nets.") for k in straight)
    assert [k for k in straight if not torch.equal(straight[k], after[k])] == []


def test_truncated_foreign_and_mismatched_checkpoints_are_refused(ring_checkpoint, tmp_path):
    data = ring_checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a GAN Studio checkpoint"):
        load_checkpoint(foreign)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "gan-studio-checkpoint", "obj": Path("x")}, evil)
    with pytest.raises(CheckpointError, match="objects other than weights"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="do not match this preset"):
        quick("ring8", "hidden_width=64", resume=ring_checkpoint)
    with pytest.raises(CheckpointError, match="data shaped"):
        quick("painter", resume=ring_checkpoint)


def test_cli_refuses_a_bad_override_in_one_line(capsys):
    assert main(["train", "ring8", "--set", "k=0", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.discriminator_steps = 0" in err


def test_sample_writes_a_grid_and_one_png_each(tmp_path, fake_fashion):
    out = tmp_path / "run"
    assert main(["train", "dcgan_fashion", "--steps", "3", "--out", str(out), "--set",
                 f"data.path={str(fake_fashion)!r}", "--set", "batch_size=8"]) == 0
    checkpoint = out / "checkpoints" / "step_0000003.pt"
    assert main(["sample", str(checkpoint), "--n", "16", "--seed", "7", "--out", str(tmp_path / "grid.png"),
                 "--each", str(tmp_path / "each")]) == 0
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size == (4 * 30 + 2, 4 * 30 + 2)
    singles = sorted((tmp_path / "each").glob("*.png"))
    assert len(singles) == 16
    with Image.open(singles[0]) as img:
        assert img.size == (28, 28)
    # the same seed gives the same picture; another seed another one
    main(["sample", str(checkpoint), "--n", "16", "--seed", "7", "--out", str(tmp_path / "again.png")])
    main(["sample", str(checkpoint), "--n", "16", "--seed", "8", "--out", str(tmp_path / "other.png")])
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "grid.png").read_bytes()
    assert (tmp_path / "other.png").read_bytes() != (tmp_path / "grid.png").read_bytes()


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "ring8", "--steps", "1000000",
                             "--out", str(out), "--set", "report_every=1"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "steps/s" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest
    saved = sorted((out / "checkpoints").glob("step_*.pt"))
    assert load_checkpoint(saved[-1])["step"] > 0
    assert not list(out.rglob("*.tmp"))


def test_bare_command_without_display_says_how_to_run_headless(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux")
    assert main([]) == 2
    assert "gan-studio train" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sgan_fashion", "began_fashion", "vae_fashion", "improved_fashion"])
def test_catalog_checkpoints_sample_from_the_cli(name, tmp_path, fake_fashion):
    out = tmp_path / "run"
    assert main(["train", name, "--steps", "2", "--out", str(out), "--set", f"data.path={str(fake_fashion)!r}",
                 "--set", "batch_size=8", "--set", "metrics_every=0"]) == 0
    checkpoint = out / "checkpoints" / "step_0000002.pt"
    assert main(["sample", str(checkpoint), "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size == (2 * 30 + 2, 2 * 30 + 2)


@pytest.mark.parametrize("platform, said", [("nosuchplugin", ("apt-get install libxcb-cursor0",)),
                                            ("xcb", ("No display answered at DISPLAY=':99'",
                                                     "apt-get install libxcb-cursor0"))])
def test_a_window_that_cannot_open_says_why_in_one_sentence(monkeypatch, capsys, platform, said):
    """Qt aborts the process when its platform plugin cannot load; the studio finds out first, in a child."""
    pytest.importorskip("PySide6")
    monkeypatch.setenv("DISPLAY", ":99")  # no X server answers there
    monkeypatch.setenv("QT_QPA_PLATFORM", platform)
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert any(s in err for s in said) and "gan-studio train" in err and len(err.splitlines()) == 1

"""Staged and text-conditioned models in the latent explorer and `gan-studio sample`: the stage selector and the
description box change the picture, and the command the panel shows draws exactly that picture."""
import shlex

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image

from engine.cli import main as cli
from test_explorer import open_window, shown_after


def train(tmp_path_factory, fake_fashion, preset, *sets):
    out = tmp_path_factory.mktemp(preset) / "run"
    args = ["train", preset, "--steps", "4", "--out", str(out), "--set", f"data.path={str(fake_fashion)!r}",
            "--set", "batch_size=8", "--set", "sample_every=2", "--set", "metrics_every=0"]
    for item in sets:
        args += ["--set", item]
    assert cli(args) == 0
    return out


@pytest.fixture(scope="module")
def lapgan_run(tmp_path_factory, fake_fashion):
    return train(tmp_path_factory, fake_fashion, "lapgan_fashion")


@pytest.fixture(scope="module")
def stackgan_run(tmp_path_factory, fake_fashion):
    return train(tmp_path_factory, fake_fashion, "stackgan_fashion", "stackgan.stage1_steps=2")


def command_picture(panel, tmp_path):
    """Runs the command the panel shows, with its output in tmp_path, and returns the picture it wrote."""
    args = shlex.split(panel.command.text())[1:]
    out = tmp_path / "cli.png"
    args[args.index("--out") + 1] = str(out)
    assert cli(args) == 0
    return np.asarray(Image.open(out).convert("RGB"))


def test_the_stage_selector_shows_each_stage_and_the_cli_agrees(qtbot, tmp_path, lapgan_run):
    win = open_window(qtbot, tmp_path, lapgan_run)
    panel = win.explorer
    assert win.explorer_dock.isVisibleTo(win) and panel.stage_box is not None
    names = [panel.stage_box.itemData(i) for i in range(panel.stage_box.count())]
    assert names[:2] == ["", "all stages"] and "I0" in names and "I2" in names
    final = panel.picture.copy()
    coarse = shown_after(qtbot, panel, lambda: panel.stage_box.setCurrentIndex(names.index("I0")))
    assert coarse.shape == final.shape and not np.array_equal(coarse, final)  # I0 enlarged to the image's size
    assert "--stage I0" in panel.command.text()
    assert np.array_equal(command_picture(panel, tmp_path), coarse)
    strip = shown_after(qtbot, panel, lambda: panel.stage_box.setCurrentIndex(1))
    assert strip.shape[1] > 3 * final.shape[1]  # every stage side by side
    assert "--stages" in panel.command.text()
    win.close()


def test_a_typed_description_changes_the_picture_and_bad_text_is_one_sentence(qtbot, tmp_path, stackgan_run):
    win = open_window(qtbot, tmp_path, stackgan_run)
    panel = win.explorer
    assert panel.text_box is not None
    boot = shown_after(qtbot, panel, lambda: panel.text_box.setText("an ankle boot with a high heel"))
    shirt = shown_after(qtbot, panel, lambda: panel.text_box.setText("a short sleeved t-shirt"))
    assert not np.array_equal(boot, shirt)
    assert "--text" in panel.command.text() and "t-shirt" in panel.command.text()
    assert np.array_equal(command_picture(panel, tmp_path), shirt)
    with qtbot.waitSignal(panel.message, timeout=60_000) as said:
        panel.text_box.setText("zzz qqq")
    assert "no word the text encoder knows" in said.args[0] and said.args[0].count(". ") <= 1
    win.close()


def test_sample_refuses_stages_of_a_model_that_has_none_and_unknown_stage_names(tmp_path, lapgan_run, capsys):
    ckpt = sorted((lapgan_run / "checkpoints").glob("*.pt"))[-1]
    assert cli(["sample", str(ckpt), "--stage", "I9", "--out", str(tmp_path / "x.png")]) == 2
    assert "not a stage of this model" in capsys.readouterr().err
    assert cli(["sample", str(ckpt), "--text", "a boot", "--out", str(tmp_path / "x.png")]) == 2
    assert "text-conditioned" in capsys.readouterr().err

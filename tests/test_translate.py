"""Translating one's own pictures: `gan-studio translate` and the studio's translate panel."""

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import main as cli

TIMEOUT = 60_000


def train(tmp_path_factory, fake_fashion, preset, steps, *sets):
    out = tmp_path_factory.mktemp(preset) / "run"
    extra = [a for s in ("metrics_every=0", "sample_every=10") + sets for a in ("--set", s)]
    assert cli(["train", preset, "--steps", str(steps), "--out", str(out),
                "--set", f"data.path={str(fake_fashion)!r}", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory, fake_fashion):
    return train(tmp_path_factory, fake_fashion, "pix2pix_edges", 20)


@pytest.fixture(scope="module")
def pix2pix_ckpt(pix2pix_run):
    return str(sorted((pix2pix_run / "checkpoints").glob("step_*.pt"))[-1])


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Three item-like pictures (a bright garment shape on a dark ground, sizes and modes mixed), one in a
    sub-folder, a file that is not an image and a hidden picture."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i, (size, mode) in enumerate(((28, "L"), (40, "RGB"), (64, "L"))):
        arr = rng.integers(0, 30, (size, size + 6 * i), dtype=np.uint8)
        arr[size // 5: 4 * size // 5, size // 3: 2 * size // 3 + 6 * i] = 200 + 20 * i
        place = folder / ("sub" if i == 2 else "") / f"item{i}.png"
        place.parent.mkdir(exist_ok=True)
        Image.fromarray(arr).convert(mode).save(place)
    (folder / "notes.png").write_bytes(b"not a picture")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / ".hidden.png")
    return folder


def png(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


# -- the command ---------------------------------------------------------------------------------------------
def test_a_folder_gives_one_png_per_picture_and_counts_the_skipped_file(pix2pix_ckpt, pictures, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["translate", pix2pix_ckpt, str(pictures), str(out)]) == 0
    printed = capsys.readouterr()
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["item0.png", "item1.png", "sub/item2.png"]  # sub-folders kept, the hidden file left out
    for name in written:
        with Image.open(out / name) as img:
            assert img.size == (32, 32)
    assert f"Wrote 3 translations to {out}; 1 file skipped" in printed.out
    assert "notes.png" in printed.err and "Skipped 1 of 4 files" in printed.err


def test_one_picture_to_a_png_file(pix2pix_ckpt, pictures, tmp_path, capsys):
    out = tmp_path / "shoe.png"
    assert cli(["translate", pix2pix_ckpt, str(pictures / "item1.png"), str(out)]) == 0
    assert f"Wrote 1 translation to {out}" in capsys.readouterr().out
    assert png(out).shape == (32, 32)


def test_prepare_translates_the_edge_map_of_an_ordinary_picture(pix2pix_ckpt, pictures, tmp_path):
    from engine.data.images import read_image
    from engine.img2img.data import edge_map
    picture = pictures / "item0.png"
    assert cli(["translate", pix2pix_ckpt, str(picture), str(tmp_path / "raw.png")]) == 0
    assert cli(["translate", pix2pix_ckpt, str(picture), str(tmp_path / "prepared.png"), "--prepare"]) == 0
    assert not np.array_equal(png(tmp_path / "raw.png"), png(tmp_path / "prepared.png"))
    # the same as translating the picture's edge map, made by hand
    edges = edge_map(torch.from_numpy(read_image(picture, 32, 1).copy())[None])[0, 0].numpy()
    assert 0 < (edges == 255).mean() < 0.5
    Image.fromarray(edges).save(tmp_path / "edges.png")
    assert cli(["translate", pix2pix_ckpt, str(tmp_path / "edges.png"), str(tmp_path / "of_edges.png")]) == 0
    assert np.array_equal(png(tmp_path / "of_edges.png"), png(tmp_path / "prepared.png"))


@pytest.mark.parametrize("args, words", [
    (["--direction", "BtoA"], "--direction BtoA: this pix2pix model translates AtoB only."),
    ([], "does not exist"),
])
def test_refusals_name_the_problem(pix2pix_ckpt, pictures, tmp_path, capsys, args, words):
    source = pictures if args else tmp_path / "missing"
    assert cli(["translate", pix2pix_ckpt, str(source), str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_folder_refusals(pix2pix_ckpt, pictures, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.png").write_bytes(b"x")
    assert cli(["translate", pix2pix_ckpt, str(tmp_path / "empty"), str(tmp_path / "o")]) == 2
    assert "holds no pictures" in capsys.readouterr().err
    assert cli(["translate", pix2pix_ckpt, str(pictures), str(tmp_path / "file.png")]) == 2
    assert "OUT must be a folder when IN is a folder" in capsys.readouterr().err
    assert cli(["translate", pix2pix_ckpt, str(pictures), str(pictures)]) == 2
    assert "OUT is IN itself" in capsys.readouterr().err


def test_a_model_that_does_not_translate_is_refused(tmp_path_factory, fake_fashion, pictures, tmp_path, capsys):
    ring = tmp_path_factory.mktemp("ring") / "run"
    assert cli(["train", "ring8", "--steps", "5", "--out", str(ring)]) == 0
    capsys.readouterr()
    ckpt = sorted((ring / "checkpoints").glob("step_*.pt"))[-1]
    assert cli(["translate", str(ckpt), str(pictures), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "gan model" in err and "image-to-image checkpoint" in err and err.count("\n") == 1


def test_cyclegan_translates_both_ways_and_prepares_the_input_of_b_to_a(tmp_path_factory, fake_fashion, pictures,
                                                                        tmp_path, capsys):
    run = train(tmp_path_factory, fake_fashion, "cyclegan_edges", 2, "cyclegan.g_blocks=1", "cyclegan.pool_size=0")
    ckpt = str(sorted((run / "checkpoints").glob("step_*.pt"))[-1])
    picture = str(pictures / "item0.png")
    for direction in ("AtoB", "BtoA"):
        assert cli(["translate", ckpt, picture, str(tmp_path / f"{direction}.png"), "--direction", direction]) == 0
    assert not np.array_equal(png(tmp_path / "AtoB.png"), png(tmp_path / "BtoA.png"))
    capsys.readouterr()
    # items are domain A here and edge maps domain B: an edge map made from a picture is the input of B -> A
    assert cli(["translate", ckpt, picture, str(tmp_path / "p.png"), "--prepare"]) == 2
    assert "the input of BtoA" in capsys.readouterr().err
    assert cli(["translate", ckpt, picture, str(tmp_path / "p.png"), "--prepare", "--direction", "BtoA"]) == 0


# -- the studio's panel ------------------------------------------------------------------------------------------
def test_the_panel_translates_what_the_command_writes(qtbot, tmp_path, pix2pix_run, pix2pix_ckpt, pictures):
    pytest.importorskip("PySide6")
    from helpers import open_window
    win = open_window(qtbot, tmp_path / "s.ini")
    assert not win.translate_dock.isVisible()  # the ring preset does not translate
    win.open_run(pix2pix_run)
    dock, panel = win.translate_dock, win.translate_dock.panel
    assert dock.isVisible() and dock.objectName() == "translate-dock"
    qtbot.waitUntil(lambda: panel.info is not None, timeout=TIMEOUT)
    assert [panel.direction.itemData(i) for i in range(panel.direction.count())] == ["AtoB"]
    assert panel.prepare.isVisible() and "edge map" in panel.prepare.text()
    with qtbot.waitSignal(panel.shown, timeout=TIMEOUT):
        panel.open_path(pictures)
    assert not panel.image.pixmap().isNull() and panel.picture.shape == (32, 32 + 4 + 32, 3)
    assert panel.count.text() == "3 pictures to translate; 1 skipped"
    assert panel.command.text().startswith(f"gan-studio translate {pix2pix_ckpt} {pictures} OUT --direction AtoB")
    with qtbot.waitSignal(panel.shown, timeout=TIMEOUT):
        panel.prepare.setChecked(True)
    assert panel.picture.shape == (32, 3 * 32 + 2 * 4, 3) and "edge map" in panel.caption.text()
    assert panel.command.text().endswith("--prepare")

    out = tmp_path / "saved"
    with qtbot.waitSignal(panel.savedTo, timeout=TIMEOUT):
        panel.save_to(out)
    assert sorted(p.name for p in out.rglob("*.png")) == ["item0.png", "item1.png", "item2.png"]
    assert panel.count.text() == f"Saved 3 translations to {out}; 1 skipped"
    assert f"{pictures} {out} --direction AtoB --prepare" in panel.command.text()
    # the translation on screen is the one written for the first picture
    assert np.array_equal(panel.picture[:, -32:, 0], png(out / "item0.png"))
    assert str(win.settings.value("translate_folder")) == str(out)
    win.close()


def test_the_panel_takes_a_dropped_picture(qtbot, tmp_path, pix2pix_run, pictures):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent
    from helpers import open_window
    win = open_window(qtbot, tmp_path / "s.ini")
    win.open_run(pix2pix_run)
    panel = win.translate_dock.panel
    qtbot.waitUntil(lambda: panel.info is not None, timeout=TIMEOUT)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(pictures / "item1.png"))])
    drop = QDropEvent(QPointF(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(panel.shown, timeout=TIMEOUT):
        panel.dropEvent(drop)
    assert panel.caption.text().startswith("item1.png") and panel.count.text() == ""
    win.close()


def test_a_run_that_does_not_translate_hides_the_dock(qtbot, tmp_path, pix2pix_run):
    pytest.importorskip("PySide6")
    from helpers import open_window
    ring = tmp_path / "ring"
    assert cli(["train", "ring8", "--steps", "5", "--out", str(ring)]) == 0
    win = open_window(qtbot, tmp_path / "s.ini")
    win.open_run(pix2pix_run)
    assert win.translate_dock.isVisible()
    win.translate_dock.toggle_action.trigger()  # Ctrl+T hides it and shows it again
    assert not win.translate_dock.isVisible()
    win.translate_dock.toggle_action.trigger()
    assert win.translate_dock.isVisible()
    win.open_run(ring)
    assert not win.translate_dock.isVisible()
    win.translate_dock.toggle_action.trigger()
    assert not win.translate_dock.isVisible() and "image-to-image" in win.statusBar().currentMessage()
    win.close()


def test_the_panel_follows_a_training_run(qtbot, tmp_path, fake_fashion, pictures):
    pytest.importorskip("PySide6")
    from helpers import open_window, studio_threads
    win = open_window(qtbot, tmp_path / "s.ini")
    win.select_preset("pix2pix_edges")
    for key, value in (("data.path", str(fake_fashion)), ("sample_every", 5), ("metrics_every", 0),
                       ("train.steps", 40)):
        win.config.set(key, value)
    panel = win.translate_dock.panel
    assert win.translate_dock.isVisible() and panel.info is None
    panel.open_path(pictures / "item0.png")
    shown = []
    panel.shown.connect(lambda picture: shown.append((panel.info.step, picture)))
    win.start()
    qtbot.waitUntil(lambda: any(step >= 15 for step, _ in shown), timeout=TIMEOUT)
    first = shown[0]
    later = next(item for item in shown if item[0] >= 15)
    assert panel.info.checkpoint is None and panel.command.text().startswith("gan-studio translate CKPT")
    assert not np.array_equal(first[1][:, -32:], later[1][:, -32:])  # the model improved on screen
    with qtbot.waitSignal(win.bridge.finished, timeout=TIMEOUT):
        win.stop()
    win.close()
    assert studio_threads() == []

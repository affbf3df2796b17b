"""Latent explorer: sliders and selectors change the picture, bookmarks persist, the CLI matches the panel."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image
from PySide6.QtCore import QSettings

from engine.cli import main as cli
from studio.window import MainWindow

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory, fake_fashion):
    out = tmp_path_factory.mktemp("infogan") / "run"
    assert cli(["train", "infogan_fashion", "--steps", "30", "--out", str(out), "--set",
                f"data.path={str(fake_fashion)!r}", "--set", "batch_size=16", "--set", "sample_every=10"]) == 0
    return out


def open_window(qtbot, tmp_path, run_dir):
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.explorer.pictureShown, timeout=TIMEOUT):
        win.open_run(run_dir)
    return win


def shown_after(qtbot, panel, action):
    with qtbot.waitSignal(panel.pictureShown, timeout=TIMEOUT) as blocker:
        action()
    return blocker.args[0]


def test_sliders_and_categories_change_the_picture(qtbot, tmp_path, infogan_run):
    win = open_window(qtbot, tmp_path, infogan_run)
    panel = win.explorer
    assert sorted(panel.sliders) == [0, 1] and sorted(panel.category_boxes) == [0]
    start = panel.picture.copy()
    moved = shown_after(qtbot, panel, lambda: panel.sliders[0][0].setValue(0))
    assert panel.point.continuous[0] == -2.0
    assert not np.array_equal(start, moved)
    switched = shown_after(qtbot, panel, lambda: panel.category_boxes[0].setValue(7))
    assert not np.array_equal(moved, switched)
    rerolled = shown_after(qtbot, panel, lambda: panel.seed.setValue(99))
    assert not np.array_equal(switched, rerolled)
    win.close()


def test_cli_gives_the_exact_picture_the_panel_shows(qtbot, tmp_path, infogan_run):
    win = open_window(qtbot, tmp_path, infogan_run)
    panel = win.explorer
    shown_after(qtbot, panel, lambda: panel.seed.setValue(5))
    shown_after(qtbot, panel, lambda: panel.set_code(1, 0.7))
    picture = shown_after(qtbot, panel, lambda: panel.category_boxes[0].setValue(3))
    assert panel.point.continuous[1] == 0.7
    args = panel.point.cli_args()
    assert args[:4] == ["--n", "1", "--seed", "5"] and "c1=0.7" in args and "c0=3" in args
    out = tmp_path / "x.png"
    assert cli(["sample", str(panel.checkpoint)] + args + ["--out", str(out)]) == 0
    with Image.open(out) as img:
        assert np.array_equal(np.asarray(img.convert("RGB")), picture)
    assert "gan-studio sample" in panel.command.text() and "--cat c0=3" in panel.command.text()
    win.close()


def test_bookmarks_survive_reopening_and_interpolate_to_a_gif(qtbot, tmp_path, infogan_run):
    win = open_window(qtbot, tmp_path, infogan_run)
    panel = win.explorer
    panel.add_bookmark("start")
    shown_after(qtbot, panel, lambda: panel.category_boxes[0].setValue(6))
    panel.add_bookmark("six")
    win.close()
    again = open_window(qtbot, tmp_path, infogan_run)
    panel = again.explorer
    assert [b.name for b in panel.bookmarks][-2:] == ["start", "six"]
    assert panel.bookmarks[-1].categorical == {0: 6}
    panel.bookmark_list.item(panel.bookmark_list.count() - 2).setSelected(True)
    panel.bookmark_list.item(panel.bookmark_list.count() - 1).setSelected(True)
    with qtbot.waitSignal(panel.worker.framesReady, timeout=TIMEOUT) as blocker:
        assert panel.interpolate_selected(frames=12)
    gif = tmp_path / "path.gif"
    again.save_interpolation(blocker.args[0], gif)
    with Image.open(gif) as img:
        assert img.n_frames == 12
    shown_after(qtbot, panel, lambda: panel.go_to(panel.bookmark_list.count() - 1))
    assert panel.category_boxes[0].value() == 6
    again.close()


def test_traversal_sheet_has_a_row_per_category_and_a_column_per_value(qtbot, tmp_path, infogan_run):
    win = open_window(qtbot, tmp_path, infogan_run)
    with qtbot.waitSignal(win.explorer.sheetShown, timeout=TIMEOUT) as blocker:
        win.explorer.make_sheet()
    sheet = blocker.args[0]
    assert sheet.shape == (10 * 30 + 2, 10 * 30 + 2, 3)
    rows = [sheet[2 + r * 30: 30 + r * 30, 2:30] for r in range(10)]
    assert len({row.tobytes() for row in rows}) == 10  # each category draws something else
    win.close()


def test_explorer_follows_a_running_training(qtbot, tmp_path, fake_fashion):
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    qtbot.addWidget(win)
    win.select_preset("cgan_fashion")
    for item in (f"data.path={str(fake_fashion)!r}", "batch_size=8", "sample_every=5"):
        key, value = item.split("=", 1)
        win.config.set(key, value)
    with qtbot.waitSignal(win.explorer.pictureShown, timeout=TIMEOUT):
        win.start()
    panel = win.explorer
    assert panel.class_box is not None and panel.class_box.count() == 10
    before = panel.picture.copy()
    after = shown_after(qtbot, panel, lambda: panel.class_box.setCurrentIndex(5))
    assert not np.array_equal(before, after)
    win.close()

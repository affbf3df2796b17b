"""Latent explorer: sliders and selectors change the picture, bookmarks persist, the CLI matches the panel."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image
from PySide6.QtCore import QObject, QSettings, Slot

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


class Renders(QObject):
    """Every picture the explorer's worker draws, with the point it drew and the step of the weights the panel
    held when it arrived (a queued slot: the sampler a picture was drawn with is announced before the picture)."""

    def __init__(self, panel):
        super().__init__()
        self.panel = panel
        self.got: list[tuple[int | None, int, int, np.ndarray]] = []
        panel.worker.pictureReady.connect(self.take)

    @Slot(object, object, float)
    def take(self, picture, point, _asked):
        self.got.append((point.label, point.seed, self.panel.sampler.step, picture))

    def wait(self, qtbot, after: int, label: int, seed: int, newer_than: int = -1) -> np.ndarray:
        """The first picture of (label, seed) drawn from weights newer than the step given, among those drawn
        after the first `after` ones."""
        def match():
            return next((g for g in self.got[after:] if g[:2] == (label, seed) and g[2] > newer_than), None)
        qtbot.waitUntil(lambda: match() is not None, timeout=TIMEOUT)
        return match()[3]


def test_explorer_follows_a_running_training(qtbot, tmp_path, fake_fashion):
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    win.close_policy = "discard"
    qtbot.addWidget(win)
    win.select_preset("cgan_fashion")
    for item in (f"data.path={str(fake_fashion)!r}", "batch_size=8", "sample_every=5", "metrics_every=0"):
        key, value = item.split("=", 1)
        win.config.set(key, value)
    sent = []  # the steps of the generator weights the running training sent the explorer
    win.bridge.generatorWeights.connect(lambda event: sent.append(event.step))
    with qtbot.waitSignal(win.explorer.pictureShown, timeout=TIMEOUT):
        win.start()
    panel = win.explorer
    renders = Renders(panel)
    assert panel.class_box is not None and panel.class_box.count() == 10 and panel.point.label == 0

    # paused, the weights hold still: the class picker alone changes the picture, and changes it back
    with qtbot.waitSignal(win.bridge.paused, timeout=TIMEOUT):
        win.pause_action.trigger()
    qtbot.waitUntil(lambda: panel.sampler is not None and panel.sampler.step == sent[-1], timeout=TIMEOUT)
    paused_step = panel.sampler.step
    seed = panel.seed.value() + 1  # a point not drawn before
    mark = paused_mark = len(renders.got)
    panel.seed.setValue(seed)
    class_0 = renders.wait(qtbot, mark, 0, seed)
    mark = len(renders.got)
    panel.class_box.setCurrentIndex(5)
    class_5 = renders.wait(qtbot, mark, 5, seed)
    assert not np.array_equal(class_0, class_5)
    mark = len(renders.got)
    panel.class_box.setCurrentIndex(0)
    assert np.array_equal(renders.wait(qtbot, mark, 0, seed), class_0)  # the same weights draw the same picture
    mark = len(renders.got)
    panel.class_box.setCurrentIndex(5)
    assert np.array_equal(renders.wait(qtbot, mark, 5, seed), class_5)
    assert {step for _, _, step, _ in renders.got[paused_mark:]} == {paused_step}

    # the picker stays on 5; the training goes on and its new weights change the picture: the explorer follows
    mark = len(renders.got)
    with qtbot.waitSignal(win.bridge.resumed, timeout=TIMEOUT):
        win.pause_action.trigger()
    followed = renders.wait(qtbot, mark, 5, seed, newer_than=paused_step + 5)
    assert panel.class_box.currentIndex() == 5 and panel.sampler.step > paused_step + 5
    assert not np.array_equal(followed, class_5)
    win.close()

"""What the README promises of the window, each checked by its outcome: closing while training (save, discard,
ask), a crash in the worker and the restart it offers, shortcuts pressed on the keyboard, user presets, the
layout remembered between launches, and the exports (one PNG per sample, the curves as PNG, the sample grid's
count and seed)."""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMessageBox

from engine.checkpoint import checkpoint_step, load_checkpoint
from helpers import open_window, studio_threads

TIMEOUT = 60_000


new_window = open_window


@pytest.fixture
def window(qtbot, tmp_path):
    win = new_window(qtbot, tmp_path / "settings.ini")
    yield win
    win.close()
    assert not studio_threads(), "a worker thread outlived the window"


def train_rows(metrics: list) -> list:
    return [m for m in metrics if getattr(m, "group", "train") == "train"]


def wait_step(qtbot, win, at_least: int):
    """The newest training report once one at or past `at_least` arrives."""
    with qtbot.waitSignal(win.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: any(m.step >= at_least for m in train_rows(ms))) as blocker:
        pass
    return train_rows(blocker.args[0])[-1]


def checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt"))


# -- closing while training --------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["save", "discard"])
def test_closing_while_training_saves_or_discards_as_told(qtbot, window, policy):
    window.config.set("checkpoint_every", 1_000_000)  # only the step-0 checkpoint, unless the close saves one
    window.config.set("metrics_every", 0)
    window.start()
    wait_step(qtbot, window, 30)
    run_dir, worker = window.run_dir, window.bridge._process
    ended = []
    window.bridge.finished.connect(ended.append)
    window.close_policy = policy
    assert window.close()
    assert not window.isVisible()
    assert not worker.is_alive() and worker.exitcode == 0 and not studio_threads()
    assert [e.reason for e in ended] == ["stopped"] and ended[0].step >= 30
    if policy == "save":
        assert checkpoint_names(run_dir) == ["step_0000000.pt", f"step_{ended[0].step:07d}.pt"]
        assert load_checkpoint(run_dir / "checkpoints" / f"step_{ended[0].step:07d}.pt")["step"] == ended[0].step
    else:
        assert checkpoint_names(run_dir) == ["step_0000000.pt"]


def test_closing_while_training_asks_and_cancel_keeps_it_training(qtbot, window, monkeypatch):
    asked = []

    def answer(with_button):
        def question(parent, title, text, buttons, default):
            asked.append(text)
            assert buttons & QMessageBox.Save and buttons & QMessageBox.Discard and buttons & QMessageBox.Cancel
            return with_button
        return staticmethod(question)

    window.close_policy = None  # as a person closes it: the window asks
    window.config.set("checkpoint_every", 1_000_000)
    window.config.set("metrics_every", 0)
    window.start()
    wait_step(qtbot, window, 20)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.Cancel))
    assert not window.close()
    assert asked == ["A run is still training. Save a checkpoint before closing?"]
    assert window.isVisible() and window.bridge.running
    step = wait_step(qtbot, window, 1).step
    wait_step(qtbot, window, step + 10)  # it trains on
    run_dir = window.run_dir
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.Save))
    assert window.close() and not window.isVisible() and not window.bridge.running
    assert len(asked) == 2 and checkpoint_step(sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]) > step


# -- a crash in the worker ---------------------------------------------------------------------------------------

CRASH_AT = 30


def crashing_worker(config_dict, run_dir, resume, events, commands):
    """The training process, with a bug that raises at step CRASH_AT in a fresh run (a resumed run is fine).
    It runs in the spawned child, which imports this module by name."""
    from engine import loop
    from engine.worker import run_in_process
    if resume is None:
        report = loop.Trainer._report

        def broken(self):
            if self.step >= CRASH_AT:
                raise RuntimeError("the test's bug in the report")
            report(self)
        loop.Trainer._report = broken
    run_in_process(config_dict, run_dir, resume, events, commands)


def test_a_crash_in_the_worker_says_one_sentence_and_restarts_from_the_last_checkpoint(qtbot, window, monkeypatch):
    import studio.bridge
    monkeypatch.setattr(studio.bridge, "run_in_process", crashing_worker)
    window.config.set("checkpoint_every", 20)
    window.config.set("metrics_every", 0)
    with qtbot.waitSignal(window.bridge.failed, timeout=TIMEOUT) as blocker:
        window.start()
    failed = blocker.args[0]
    run_dir = window.run_dir
    assert failed.step == CRASH_AT
    box = window.last_message_box
    assert box.isVisible() and box.icon() == QMessageBox.Critical
    text = box.text()
    assert text == f"Training failed at step {CRASH_AT}: RuntimeError: the test's bug in the report"
    assert ". " not in text and "\n" not in text  # one sentence; the traceback is behind "details"
    assert "Traceback" in box.detailedText() and "the test's bug in the report" in box.detailedText()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=TIMEOUT)
    assert window.start_action.isEnabled()
    assert checkpoint_names(run_dir)[-1] == "step_0000020.pt"  # the last one before the crash

    restart = [b for b in box.buttons() if b.text() == "Restart from last checkpoint"][0]
    with qtbot.waitSignal(window.bridge.started, timeout=TIMEOUT) as blocker:
        restart.click()
    assert blocker.args[0].step == 20 and window.run_dir == run_dir  # the same run, from its checkpoint
    assert window.bridge.running
    wait_step(qtbot, window, CRASH_AT + 20)  # past the step that crashed: it trains on
    rows = [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if "group" not in r]  # the resume dropped the rows after step 20 and went on from there
    assert rows == sorted(set(rows)) and any(20 < step <= 30 for step in rows)
    assert window.bridge.running


# -- shortcuts pressed on the keyboard ----------------------------------------------------------------------------

def test_the_keyboard_shortcuts_start_pause_step_save_roll_back_and_stop(qtbot, window):
    window.config.set("checkpoint_every", 1_000_000)
    window.config.set("metrics_every", 0)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    with qtbot.waitSignal(window.bridge.started, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key_Return, Qt.ControlModifier)
    wait_step(qtbot, window, 20)
    with qtbot.waitSignal(window.bridge.paused, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key_Space)
    paused_at = blocker.args[0].step
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: bool(train_rows(ms))) as blocker:
        qtbot.keyClick(window, Qt.Key_S)
    assert [m.step for m in train_rows(blocker.args[0])] == [paused_at + 1]
    with qtbot.waitSignal(window.bridge.checkpointed, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key_S, Qt.ControlModifier)
    assert blocker.args[0].step == paused_at + 1 and Path(blocker.args[0].path).is_file()
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: bool(train_rows(ms))) as blocker:
        qtbot.keyClick(window, Qt.Key_S)
    assert train_rows(blocker.args[0])[-1].step == paused_at + 2
    with qtbot.waitSignal(window.bridge.rolledBack, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert blocker.args[0].step == paused_at + 1  # back to the checkpoint Ctrl+S wrote
    with qtbot.waitSignal(window.bridge.resumed, timeout=TIMEOUT):
        qtbot.keyClick(window, Qt.Key_Space)
    wait_step(qtbot, window, paused_at + 20)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key_Period, Qt.ControlModifier)
    assert blocker.args[0].reason == "stopped"
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=TIMEOUT)
    assert window.start_action.isEnabled()


# -- user presets --------------------------------------------------------------------------------------------------

def test_user_presets_are_listed_and_one_named_like_a_built_in_replaces_it(qtbot, tmp_path, monkeypatch):
    from engine.presets import PRESET_DIR, user_preset_dir
    folder = user_preset_dir()
    assert str(folder).startswith(str(tmp_path))  # conftest's GAN_STUDIO_HOME, never the real home
    folder.mkdir(parents=True)
    ring = (PRESET_DIR / "ring8.toml").read_text(encoding="utf-8")
    (folder / "mine.toml").write_text(ring.replace('name = "ring8"', 'name = "mine"')
                                      .replace("lr_d = 1e-3", "lr_d = 3e-4")
                                      .replace('description = "', 'description = "My ring: '), encoding="utf-8")
    (folder / "ring8.toml").write_text(ring.replace("lr_g = 1e-3", "lr_g = 5e-4")
                                       .replace('description = "', 'description = "My own ring8: '),
                                       encoding="utf-8")
    (folder / "broken.toml").write_text("name = 'x\n[data", encoding="utf-8")
    win = new_window(qtbot, tmp_path / "s.ini")
    try:
        listed = [win.browser.preset_list.item(i) for i in range(win.browser.preset_list.count())]
        names = [item.text() for item in listed]
        assert names.count("ring8") == 1 and "mine" in names and "dcgan_fashion" in names
        broken = listed[names.index("broken (invalid)")]
        assert not broken.flags() & Qt.ItemIsEnabled and "not valid TOML" in broken.toolTip()
        assert win.config.name == "ring8" and win.config.optim.lr_g == 5e-4  # the user's ring8 wins
        assert win.browser.description.text().startswith("My own ring8: ")
        win.browser.preset_list.setCurrentRow(names.index("mine"))  # as a click on it does
        assert win.config.name == "mine" and win.config.optim.lr_d == 3e-4
        assert win.browser.description.text().startswith("My ring: ")
        with qtbot.waitSignal(win.bridge.started, timeout=TIMEOUT) as blocker:
            win.start()
        assert blocker.args[0].config["optim"]["lr_d"] == 3e-4 and win.run_dir.name.startswith("mine-")
    finally:
        win.close()


# -- the layout, remembered -------------------------------------------------------------------------------------

def test_the_window_layout_is_remembered_between_launches(qtbot, tmp_path):
    ini = tmp_path / "layout.ini"
    first = new_window(qtbot, ini)
    presets = first.findChild(QDockWidget, "presets-dock")
    settings = first.findChild(QDockWidget, "settings-dock")
    first.addDockWidget(Qt.RightDockWidgetArea, presets)  # a person drags the presets to the right
    settings.setFloating(True)  # and tears the settings off
    screen = first.screen().availableGeometry()
    size = (min(1111, screen.width() - 50), min(777, screen.height() - 50))  # restoreGeometry keeps it on screen
    first.resize(*size)
    qtbot.waitUntil(lambda: (first.width(), first.height()) == size, timeout=5000)
    assert first.close()
    second = new_window(qtbot, ini)
    try:
        presets2 = second.findChild(QDockWidget, "presets-dock")
        settings2 = second.findChild(QDockWidget, "settings-dock")
        assert second.dockWidgetArea(presets2) == Qt.RightDockWidgetArea
        assert settings2.isFloating()
        assert (second.width(), second.height()) == size
    finally:
        second.close()
    third = new_window(qtbot, tmp_path / "fresh.ini")  # without the file: the default layout
    try:
        assert third.dockWidgetArea(third.findChild(QDockWidget, "presets-dock")) == Qt.LeftDockWidgetArea
        assert not third.findChild(QDockWidget, "settings-dock").isFloating()
    finally:
        third.close()


# -- exports -------------------------------------------------------------------------------------------------------

@pytest.fixture
def painted(qtbot, window):
    """The window after a short painter run (1-D curves: a picture per sample)."""
    window.select_preset("painter")
    window.config.set("train.steps", 60)
    window.config.set("metrics_every", 0)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.start()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=TIMEOUT)
    return window


def export(qtbot, win, kind, path, **kwargs) -> Path:
    with qtbot.waitSignal(win.exportDone, timeout=TIMEOUT) as blocker:
        win.export(kind, path, **kwargs)
    assert blocker.args[0] == str(path)
    return Path(path)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_one_png_per_sample_and_the_curves_as_png(qtbot, painted, tmp_path):
    folder = tmp_path / "each"
    folder.mkdir()
    export(qtbot, painted, "each", folder, count=5, seed=1, scale=2)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"sample_{i:04d}.png" for i in range(5)]
    pictures = [pixels(f) for f in files]
    assert len({p.shape for p in pictures}) == 1 and pictures[0].shape[2] == 3
    assert all(len(np.unique(p.reshape(-1, 3), axis=0)) > 1 for p in pictures)  # each draws its curve
    assert len({p.tobytes() for p in pictures}) == 5  # five different samples, not one picture five times

    curves = export(qtbot, painted, "curves_png", tmp_path / "curves.png")
    with Image.open(curves) as img:
        assert img.format == "PNG"
        size = img.size
    view = painted.curves.layout_widget
    assert abs(size[0] - view.width()) <= 2 and abs(size[1] - view.height()) <= 2  # (a device pixel ratio aside)
    assert len(np.unique(pixels(curves).reshape(-1, 3), axis=0)) > 10  # axes, curves, text: not a blank picture


def test_the_grid_export_s_count_and_seed_make_the_same_picture_twice(qtbot, painted, tmp_path):
    a = export(qtbot, painted, "grid", tmp_path / "a.png", count=16, seed=7, scale=1)
    b = export(qtbot, painted, "grid", tmp_path / "b.png", count=16, seed=7, scale=1)
    other_seed = export(qtbot, painted, "grid", tmp_path / "c.png", count=16, seed=8, scale=1)
    fewer = export(qtbot, painted, "grid", tmp_path / "d.png", count=4, seed=7, scale=1)
    twice = export(qtbot, painted, "grid", tmp_path / "e.png", count=16, seed=7, scale=2)
    assert a.read_bytes() == b.read_bytes()
    assert not np.array_equal(pixels(a), pixels(other_seed))
    assert not np.array_equal(pixels(a), pixels(fewer))
    big, small = pixels(twice), pixels(a)
    assert big.shape[:2] == (2 * small.shape[0], 2 * small.shape[1]) and np.array_equal(big[::2, ::2], small)


# -- the Model terms plot --------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, terms", [
    ("ebgan_fashion", {"pullaway": "pull-away", "margin_active": "fakes under m"}),
    ("loss_sensitive_fashion", {"ls_margin": "Δ(x, G(z))", "ls_violated": "margin violated"}),
    ("sngan_fashion", {"d_lipschitz_bound": "Lipschitz bound of D"}),
    ("noise_annealing_fashion", {"instance_noise": "instance noise σ"}),
])
def test_the_model_terms_plot_draws_each_familys_terms(qtbot, window, fake_fashion, preset, terms):
    """Every reported term gets a named curve with one point per report, and σ's curve falls as it anneals."""
    window.select_preset(preset)
    for key, value in (("data.path", str(fake_fashion)), ("batch_size", 16), ("report_every", 5),
                       ("metrics_every", 0), ("train.steps", 30)):
        window.config.set(key, value)
    if preset == "noise_annealing_fashion":
        window.config.set("tricks.instance_noise_anneal_steps", 30)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.start()
    window.curves.flush()
    assert set(terms) <= set(window.curves.term_names())
    for name, label in terms.items():
        _, item = window.curves.term_items[name]
        assert item.name() == label and len(item.xData) == window.curves.buffer.n
        assert np.isfinite(item.yData).all()
    if preset == "noise_annealing_fashion":
        sigma = window.curves.term_items["instance_noise"][1].yData
        assert sigma[0] > sigma[-1] and np.all(np.diff(sigma) <= 0)

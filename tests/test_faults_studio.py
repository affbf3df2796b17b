"""The window when things go wrong: torn logs, live changes that must survive a reopen, refused saves, values a
spin box cannot hold, and a timelapse of a long run."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QSpinBox

from engine import events as ev
from engine.presets import load_preset, to_toml
from studio.export import make_timelapse
from studio.runs import latest_checkpoint, read_run
from studio.window import MainWindow

from helpers import open_window


@pytest.fixture
def window(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path / "settings.ini")
    yield win
    win.close()


def hand_made_run(folder: Path, metrics: list[str], changes: list[str]) -> Path:
    """A ring8 run folder as the engine leaves it, with the log lines given (the last one may be torn)."""
    (folder / "samples").mkdir(parents=True)
    (folder / "config.toml").write_text(to_toml(load_preset("ring8")), encoding="utf-8")
    (folder / "metrics.jsonl").write_text("\n".join(metrics), encoding="utf-8")
    (folder / "changes.jsonl").write_text("\n".join(changes), encoding="utf-8")
    return folder


GOOD_METRICS = ['{"step": 10, "d_loss": 1.2, "g_loss": 0.7}', '{"step": 20, "d_loss": 1.1, "g_loss": 0.8}',
                '{"step": 30, "d_loss": 1.0, "g_loss": 0.9}']
TORN_METRICS = GOOD_METRICS[:2] + ['[1, 2]', '{"step": "x", "d_loss": 1}'] + GOOD_METRICS[2:] + ['{"step": 40, "d_lo']
CHANGES = ['{"step": 20, "name": "lr_d", "old": 0.001, "new": 0.0001}', "\x00\x00\x00\x00"]


def test_a_torn_log_line_is_skipped_counted_and_the_rest_reopens(window, tmp_path):
    run_dir = hand_made_run(tmp_path / "torn", TORN_METRICS, CHANGES)
    run = read_run(run_dir)
    assert [m.step for m in run.metrics] == [10, 20, 30]
    assert run.markers == [(20, "lr_d 0.001→0.0001")]
    assert run.skipped == {"metrics.jsonl": 3, "changes.jsonl": 1}
    assert window.open_run(run_dir)
    window.curves.flush()
    assert window.curves.buffer.n == 3 and window.curves.markers == [(20, "lr_d 0.001→0.0001")]
    assert window.run_dir == run_dir
    message = window.statusBar().currentMessage()
    assert message.startswith("Skipped 4 unreadable lines of the run's logs (3 in metrics.jsonl, 1 in changes.jsonl")
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_a_run_that_cannot_be_read_leaves_the_window_as_it_was(window, tmp_path):
    good = hand_made_run(tmp_path / "good", GOOD_METRICS, CHANGES[:1])
    window.open_run(good)
    broken = hand_made_run(tmp_path / "broken", GOOD_METRICS, [])
    (broken / "config.toml").write_text("name = 'x\n[data", encoding="utf-8")
    assert not window.open_run(broken)
    assert window.run_dir == good and window.curves.buffer.n == 3 and window.curves.markers
    assert "not valid TOML" in window.last_message_box.text()


def test_reopening_a_run_restores_the_live_settings_of_its_newest_checkpoint(window, tmp_path):
    from engine.loop import Trainer
    run_dir = tmp_path / "run"
    trainer = Trainer(load_preset("ring8", ["metrics_every=0"]), run_dir=run_dir)
    assert trainer.config.optim.lr_d == 1e-3
    trainer.apply_set("lr_d", 1e-4)  # a live change: config.toml keeps the start-time 1e-3
    assert trainer.run(4) == "done"
    assert "lr_d = 0.001" in (run_dir / "config.toml").read_text()
    window.open_run(run_dir)
    assert window.config.optim.lr_d == 1e-4
    assert window.form.widgets["optim.lr_d"].text() == "0.0001"
    assert window.resume_from == latest_checkpoint(run_dir) and window.resume_from.name == "step_0000004.pt"


def fake_paused_run(monkeypatch, window) -> list:
    """The window believes a paused run goes; returns the list of Stop commands it sends."""
    from studio.bridge import EngineBridge
    monkeypatch.setattr(EngineBridge, "running", property(lambda self: True))
    window.bridge.is_paused = True
    stops = []
    monkeypatch.setattr(window.bridge, "stop", lambda save=True: stops.append(save))
    monkeypatch.setattr(window.bridge, "save_now", lambda: None)
    return stops


def test_a_refused_save_forgets_the_fork_and_the_export_that_waited(qtbot, window, tmp_path, monkeypatch):
    stops = fake_paused_run(monkeypatch, window)
    exported = []
    monkeypatch.setattr(window.exporter, "samples", lambda *args: exported.append(args))
    window.fork()  # a paused run: Fork asks for a checkpoint
    window.export("grid", tmp_path / "grid.png")  # so does an export while it runs
    assert window._fork_requested and window.exporter.pending is not None
    why = "The weights hold NaN or Inf, so they were not saved; roll back first."
    with qtbot.waitSignal(window.exportFailed, timeout=5000) as blocker:
        window.bridge._dispatch(ev.CommandRejected(why))  # as the engine answers SaveNow on a NaN
    assert blocker.args[0] == f"Export failed: {why}"
    assert not window._fork_requested and window.exporter.pending is None
    # later, after a roll back and more training, a periodic checkpoint comes: it must not fork nor export
    window.bridge._dispatch(ev.Checkpointed(1000, tmp_path / "step_0001000.pt"))
    assert stops == [] and exported == [] and window.fork_parent is None


def test_a_run_that_ends_before_saving_forgets_the_fork_too(window, tmp_path, monkeypatch):
    stops = fake_paused_run(monkeypatch, window)
    window.fork()
    window.bridge._dispatch(ev.Finished(7, "stopped"))
    assert not window._fork_requested
    window.bridge._dispatch(ev.Checkpointed(1000, tmp_path / "step_0001000.pt"))  # the next run's checkpoint
    assert stops == [] and window.fork_parent is None


def type_into(widget, value) -> None:
    """Enter a value as a person would: a spin box takes it, a line edit takes the text and Enter."""
    if isinstance(widget, QSpinBox):
        widget.setValue(value)
    else:
        widget.setText(str(value))
        widget.editingFinished.emit()


def test_the_form_holds_any_allowed_integer_exactly(window):
    window.select_preset("ring8")
    form = window.form
    type_into(form.widgets["train.seed"], 3_000_000_000)
    type_into(form.widgets["train.steps"], 20_000_000)
    assert window.config.train.seed == 3_000_000_000 and window.config.train.steps == 20_000_000
    form.set_config(window.config)  # shown back exactly, not clamped
    assert form.widgets["train.seed"].text() == "3000000000"
    assert form.widgets["train.steps"].text() == "20000000"
    type_into(form.widgets["train.seed"], -1)  # refused by the engine's checks, in one sentence
    assert window.config.train.seed == 3_000_000_000
    assert "train.seed = -1 is not allowed" in window.statusBar().currentMessage()
    assert isinstance(form.widgets["train.discriminator_steps"], QSpinBox)  # 1..100 fits a spin box
    assert form.widgets["train.discriminator_steps"].maximum() == 100


def test_checkpoints_and_snapshots_past_ten_million_steps_come_in_step_order(tmp_path):
    for name in ("step_9999000.pt", "step_10000000.pt"):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "step_10000000.pt"


def test_the_timelapse_streams_one_frame_at_a_time(tmp_path):
    samples = tmp_path / "run" / "samples"
    samples.mkdir(parents=True)
    width, height, steps = 300, 200, [*range(0, 1900, 100), 9_999_990, 10_000_000]
    colours = {}
    for i, step in enumerate(steps):
        tall = height + 40 if i == 3 else height  # a text preview that wrapped to one more line
        picture = np.zeros((tall, width, 3), np.uint8)
        picture[:] = colours[step] = (i * 11 % 256, 255 - i * 7, 40)
        picture[10:30, 10 + i * 5:30 + i * 5] = 255
        Image.fromarray(picture).save(samples / f"step_{step:07d}.png")
    out = tmp_path / "timelapse.gif"
    tracemalloc.start()
    try:
        make_timelapse(tmp_path / "run", out, frame_ms=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame_bytes = width * (height + 40) * 3
    assert peak < 3 * frame_bytes, f"{peak / frame_bytes:.1f} decoded frames were alive at once"
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []  # written atomically
    with Image.open(out) as gif:
        assert gif.n_frames == len(steps) and gif.size == (width, height + 40)
        for i, step in enumerate(steps):
            gif.seek(i)
            frame = np.asarray(gif.convert("RGB"))
            assert tuple(frame[-1, -1]) == colours[step]  # in step order, padded with the corner's colour
            assert tuple(frame[15, 15 + i * 5]) == (255, 255, 255)
            assert gif.info["duration"] == 50


def test_sigterm_or_ctrl_c_closes_the_window_saving_the_run(qtbot, tmp_path):
    """The studio's process gets SIGINT from Ctrl-C in its terminal (and SIGTERM at logout): the window closes
    as File → Quit does, with a checkpoint of the running training, instead of dying with a traceback."""
    import os
    import signal
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from studio.app import install_quit_signals
    from studio.window import MainWindow

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.select_preset("ring8")
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        install_quit_signals(QApplication.instance(), window)
        with qtbot.waitSignal(window.bridge.metricsArrived, timeout=60_000):
            window.start_action.trigger()
        os.kill(os.getpid(), signal.SIGTERM)
        qtbot.waitUntil(lambda: not window.isVisible() and not window.bridge.running, timeout=60_000)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    saved = sorted((window.run_dir / "checkpoints").glob("step_*.pt"))
    assert saved and int(saved[-1].stem.split("_")[1]) > 0  # the stop saved the steps since the start


def test_the_window_has_an_icon_and_an_about_box_with_the_versions(qtbot, tmp_path):
    import PySide6
    import torch
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(window)
    assert not window.windowIcon().isNull()
    window.about_action.trigger()
    text = window.last_message_box.text()
    assert f"PyTorch {torch.__version__}" in text and f"PySide6 {PySide6.__version__}" in text
    assert text.startswith("GAN Studio ") and "Python 3." in text

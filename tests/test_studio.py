"""The studio window, driven as a person would (offscreen): pick, start, watch, steer, step, export, fork, close."""
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from studio.window import MainWindow

from helpers import open_window, studio_threads

TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path / "settings.ini", "save")
    yield win
    win.close()
    assert not studio_threads(), "a worker thread outlived the window"


def train_rows(metrics: list) -> list:
    """The training reports of a metricsArrived batch: quality rows come from their own thread, at their own
    steps, and must not be taken for the newest training step."""
    return [m for m in metrics if getattr(m, "group", "train") == "train"]


def wait_metrics(qtbot, win, predicate):
    """The newest training report that satisfies `predicate`, from the next batch that has one."""
    with qtbot.waitSignal(win.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: any(predicate(m) for m in train_rows(ms))) as blocker:
        pass
    return [m for m in train_rows(blocker.args[0]) if predicate(m)][-1]


def choose(win, name):
    win.select_preset(name)
    assert win.config.name == name


def test_opens_on_the_ring_ready_to_start(window):
    assert window.config.name == "ring8"
    assert window.start_action.isEnabled() and not window.pause_action.isEnabled()


def test_train_pause_steer_step_export_fork_close(qtbot, window, tmp_path):
    from engine.checkpoint import load_checkpoint
    from studio.runs import latest_checkpoint
    choose(window, "grid25")
    choose(window, "ring8")
    window.config.set("metrics_every", 50)  # quality rows (their own thread, their own steps) mix with the reports
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: any(m.step >= 50 for m in train_rows(ms))):
        window.start_action.trigger()
    # locked fields say why; live ones stay editable
    assert not window.form.widgets["data.batch_size"].isEnabled()
    assert "restart" in window.form.widgets["data.batch_size"].toolTip()
    assert window.form.widgets["train.discriminator_steps"].isEnabled()

    with qtbot.waitSignal(window.bridge.paused, timeout=TIMEOUT) as blocker:
        window.pause_action.trigger()
    paused_at = blocker.args[0].step
    with qtbot.waitSignals([window.bridge.paramChanged, window.bridge.paramChanged], timeout=TIMEOUT):
        window.form.widgets["train.discriminator_steps"].setValue(3)
        lr = window.form.widgets["optim.lr_d"]
        lr.setText("0.0005")
        lr.editingFinished.emit()
    texts = [text for _, text in window.curves.markers]
    assert texts == ["k 1→3", "lr_d 0.001→0.0005"]
    assert all(step == paused_at for step, _ in window.curves.markers)

    with qtbot.waitSignal(window.bridge.resumed, timeout=TIMEOUT):
        window.pause_action.trigger()
    last = wait_metrics(qtbot, window, lambda m: m.step > paused_at + 20)
    assert last.values["k"] == 3 and last.values["lr_d"] == 5e-4

    with qtbot.waitSignal(window.bridge.paused, timeout=TIMEOUT) as blocker:
        window.pause_action.trigger()
    before = blocker.args[0].step
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=TIMEOUT,
                          check_params_cb=lambda ms: bool(train_rows(ms))) as blocker:
        window.step_action.trigger()
    assert [m.step for m in train_rows(blocker.args[0])] == [before + 1]  # one step, reported once

    out = tmp_path / "grid.png"
    with qtbot.waitSignal(window.exportDone, timeout=TIMEOUT):
        window.export("grid", out, count=16, seed=3, scale=2)
    with Image.open(out) as img:
        assert img.size == (768, 768)
    csv_out = tmp_path / "curves.csv"
    window.export("curves_csv", csv_out)
    assert csv_out.read_text().splitlines()[0].startswith("step,d_loss,g_loss")

    parent_dir = window.run_dir
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.fork_action.trigger()
    assert window.curves.ghost is not None and window.curves.ghost.n > 0
    window.form.widgets["optim.lr_g"].setText("0.0002")
    window.form.widgets["optim.lr_g"].editingFinished.emit()
    assert window.config.optim.lr_g == 2e-4
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=TIMEOUT):
        window.start_action.trigger()
    assert window.run_dir != parent_dir and "-fork-" in window.run_dir.name
    first = wait_metrics(qtbot, window, lambda m: True)
    assert first.step > before and first.values["lr_g"] == 2e-4

    # close while the child trains (the fixture's policy is "save"): the worker ends, its last step is saved
    child = window.run_dir
    worker = window.bridge._process
    assert worker is not None and worker.is_alive()
    ended = []
    window.bridge.finished.connect(ended.append)
    window.close()
    assert not worker.is_alive() and worker.exitcode == 0, "the training process outlived the window"
    assert not window.bridge.running and not studio_threads()
    assert [e.reason for e in ended] == ["stopped"]
    saved = latest_checkpoint(child)
    assert saved is not None and load_checkpoint(saved)["step"] == ended[0].step >= first.step > before


def test_settings_and_last_preset_are_remembered(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    first = MainWindow(settings)
    qtbot.addWidget(first)
    choose(first, "painter")
    first.close()
    second = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(second)
    assert second.config.name == "painter"
    second.close()


def test_bad_form_value_is_refused_in_one_sentence(window):
    widget = window.form.widgets["optim.lr_d"]
    widget.setText("-1")
    widget.editingFinished.emit()
    assert window.config.optim.lr_d == 1e-3
    assert "optim.lr_d = -1" in window.statusBar().currentMessage()


def test_dropping_an_image_folder_trains_on_it_and_counts_the_bad_file(qtbot, window, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    assert window.config.data.dataset == "folder" and window.config.data.path == str(folder)
    window.config.set("batch_size", 4)
    with qtbot.waitSignal(window.bridge.warning, timeout=TIMEOUT,
                          check_params_cb=lambda text: "Skipped 1 of 7" in text):
        window.start()
    wait_metrics(qtbot, window, lambda m: m.step >= 2)
    assert window.samples.latest is not None and window.samples.latest.kind == "images"


def test_reopening_a_run_restores_curves_and_samples(qtbot, window):
    choose(window, "painter")
    window.config.set("train.steps", 60)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.start()
    run_dir = window.run_dir
    window.open_run(run_dir)
    assert window.curves.buffer.n == 3  # painter reports every 20 steps
    assert [s for s, _ in window.samples.snapshots] == [0, 60]
    assert window.resume_from.name == "step_0000060.pt"
    window.config.set("train.steps", 80)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.start()
    assert window.run_dir == run_dir and window.curves.buffer.steps[window.curves.buffer.n - 1] == 80


def click_curve_at(qtbot, curves, step: float) -> None:
    """A real left click (press and release on the plot widget's viewport) on the first curve plot, at the
    given step and half way up its y range, as a person clicks a point on a curve."""
    from PySide6.QtCore import QPointF
    plot = curves.first_plot
    (_, _), (y0, y1) = plot.vb.viewRange()
    scene_point = plot.vb.mapViewToScene(QPointF(step, (y0 + y1) / 2))
    view = curves.layout_widget
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.mapFromScene(scene_point))


def test_scrubbing_and_clicking_a_curve_show_older_samples(qtbot, window):
    window.config.set("train.steps", 150)
    window.config.set("train.sample_every", 50)
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.start()
    panel = window.samples
    on_disk = sorted(p.name for p in (window.run_dir / "samples").glob("step_*.png"))
    assert on_disk == [f"step_{s:07d}.png" for s in (0, 50, 100, 150)]
    # the panel holds the snapshots it was shown (a GUI stall may coalesce one away, never invent one)
    steps = [s for s, _ in panel.snapshots]
    assert len(steps) >= 3 and steps[-1] == 150 and {f"step_{s:07d}.png" for s in steps} <= set(on_disk)
    panel.slider.setValue(0)
    assert panel.label.text() == f"step {steps[0]}"
    first = panel.current_picture().copy()
    panel.slider.setValue(len(steps) - 2)
    assert panel.label.text() == f"step {steps[-2]}"
    assert not np.array_equal(first, panel.current_picture())

    # click a curve a little past an older snapshot: the real handler runs once and shows that snapshot
    panel.slider.setValue(panel.slider.maximum())  # back to live
    window.curves.flush()
    qtbot.wait(20)  # the plots take their new range before the click is aimed
    clicked = []
    window.curves.stepClicked.connect(clicked.append)
    target = steps[-2]
    click_curve_at(qtbot, window.curves, target + 3)
    qtbot.wait(50)
    assert len(clicked) == 1, f"one click emitted stepClicked {len(clicked)} times"
    assert abs(clicked[0] - (target + 3)) <= 2  # the step under the cursor, to a pixel or so
    assert panel.label.text() == f"step {target}" and not panel.live
    with Image.open(window.run_dir / "samples" / f"step_{target:07d}.png") as img:
        assert np.array_equal(panel.current_picture(), np.asarray(img.convert("RGB")))

    gif = window.run_dir.parent / "timelapse.gif"
    with qtbot.waitSignal(window.exportDone, timeout=TIMEOUT):
        window.export("gif", gif)
    with Image.open(gif) as img:
        assert img.n_frames == len(on_disk)  # one frame per snapshot


def test_bridge_signals_survive_many_emits():
    """PySide6 6.12.0 corrupted refcounts on Signal(list) emits and crashed the studio; run it in a child."""
    import subprocess
    import sys
    code = ("import os; os.environ['QT_QPA_PLATFORM']='offscreen'\n"
            "from PySide6.QtWidgets import QApplication\n"
            "from studio.bridge import EngineBridge\n"
            "app = QApplication([]); b = EngineBridge(); got = []\n"
            "b.metricsArrived.connect(got.append); b.warning.connect(got.append)\n"
            "for i in range(20000):\n    b.metricsArrived.emit([i]); b.warning.emit('w')\n"
            "print(len(got))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip() == "40000"


def test_dark_theme_is_remembered(qtbot, tmp_path):
    path = str(tmp_path / "theme.ini")
    first = MainWindow(QSettings(path, QSettings.IniFormat))
    qtbot.addWidget(first)
    first.dark_action.trigger()
    from PySide6.QtWidgets import QApplication
    assert QApplication.palette().window().color().lightness() < 100
    first.close()
    second = MainWindow(QSettings(path, QSettings.IniFormat))
    qtbot.addWidget(second)
    assert second.dark_action.isChecked()
    assert QApplication.palette().window().color().lightness() < 100
    second.dark_action.trigger()
    assert QApplication.palette().window().color().lightness() > 150
    second.close()


def test_a_killed_training_process_is_reported_and_its_checkpoints_stay_intact(qtbot, window):
    import os
    import signal

    from engine.checkpoint import checkpoint_step, load_checkpoint
    window.config.set("checkpoint_every", 20)
    with qtbot.waitSignal(window.bridge.checkpointed, timeout=TIMEOUT,
                          check_params_cb=lambda e: e.step >= 40):
        window.start()
    folder = window.run_dir / "checkpoints"
    before = {path.name: checkpoint_step(path) for path in folder.glob("step_*.pt")}
    assert max(before.values()) >= 40  # written after training began, not only the step-0 one
    with qtbot.waitSignal(window.bridge.failed, timeout=TIMEOUT) as blocker:
        os.kill(window.bridge._process.pid, signal.SIGKILL)
    assert "stopped unexpectedly" in blocker.args[0].message
    box = window.last_message_box
    assert box is not None and box.isVisible() and "stopped unexpectedly" in box.text()
    after = sorted(folder.glob("step_*.pt"))  # (the newest five are kept: older ones may have been pruned)
    assert after and checkpoint_step(after[-1]) >= max(before.values())  # the kill lost nothing already saved
    for path in after:  # every checkpoint left loads whole, at the step its name says
        assert load_checkpoint(path)["step"] == checkpoint_step(path)
    assert load_checkpoint(after[-1])["step"] >= 40
    assert not window.bridge.running and window.start_action.isEnabled()


def test_training_stops_and_saves_when_the_window_process_dies(tmp_path):
    """Kill the process that owns the bridge: its training child must save a checkpoint and exit."""
    import os
    import subprocess
    import sys
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from PySide6.QtCore import QTimer\n"
        "from engine.presets import load_preset\n"
        "from studio.bridge import EngineBridge\n"
        "if __name__ == '__main__':\n"
        "    app = QApplication([]); bridge = EngineBridge()\n"
        "    bridge.metricsArrived.connect(lambda ms: (print(bridge._process.pid, flush=True), os._exit(9)))\n"
        "    config = load_preset('ring8', ['checkpoint_every=1000000'])\n"
        "    QTimer.singleShot(0, lambda: bridge.start(config, sys.argv[1]))\n"
        "    app.exec()\n")
    script = tmp_path / "owner.py"
    script.write_text(code)
    run_dir = tmp_path / "run"
    owner = subprocess.run([sys.executable, str(script), str(run_dir)], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert owner.returncode == 9, owner.stderr[-800:]
    child = int(owner.stdout.split()[0])
    waiter = threading.Event()
    for _ in range(600):  # the orphan notices within a second, then saves and exits
        if not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower():
            break
        waiter.wait(0.1)
    else:
        os.kill(child, 9)
        raise AssertionError("the training process outlived its window")
    saved = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    from engine.checkpoint import load_checkpoint
    assert load_checkpoint(saved[-1])["step"] > 0  # more than the initial step-0 checkpoint


def test_a_nan_pause_offers_a_roll_back_that_reaches_the_engine(qtbot, window):
    """A real NaN: a live instance-noise σ of 1e300 is Inf in float32, so D's inputs are Inf and both losses NaN
    at the next step. The engine pauses, the window offers the roll back, and the engine goes back to the last
    good checkpoint (its step, its weights, its live settings) and trains on from there."""
    from engine.checkpoint import load_checkpoint
    from engine.device import inputs_to
    from engine.sampler import load_sampler
    for key, value in (("checkpoint_every", 20), ("sample_every", 20), ("metrics_every", 0)):
        window.config.set(key, value)
    saved, shown, rolled = [], [], []
    window.bridge.checkpointed.connect(saved.append)
    window.bridge.samplesArrived.connect(shown.append)
    window.bridge.rolledBack.connect(rolled.append)
    with qtbot.waitSignal(window.bridge.checkpointed, timeout=TIMEOUT, check_params_cb=lambda e: e.step >= 40):
        window.start()
    noise = window.form.widgets["tricks.instance_noise"]
    with qtbot.waitSignal(window.bridge.paused, timeout=TIMEOUT, check_params_cb=lambda e: bool(e.reason)) as blocker:
        noise.setText("1e300")
        noise.editingFinished.emit()
    nan_step = blocker.args[0].step
    good = saved[-1]  # the newest checkpoint, written before the NaN (none is written with NaN weights)
    assert 40 <= good.step < nan_step
    box = window.last_message_box
    assert box.isVisible() and box.text().startswith("NaN or Inf in") and box.text().endswith(f"at step {nan_step}.")
    assert "roll back" in box.detailedText()
    assert window.bridge.is_paused and window.pause_action.text() == "Resume" and window.rollback_action.isEnabled()

    roll_back = [b for b in box.buttons() if b.text() == "Roll back"][0]
    shown.clear()
    roll_back.click()
    qtbot.waitUntil(lambda: bool(rolled) and any(s.step == good.step for s in shown), timeout=TIMEOUT)
    assert rolled[0].step == good.step and Path(rolled[0].path) == Path(good.path)
    # the engine draws its fixed noise with the checkpoint's weights: the same points the checkpoint gives
    state = load_checkpoint(good.path)
    expected = load_sampler(state).generate(inputs_to(state["fixed"], "cpu")).numpy()
    drawn = [s for s in shown if s.step == good.step][-1].points
    assert np.isfinite(drawn).all() and np.allclose(drawn, expected, atol=1e-5)
    qtbot.waitUntil(lambda: window.samples.label.text() == f"step {good.step} (live)", timeout=TIMEOUT)
    # the checkpoint's σ is back in the window too, so Start or Fork would not train with the NaN's setting again
    qtbot.waitUntil(lambda: window.config.tricks.instance_noise == 0.0, timeout=TIMEOUT)
    assert float(noise.text() or 0) == 0.0

    after_resume = []  # every report from the resume on: the engine sits at the checkpoint's step until then
    window.bridge.metricsArrived.connect(lambda ms: after_resume.extend(m.step for m in train_rows(ms)))
    with qtbot.waitSignal(window.bridge.resumed, timeout=TIMEOUT):
        window.pause_action.trigger()
    later = wait_metrics(qtbot, window, lambda m: m.step > nan_step + 20)  # past the NaN: σ went back too
    assert good.step < min(after_resume) <= good.step + window.config.train.report_every  # on from the checkpoint
    assert np.isfinite(later.values["d_loss"]) and np.isfinite(later.values["g_loss"])
    assert not window.bridge.is_paused and window.bridge.running


def test_a_model_s_own_terms_get_their_plot_and_its_settings_stay_live(qtbot, window, fake_fashion):
    choose(window, "began_fashion")
    for key, value in (("data.path", str(fake_fashion)), ("batch_size", 16), ("report_every", 5),
                       ("train.steps", 400), ("metrics_every", 0)):
        window.config.set(key, value)
    assert window.curves.terms_plot is None
    window.start()
    wait_metrics(qtbot, window, lambda m: m.step >= 10)
    assert window.form.widgets["loss.began_gamma"].isEnabled()  # γ is live
    assert not window.form.widgets["model.ae_code_dim"].isEnabled()  # the autoencoder's shape is not
    with qtbot.waitSignal(window.bridge.finished, timeout=TIMEOUT):
        window.stop()
    window.curves.flush()
    assert {"began_k", "convergence"} <= set(window.curves.term_names())
    _, k_item = window.curves.term_items["began_k"]
    assert len(k_item.xData) == window.curves.buffer.n
    assert len(window.curves.items["energy_real"].xData) == window.curves.buffer.n
    legend = [label.text for _, label in window.curves.plots["energy_real"].legend.items]
    assert legend == ["energy of x", "energy of G(z)"]  # an autoencoder D has no D(x) probability
    choose(window, "ring8")
    window.curves.clear()
    assert window.curves.terms_plot is None  # ring8 has none


def test_the_semi_supervised_accuracy_is_drawn_beside_the_labels_only_one(qtbot):
    from engine.events import Metrics
    from engine import algorithms
    from engine.config import Config
    from studio.curves import CurvesPanel
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.declare(algorithms.get("gan").declare(Config()))  # what a GAN run declares on start
    panel.add_metrics([Metrics(s, {"frechet_distance": 300.0 - s, "test_accuracy": 0.6 + s / 1e4,
                                   "baseline_accuracy": 0.6}, group="quality") for s in (100, 200, 300)])
    panel.quality_choice.setCurrentText("test_accuracy")
    panel.flush()
    assert list(panel.quality_companion.yData) == [0.6, 0.6, 0.6]
    assert [label.text for _, label in panel.quality_legend.items] == ["semi-supervised D", "same net, labels only"]
    panel.quality_choice.setCurrentText("frechet_distance")
    panel.flush()
    assert panel.quality_companion.yData is None or len(panel.quality_companion.yData) == 0


def shown_sections(form):
    from PySide6.QtWidgets import QGroupBox
    return [box.title() for box in form.findChildren(QGroupBox) if box.isVisibleTo(form)]


def plot_titles(curves):
    return [item.titleLabel.text for item in curves.layout_widget.ci.items]


def test_began_s_form_shows_only_what_began_uses(window):
    choose(window, "began_fashion")
    form = window.form
    for key in ("loss.gp_weight", "loss.clip", "loss.ls_lambda"):
        assert not form.widgets[key].isVisibleTo(form), f"{key} does nothing for BEGAN but is shown"
    assert form.widgets["loss.began_gamma"].isVisibleTo(form)
    assert form.widgets["algorithm"].currentText() == "gan"
    choose(window, "wgan_gp_fashion")
    assert form.widgets["loss.gp_weight"].isVisibleTo(form) and not form.widgets["loss.began_gamma"].isVisibleTo(form)


def test_vae_s_form_has_its_own_section_and_no_loss_section(window):
    choose(window, "vae_fashion")
    form = window.form
    assert form.widgets["algorithm"].currentText() == "vae"
    assert "vae" in shown_sections(form) and "loss" not in shown_sections(form)
    assert form.widgets["vae.sigma"].isVisibleTo(form) and form.widgets["vae.sigma"].text() == "0.3"
    assert not form.widgets["tricks.instance_noise"].isVisibleTo(form)  # a GAN trick
    assert "Loss" in plot_titles(window.curves) and "D(x) and D(G(z))" not in plot_titles(window.curves)


def test_switching_the_algorithm_box_switches_the_form_and_the_plots(window):
    form = window.form
    assert window.config.name == "ring8" and "vae" not in shown_sections(form)
    box = form.widgets["algorithm"]
    box.setCurrentIndex(box.findData("vae"))
    assert window.config.algorithm == "vae"
    assert window.config.tricks.r1_weight == 0  # ring8's R1 penalty is a GAN's: turned off, and said so
    assert "tricks.r1_weight" in window.statusBar().currentMessage()
    assert "vae" in shown_sections(form) and "loss" not in shown_sections(form)
    assert form.widgets["vae.sigma"].isVisibleTo(form)
    assert plot_titles(window.curves)[0] == "Loss"
    form.widgets["vae.sigma"].setText("0.5")
    form.widgets["vae.sigma"].editingFinished.emit()
    assert window.config.vae.sigma == 0.5
    box.setCurrentIndex(box.findData("gan"))
    assert window.config.algorithm == "gan" and "vae" not in shown_sections(form) and "loss" in shown_sections(form)
    assert plot_titles(window.curves)[:2] == ["Losses", "D(x) and D(G(z))"]


def test_a_vae_run_draws_the_plots_its_algorithm_declares(qtbot, window, fake_fashion):
    choose(window, "vae_fashion")
    for key, value in (("data.path", str(fake_fashion)), ("batch_size", 16), ("report_every", 5),
                       ("metrics_every", 0)):
        window.config.set(key, value)
    with qtbot.waitSignal(window.bridge.started, timeout=TIMEOUT) as blocker:
        window.start()
    assert blocker.args[0].declaration.plots[0][0] == "Loss"
    wait_metrics(qtbot, window, lambda m: m.step >= 10)
    window.curves.flush()
    titles = plot_titles(window.curves)
    assert "Loss" in titles and "D(x) and D(G(z))" not in titles and "Model terms" in titles
    assert window.curves.term_names() == ["recon", "kl"]
    _, kl = window.curves.term_items["kl"]
    assert kl.name() == "KL"
    assert [label.text for _, label in window.curves.plots["g_loss"].legend.items] == ["−ELBO"]
    assert window.form.widgets["optim.lr_g"].isEnabled() and not window.form.widgets["vae.sigma"].isEnabled()


def test_the_status_bar_names_the_training_phase(window):
    from engine.events import Metrics
    window.on_metrics([Metrics(5, {"steps_per_sec": 100.0}, phase="warm-up")])
    assert window.status.phase_label.text() == "phase: warm-up"
    window.on_metrics([Metrics(6, {"steps_per_sec": 100.0})])
    assert window.status.phase_label.text() == ""


def test_samples_of_a_kind_the_panel_does_not_know_show_their_picture(qtbot):
    from engine.events import Samples
    from studio.samples import SamplesPanel
    panel = SamplesPanel()
    qtbot.addWidget(panel)
    picture = np.zeros((20, 30, 3), np.uint8)
    picture[5:10, 5:25] = 200
    panel.show_samples(Samples(3, kind="text", picture=picture, text=("a cat", "a dog")))
    qtbot.waitUntil(lambda: panel.label.text() == "step 3 (live)", timeout=TIMEOUT)
    assert np.array_equal(panel.current_picture(), picture)

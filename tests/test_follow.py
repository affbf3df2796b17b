"""A headless run steered through its folder (RUN/commands.jsonl answered in changes.jsonl, RUN/live.json), and the
window following a real `gan-studio train` process: watching it, then steering it."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import commands as cmd
from engine import events as ev
from engine.checkpoint import checkpoint_step
from engine.run_control import COMMANDS_FILE, RunControl, judge, read_heartbeat
from helpers import quick

ROOT = Path(__file__).resolve().parent.parent


def append(run: Path, *lines: str) -> None:
    with open(run / COMMANDS_FILE, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def answers(run: Path) -> dict:
    log = run / "changes.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return {row["id"]: row for row in rows if "answer" in row}


class FolderWatch:
    """Wakes the test whenever the trainer writes a row of changes.jsonl (an answer) or looks at the commands file,
    so it waits on those moments instead of sleeping."""

    def __init__(self, trainer, control):
        self.condition = threading.Condition()
        self.looks = 0
        log, read = trainer._log_change, control.tail.read

        def logged(entry):
            log(entry)
            with self.condition:
                self.condition.notify_all()

        def looked():
            lines = read()
            with self.condition:
                self.looks += 1
                self.condition.notify_all()
            return lines

        trainer._log_change, control.tail.read = logged, looked

    def wait(self, predicate, timeout=30.0):
        with self.condition:
            assert self.condition.wait_for(predicate, timeout), "the expected answer never came"


@pytest.fixture
def headless(tmp_path):
    """A ring8 trainer steered through its folder, paused before its first step, training on a thread."""
    run = tmp_path / "run"
    trainer, events = quick("ring8", "train.metrics_every=0", "train.steps=100000", run_dir=run)
    watch = FolderWatch(trainer, RunControl.attach(trainer))
    trainer.commands.put(cmd.Pause())
    thread = threading.Thread(target=trainer.run, daemon=True)
    thread.start()
    events.wait_for(lambda e: isinstance(e, ev.Paused))
    yield trainer, events, run, watch
    trainer.commands.put(cmd.Stop())
    thread.join(30)
    assert not thread.is_alive()


def test_a_set_line_changes_the_learning_rate_at_a_step_and_is_answered_with_its_id(headless):
    trainer, events, run, watch = headless
    assert judge(read_heartbeat(run)) == "running" and read_heartbeat(run)["paused"] is True
    append(run, '{"id": "lr-1", "command": "set", "name": "lr_d", "value": 0.0002}\n')
    changed = events.wait_for(lambda e: isinstance(e, ev.ParamChanged))
    assert (changed.name, changed.old, changed.new) == ("lr_d", 1e-3, 2e-4)
    watch.wait(lambda: "lr-1" in answers(run))
    assert answers(run)["lr-1"] == {"step": changed.step, "id": "lr-1", "command": "set", "answer": "accepted"}
    assert trainer.opts["discriminator"].param_groups[0]["lr"] == 2e-4

    append(run, '{"id": "go", "command": "resume"}\n')  # a paused headless run resumes from the file
    events.wait_for(lambda e: isinstance(e, ev.Resumed))  # the heartbeat is written before the event is passed on
    assert read_heartbeat(run)["paused"] is False
    events.wait_for(lambda e: isinstance(e, ev.Metrics) and e.step > changed.step + 10)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(row["lr_d"] == 2e-4 for row in rows if row["step"] > changed.step)
    assert answers(run)["go"]["answer"] == "accepted"

    append(run, '{"id": "end", "command": "stop"}\n')
    finished = events.wait_for(lambda e: isinstance(e, ev.Finished))
    assert finished.reason == "stopped" and answers(run)["end"]["step"] == finished.step
    beat = read_heartbeat(run)
    assert beat["state"] == "finished" and beat["reason"] == "stopped" and judge(beat) == "finished"
    assert (run / "checkpoints" / f"step_{finished.step:07d}.pt").is_file()


def test_a_torn_line_waits_for_its_end(headless):
    trainer, events, run, watch = headless
    looked = watch.looks
    append(run, '{"id": "torn", "command": "set", "name": "lr_d", "val')
    watch.wait(lambda: watch.looks >= looked + 3)  # the file was read at least twice with the torn line in it
    assert not events.of(ev.ParamChanged) and trainer.config.optim.lr_d == 1e-3
    assert "torn" not in answers(run)
    append(run, 'ue": 0.0005}\n')
    assert events.wait_for(lambda e: isinstance(e, ev.ParamChanged)).new == 5e-4
    watch.wait(lambda: answers(run).get("torn", {}).get("answer") == "accepted")


def test_bad_commands_are_answered_with_a_sentence_and_training_goes_on(headless):
    trainer, events, run, watch = headless
    append(run, "not json\n", '{"id": 2, "command": "jump"}\n', '{"id": 3, "command": "set", "name": "lr_d"}\n',
           '{"id": 4, "command": "set", "name": "data.batch_size", "value": 64}\n',
           '{"id": 5, "command": "step", "n": 0}\n', '{"id": 6, "command": "stop", "save": "yes"}\n',
           '{"id": 7, "command": "step", "n": 2}\n')
    watch.wait(lambda: 7 in answers(run))
    got = answers(run)
    assert got[None]["why"].startswith("The line 'not json' of commands.jsonl is not JSON")
    assert "'jump' is not a command" in got[2]["why"]
    assert "set needs a setting's name and a value" in got[3]["why"]
    assert "data.batch_size cannot change while training" in got[4]["why"]
    assert got[5]["why"] == "Step needs a whole number n >= 1, not 0."
    assert "true or false" in got[6]["why"]
    for key in (None, 2, 3, 4, 5, 6):
        assert got[key]["answer"] == "rejected" and got[key]["why"].endswith(".") and got[key]["why"].count(". ") == 0
    assert got[7]["answer"] == "accepted"
    events.wait_for(lambda e: isinstance(e, ev.Metrics) and e.step == 2)  # it trained on: two steps, then paused
    assert trainer.paused and not trainer.stop_requested


def test_lines_from_before_the_run_started_are_not_replayed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    append(run, '{"id": "old", "command": "stop"}\n')
    trainer, events = quick("ring8", "train.metrics_every=0", "train.steps=5", run_dir=run)
    RunControl.attach(trainer)
    assert trainer.run() == "done" and trainer.step == 5
    assert "old" not in answers(run)
    assert read_heartbeat(run)["state"] == "finished"


# -- the window following a headless process -------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path):
    pytest.importorskip("pytestqt")
    from helpers import open_window, studio_threads
    win = open_window(qtbot, tmp_path / "settings.ini")
    yield win
    win.close()
    assert not studio_threads(), "a thread outlived the window"


def test_the_window_follows_a_headless_run_then_steers_and_stops_it(qtbot, window, tmp_path):
    run = tmp_path / "headless"
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "train", "ring8", "--steps", "100000", "--out", str(run),
         "--set", "train.sample_every=20", "--set", "train.metrics_every=40", "--set", "train.metrics_samples=400"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})  # a tiny MLP: one thread, unslowed by busy shared cores
    try:
        qtbot.waitUntil(lambda: judge(read_heartbeat(run)) == "running", timeout=60_000)
        assert window.open_run(run)
        bridge = window.bridge
        assert window.following.active and bridge.running and bridge.device.startswith("cpu on ")
        # read-only: nothing that would send a command is on
        assert not window.pause_action.isEnabled() and not window.stop_action.isEnabled()
        assert not window.start_action.isEnabled() and not window.form.widgets["optim.lr_d"].isEnabled()
        assert "read-only" in window.following.label.text()
        qtbot.waitUntil(lambda: window.curves.buffer.n > 0 and len(window.samples.snapshots) > 1
                        and window.curves.quality.n > 0, timeout=60_000)
        assert window.samples.latest is not None and window.samples.latest.picture.ndim == 3

        window.following.steer_action.trigger()
        assert window.pause_action.isEnabled() and window.form.widgets["optim.lr_d"].isEnabled()
        assert "steering" in window.following.label.text()
        with qtbot.waitSignal(bridge.paramChanged, timeout=30_000) as blocker:
            lr = window.form.widgets["optim.lr_d"]
            lr.setText("0.0002")
            lr.editingFinished.emit()
        marked = blocker.args[0].step
        assert (marked, "lr_d 0.001→0.0002") in window.curves.markers
        ids = [row for row in answers(run).values() if row["command"] == "set"]
        assert len(ids) == 1 and ids[0]["id"].startswith("studio-") and ids[0]["step"] == marked
        qtbot.waitUntil(lambda: window.step > marked + 10, timeout=30_000)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        train = [row for row in rows if "group" not in row]
        assert all(row["lr_d"] == 1e-3 for row in train if row["step"] <= marked)
        assert any(row["step"] > marked for row in train)
        assert all(row["lr_d"] == 2e-4 for row in train if row["step"] > marked)

        with qtbot.waitSignal(bridge.finished, timeout=30_000) as blocker:
            window.stop_action.trigger()
        assert blocker.args[0].reason == "stopped"
        assert process.wait(30) == 0
        last = checkpoint_step(window.resume_from)
        assert last == read_heartbeat(run)["step"] >= marked
        assert not window.following.active and window.start_action.isEnabled()  # the window's own bridge is back
        assert "finished at step" in window.statusBar().currentMessage()
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=30)[0]
    assert "Finished at step" in output


def test_a_run_whose_writer_died_or_finished_opens_as_a_saved_run(window, tmp_path):
    import socket
    from engine.presets import load_preset, to_toml
    from studio.runs import read_run
    run = tmp_path / "gone"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(load_preset("ring8")), encoding="utf-8")
    (run / "metrics.jsonl").write_text('{"step": 10, "d_loss": 1.0, "g_loss": 0.5}\n', encoding="utf-8")
    (run / "changes.jsonl").write_text('{"step": 10, "name": "lr_d", "old": 0.001, "new": 0.0002}\n'
                                       '{"step": 10, "id": "a", "command": "set", "answer": "accepted"}\n',
                                       encoding="utf-8")
    saved = read_run(run)  # an answer row is neither a marker nor an unreadable line
    assert saved.markers == [(10, "lr_d 0.001→0.0002")] and saved.message() == ""
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    beat = {"state": "running", "pid": dead, "host": socket.gethostname(), "device": "cpu", "step": 10,
            "paused": False, "time": time.time(), "every": 2.0}
    (run / "live.json").write_text(json.dumps(beat), encoding="utf-8")
    assert judge(read_heartbeat(run)) == "died"
    assert window.open_run(run) and not window.following.active and window.start_action.isEnabled()
    assert "stopped at step 10 without finishing" in window.statusBar().currentMessage()
    (run / "live.json").write_text(json.dumps({**beat, "state": "finished", "reason": "done"}), encoding="utf-8")
    assert window.open_run(run) and not window.following.active
    (run / "live.json").write_text(json.dumps({**beat, "pid": 0, "time": time.time() - 60}), encoding="utf-8")
    assert judge(read_heartbeat(run)) == "stale"
    assert window.open_run(run) and not window.following.active  # perhaps alive behind a slow sync: a warning
    assert "press Start only if it no longer runs there" in window.statusBar().currentMessage()

"""Faults in the engine and the CLI: a NaN never hangs a headless run, logs survive torn lines and kills,
checkpoints are never NaN or half-read, run folders never land outside their place or on another run."""
import errno
import re
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import threading

import pytest
import torch

from engine import commands as cmd
from engine import events as ev
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engine.cli import main as cli
from engine.config import Config, ConfigError
from engine.paths import new_run_dir
from helpers import quick

ROOT = Path(__file__).resolve().parent.parent


def poison(trainer):
    with torch.no_grad():
        next(trainer.nets["generator"].parameters()).fill_(float("nan"))


def test_a_headless_nan_rolls_back_and_trains_on(tmp_path):
    trainer, events = quick("ring8", "checkpoint_every=10", run_dir=tmp_path / "run")
    trainer.run(10)
    good = [p.clone() for p in trainer.nets["generator"].parameters()]
    poison(trainer)
    assert trainer.run(30) == "done"  # returns: nobody has to press Resume
    warnings = [w.text for w in events.of(ev.Warning)]
    assert any("rolled back to the checkpoint of step 10" in w for w in warnings)
    assert not events.of(ev.Paused)
    assert all(torch.isfinite(p).all() for p in trainer.nets["generator"].parameters())
    assert not all(torch.equal(a, b) for a, b in zip(good, trainer.nets["generator"].parameters()))


def nan_at(trainer, bad_step):
    """Make the family's step report a NaN loss whenever it reaches bad_step, as a diverging run does."""
    plain = trainer.algorithm.train_step

    def step(step, report):
        out = plain(step, report)
        return {**out, "g_loss": torch.tensor(float("nan"))} if step == bad_step else out

    trainer.algorithm.train_step = step


def test_the_same_nan_after_a_roll_back_stops_the_run(tmp_path):
    trainer, events = quick("ring8", "checkpoint_every=10", run_dir=tmp_path / "run")
    nan_at(trainer, 14)
    assert trainer.run(40) == "nan"
    texts = [w.text for w in events.of(ev.Warning)]
    assert any("rolled back" in t for t in texts)
    assert "again after rolling back to step 10" in texts[-1] and "resume from" in texts[-1]
    assert events.of(ev.Finished)[-1].reason == "nan"
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))] == [
        "step_0000000.pt", "step_0000010.pt"]  # nothing NaN saved at the stop


def test_on_nan_stop_and_pause(tmp_path, capsys):
    trainer, events = quick("ring8", "on_nan='stop'", run_dir=tmp_path / "a")
    nan_at(trainer, 3)
    assert trainer.run(20) == "nan" and "training stopped" in events.of(ev.Warning)[-1].text
    window_like, events = quick("ring8", run_dir=tmp_path / "b", interactive=True)  # auto: the window pauses
    nan_at(window_like, 3)
    thread = threading.Thread(target=window_like.run, args=(20,), daemon=True)
    thread.start()
    paused = events.wait_for(lambda e: isinstance(e, ev.Paused))
    assert "training is paused" in paused.reason
    window_like.commands.put(cmd.Stop())
    thread.join(30)
    assert not thread.is_alive()
    assert cli(["train", "ring8", "--set", "on_nan='pause'", "--steps", "2", "--out", str(tmp_path / "c")]) == 2
    assert "needs the window" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_periodic_checkpoints_are_never_nan(tmp_path):
    """On a GPU the loss check runs on report steps only; a checkpoint step must check the weights itself."""
    trainer, events = quick("ring8", "checkpoint_every=5", "report_every=100", run_dir=tmp_path / "run")
    trainer.run(5)
    trainer._finite_check = lambda: True  # as on a GPU between report steps
    poison(trainer)
    trainer.run(12)
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt"))
    assert files == ["step_0000000.pt", "step_0000005.pt"]
    assert trainer.last_good_checkpoint.name == "step_0000005.pt"
    assert any("no checkpoint was written" in w.text for w in events.of(ev.Warning))


def test_resume_drops_torn_lines_and_rows_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    trainer, _ = quick("ring8", "checkpoint_every=10", "report_every=2", run_dir=run)
    trainer.run(16)  # as if killed at step 16: rows up to 16, checkpoint at 10
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 18, "d_lo')  # a full disk's torn line
    resumed, events = quick("ring8", "checkpoint_every=10", "report_every=2", run_dir=run,
                            resume=run / "checkpoints" / "step_0000010.pt")
    resumed.run(20)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) == 10  # 2..20, once each
    assert any("Dropped 1 unreadable line" in w.text for w in events.of(ev.Warning))


def test_config_toml_is_written_atomically(tmp_path, monkeypatch):
    run = tmp_path / "run"
    quick("ring8", run_dir=run)
    before = (run / "config.toml").read_text()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError):
        quick("ring8", "lr_d=5e-4", run_dir=run)
    assert (run / "config.toml").read_text() == before  # the old file, whole
    assert not list(run.glob("*.tmp"))


def test_stale_temp_files_are_cleaned_on_resume(tmp_path):
    run = tmp_path / "run"
    trainer, _ = quick("ring8", "checkpoint_every=5", run_dir=run)
    trainer.run(5)
    stale = run / "checkpoints" / "step_0000010.pt.k2j4x9.tmp"  # a kill during a save
    stale.write_bytes(b"half")
    quick("ring8", run_dir=run, resume=run / "checkpoints" / "step_0000005.pt")
    assert not stale.exists()


def test_resuming_a_stray_checkpoint_never_writes_beside_it(tmp_path, monkeypatch):
    trainer, _ = quick("ring8", run_dir=tmp_path / "run")
    trainer.run(3)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    stray = downloads / "x.pt"
    stray.write_bytes((tmp_path / "run" / "checkpoints" / "step_0000003.pt").read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli(["train", "--resume", str(stray), "--steps", "5"]) == 0
    assert sorted(p.name for p in downloads.iterdir()) == ["x.pt"]
    assert len(list((work / "runs").glob("ring8-*/checkpoints/step_0000005.pt"))) == 1


def test_run_folders_stay_in_place_and_apart(tmp_path, capsys):
    for name in ("../../x", "/tmp/x", "..", "a b/c"):
        folder = new_run_dir(tmp_path / "runs", name)
        assert folder.parent == tmp_path / "runs" and ".." not in folder.name
    first = new_run_dir(tmp_path / "runs", "ring8")
    first.mkdir(parents=True)
    assert new_run_dir(tmp_path / "runs", "ring8") != first  # the same second, another folder
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert cli(["train", "ring8", "--steps", "2", "--out", str(busy)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("raw, message", [
    ({"optim": {"betas_g": [float("nan"), 0.999]}}, "optim.betas_g = [nan, 0.999] is not allowed"),
    ({"name": "bell\x07"}, "control character U+0007"),
    ({"description": "two\nlines"}, "control character U+000A"),
    ({"train": {"seed": 2 ** 64}}, "train.seed = 18446744073709551616 is not allowed"),
])
def test_values_a_file_or_torch_cannot_keep_are_refused(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.from_dict(raw)


def test_damaged_checkpoints_and_file_errors_are_one_sentence(tmp_path, capsys):
    trainer, _ = quick("ring8", run_dir=tmp_path / "run")
    trainer.run(2)
    good = tmp_path / "run" / "checkpoints" / "step_0000002.pt"
    state = load_checkpoint(good)
    del state["nets"]
    save_checkpoint(tmp_path / "damaged.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="is damaged: it lacks nets"):
        load_checkpoint(tmp_path / "damaged.pt")
    assert cli(["sample", str(tmp_path / "damaged.pt")]) == 2
    assert cli(["sample", str(good), "--out", str(good / "grid.png")]) == 2  # a file where a folder should be
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("gan-studio: ") for line in err)


def test_a_checkpoint_declaring_a_huge_shape_is_refused_before_allocating(tmp_path, capsys):
    trainer, _ = quick("ring8", run_dir=tmp_path / "run")
    trainer.run(2)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000002.pt")
    state["config"]["data"]["dataset"] = "fashion_mnist"  # an image model, its shape taken from the file
    state["data"]["shape"] = [1, 200000, 200000]
    save_checkpoint(tmp_path / "huge.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    assert cli(["sample", str(tmp_path / "huge.pt")]) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "GiB free" in err


def test_sigterm_stops_a_headless_run_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "ring8", "--steps", "1000000",
                             "--out", str(out), "--set", "report_every=1"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "steps/s" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "SIGTERM" in rest
    assert load_checkpoint(sorted((out / "checkpoints").glob("step_*.pt"))[-1])["step"] > 0


def test_a_stop_during_the_data_download_cancels_it_and_keeps_other_commands():
    """The worker builds the trainer (and downloads its data) before it reads commands: its cancel hook sees a
    Stop at once and hands every other command on, in order."""
    import queue
    from engine.worker import StopWatch
    commands = queue.Queue()
    watch = StopWatch(commands)
    assert watch() is False
    for command in (cmd.Set("lr_d", 1e-4), cmd.Stop(), cmd.Pause()):
        commands.put(command)
    assert watch() is True and watch.stopped
    assert watch.kept == [cmd.Set("lr_d", 1e-4), cmd.Pause()]


@pytest.mark.parametrize("module, writer", [("engine.run_folder", "save_checkpoint"),
                                            ("engine.loop", "atomic_write")])  # a snapshot, on the writer thread
def test_a_full_disk_stops_the_run_with_one_sentence_naming_it(module, writer, tmp_path, monkeypatch):
    import importlib
    trainer, events = quick("ring8", "checkpoint_every=5", "sample_every=5", run_dir=tmp_path / "run")
    trainer.run(5)

    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(importlib.import_module(module), writer, full)
    assert trainer.run(20) == "failed"  # a refused snapshot is said by the checkpoint that waits for it
    failed = events.of(ev.Failed)[-1]
    assert failed.message.startswith(f"Writing to {tmp_path / 'run'} failed at step 10: No space left on device")
    assert "resume from" in failed.message and "step_0000005.pt" in failed.message
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000005.pt")["step"] == 5


def test_checkpoints_past_ten_million_steps_are_pruned_oldest_first(tmp_path):
    trainer, _ = quick("ring8", run_dir=tmp_path / "run")
    folder = tmp_path / "run" / "checkpoints"
    for step in (9_999_990, 9_999_995, 10_000_000, 10_000_005, 10_000_010):
        (folder / f"step_{step:07d}.pt").write_bytes(b"x")
    trainer.step = 10_000_015
    trainer.save_checkpoint()
    kept = sorted(int(p.stem.split("_")[1]) for p in folder.glob("step_*.pt"))
    assert kept == [9_999_995, 10_000_000, 10_000_005, 10_000_010, 10_000_015]


def test_the_worker_ignores_ctrl_c_and_stops_with_a_checkpoint_on_sigterm():
    """Ctrl-C in the terminal reaches the window's worker too; the window decides (it saves), so the worker
    survives SIGINT; SIGTERM asks the trainer to stop with a checkpoint."""
    code = ("import os, queue, signal\n"
            "from engine.worker import install_stop_signals\n"
            "q = queue.Queue()\n"
            "install_stop_signals(q)\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "print(q.get(timeout=5))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Stop(save=True)"


def test_an_atomic_write_syncs_the_file_and_its_folder(tmp_path, monkeypatch):
    """After the rename, the folder is fsynced too, so the new name survives a power cut."""
    import stat
    from engine.checkpoint import atomic_write
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real(fd)))
    atomic_write(tmp_path / "a.txt", lambda handle: handle.write(b"x"))
    assert synced == [False, True]  # the file's data, then the folder's entry


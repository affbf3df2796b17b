"""TensorBoard event files beside metrics.jsonl, and the sampling network exported as ONNX (CLI and window)."""
import json
import sys

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.cli import main as cli
from engine.latent import latent_for
from engine.onnx_export import OnnxExportError, export_onnx
from engine.presets import load_preset
from engine.sampler import load_sampler
from helpers import quick
from test_seqgan import TINY

RING = ("report_every=5", "sample_every=20", "metrics_every=20", "metrics_samples=200", "batch_size=64")


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def scalar_series(accumulator):
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def expected_series(rows):
    out = {}
    for row in rows:
        group = row.pop("group", "train")
        step = row.pop("step")
        for name, value in row.items():
            out.setdefault(f"{group}/{name}", []).append((step, value))
    return out


def assert_same_series(got, expected):
    assert set(got) == set(expected)
    for tag, series in expected.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in series], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in series], rel=1e-6), tag


# -- TensorBoard ---------------------------------------------------------------------------------------------
def test_event_files_hold_every_scalar_the_samples_and_the_settings(tmp_path):
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    run = tmp_path / "run"
    trainer, events = quick("ring8", *RING, run_dir=run)
    assert trainer.run(40) == "done"
    assert not events.of(ev.Warning)
    accumulator = read_events(run / "tensorboard")
    series = scalar_series(accumulator)
    assert {"train/g_loss", "train/d_loss", "train/lr_g", "quality/modes_captured"} <= set(series)
    assert_same_series(series, expected_series(jsonl(run / "metrics.jsonl")))
    images = accumulator.Images("samples")
    assert [image.step for image in images] == [0, 20, 40]
    assert images[-1].width > 100 and images[-1].encoded_image_string.startswith(b"\x89PNG")
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    settings = HParamsPluginData.FromString(content).session_start_info.hparams
    assert settings["optim.lr_g"].number_value == pytest.approx(1e-3)
    assert settings["data.dataset"].string_value == "ring8"
    assert settings["train.tensorboard"].bool_value or settings["train.tensorboard"].number_value == 1
    assert "description" not in settings


def test_a_resumed_run_replaces_the_lost_steps(tmp_path):
    run = tmp_path / "run"
    first, _ = quick("ring8", *RING, "checkpoint_every=20", run_dir=run)
    first.run(30)  # steps 21-30 are lost: the run resumes from step 20
    resumed, events = quick("ring8", *RING, "checkpoint_every=20", run_dir=run,
                            resume=run / "checkpoints" / "step_0000020.pt")
    assert resumed.run(40) == "done" and not events.of(ev.Warning)
    series = scalar_series(read_events(run / "tensorboard"))
    assert [s for s, _ in series["train/g_loss"]] == list(range(5, 45, 5))  # each step once
    assert_same_series(series, expected_series(jsonl(run / "metrics.jsonl")))


def test_a_roll_back_hides_the_steps_after_it(tmp_path):
    from engine.tensorboard_log import TensorBoardLog

    warned = []
    log = TensorBoardLog(warned.append)
    log.open(tmp_path, {"optim": {"lr_g": 0.1, "betas_g": [0.5, 0.9]}, "description": "words"})
    for step in (10, 20, 30):
        log.scalars(step, {"loss": step, "lr": 0.1})
    log.scalars(15, {"fid": 3.0}, group="quality")  # measured earlier, published late: no roll back
    log.picture(20, np.zeros((8, 8, 3), np.uint8))  # rolled back to the checkpoint of step 20
    log.scalars(30, {"loss": -30.0, "lr": 0.1})
    log.close()
    series = scalar_series(read_events(tmp_path / "tensorboard"))
    assert series["train/loss"] == [(10, 10.0), (20, 20.0), (30, -30.0)]
    assert series["quality/fid"] == [(15, 3.0)] and not warned


def test_the_setting_turns_it_off(tmp_path):
    trainer, _ = quick("ring8", *RING, "train.tensorboard=false", run_dir=tmp_path / "run")
    assert trainer.run(10) == "done"
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_without_the_package_the_run_says_so_once_and_trains(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    trainer, events = quick("ring8", *RING, run_dir=tmp_path / "run")
    assert trainer.run(40) == "done"
    warnings = [w.text for w in events.of(ev.Warning)]
    assert len(warnings) == 1 and "pip install 'gan-studio[tensorboard]'" in warnings[0]
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_a_failing_writer_is_one_warning_and_training_goes_on(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(SummaryWriter, "_get_file_writer", broken)  # every picture and scalar goes through it
    trainer, events = quick("ring8", *RING, run_dir=tmp_path / "run")
    assert trainer.run(40) == "done"
    warnings = [w.text for w in events.of(ev.Warning)]
    assert warnings == ["TensorBoard logs are off from step 0: OSError: no space left on device"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) > 8


def test_a_sequence_model_writes_its_samples_as_text(tmp_path):
    trainer, events = quick("seqgan_oracle", *TINY, "sample_every=5", run_dir=tmp_path / "run")
    assert trainer.run(10) == "done"
    accumulator = read_events(tmp_path / "run" / "tensorboard")
    texts = accumulator.Tensors("samples/text_summary")
    assert [t.step for t in texts] == [0, 5, 10]
    shown = texts[-1].tensor_proto.string_val[0].decode()
    assert shown.splitlines()[0].strip() == events.of(ev.Samples)[-1].text[0].strip()


# -- ONNX --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, sets", [("ring8", ()), ("dcgan_fashion", ("ema_decay=0.9",)),
                                        ("cgan_fashion", ()), ("infogan_fashion", ())])
def test_the_onnx_model_draws_what_torch_draws(name, sets, fake_fashion, tmp_path):
    import onnxruntime

    trainer, _ = quick(name, "batch_size=8", "metrics_every=0", *sets, fake_dir=fake_fashion)
    trainer.run(2)
    state = trainer.state_dict()
    written = export_onnx(state, tmp_path / "g.onnx")
    sampler = load_sampler(state)  # the EMA generator where there is one
    inputs = latent_for(sampler, 5, seed=7).as_dict()  # 5 rows: the export traced 3
    expected = sampler.generate(inputs).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
    got = session.run(None, feeds)[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    wanted = {"ring8": ("z",), "dcgan_fashion": ("z",), "cgan_fashion": ("z", "labels"),
              "infogan_fashion": ("z", "codes")}[name]
    assert written.inputs == wanted == tuple(feeds)
    assert [o.name for o in session.get_outputs()] == ["samples" if name == "ring8" else "images"]
    if name == "dcgan_fashion":
        assert got.min() >= -1 and got.max() <= 1
        raw = trainer.nets["generator"].eval()(inputs["z"]).detach().numpy()
        assert np.abs(raw - expected).max() > 1e-3  # the EMA copy was exported, not the live G


@pytest.mark.parametrize("name", ["pix2pix_edges", "srgan_fashion", "dtn_edges", "cyclegan_edges"])
def test_an_image_to_image_model_exports_its_translation(name, fake_fashion, tmp_path):
    import onnxruntime

    family = load_preset(name).algorithm
    trainer, _ = quick(name, "batch_size=4", "metrics_every=0", f"{family}.g_filters=8", f"{family}.d_filters=8",
                       fake_dir=fake_fashion)
    trainer.run(2)
    state = trainer.state_dict()
    written = export_onnx(state, tmp_path / "t.onnx")
    sampler = load_sampler(state)
    x = torch.rand(5, *sampler.dataset.input_shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    nets = sampler.sampling_nets()
    with torch.no_grad():
        expected = sampler.algorithm.translate(x, "AtoB", nets).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]  # 5 rows: the export traced 3
    assert written.inputs == ("image",) and got.shape == expected.shape == (5, 1, 32, 32)
    assert np.abs(got - expected).max() <= 1e-4


def test_a_sequence_model_is_refused_in_one_sentence(tmp_path):
    trainer, _ = quick("seqgan_oracle", *TINY)
    with pytest.raises(OnnxExportError) as caught:
        export_onnx(trainer.state_dict(), tmp_path / "g.onnx")
    text = str(caught.value)
    assert "one token at a time" in text and text.count(". ") == 0 and text.endswith(".") and "\n" not in text
    assert not (tmp_path / "g.onnx").exists()


def test_the_cli_writes_a_model_onnx_accepts(tmp_path, capsys, monkeypatch):
    import onnx

    assert cli(["train", "ring8", "--steps", "4", "--out", str(tmp_path / "run")]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_0000004.pt"
    assert cli(["export", str(checkpoint), "--onnx", str(tmp_path / "g.onnx")]) == 0
    onnx.checker.check_model(onnx.load(str(tmp_path / "g.onnx")))
    assert "inputs z" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert cli(["export", str(checkpoint), "--onnx", str(tmp_path / "h.onnx")]) == 2
    assert "pip install 'gan-studio[onnx]'" in capsys.readouterr().err


def test_the_fallback_exporter_keeps_the_batch_free_or_refuses(tmp_path, monkeypatch, fake_fashion):
    """Where the dynamo exporter fails, the TorchScript one is tried, and kept only if the batch stays free."""
    export = torch.onnx.export

    def no_dynamo(*args, **kwargs):
        if kwargs.get("dynamo", True):
            raise RuntimeError("dynamo cannot trace this")
        return export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    import onnxruntime

    ring, _ = quick("ring8")
    assert export_onnx(ring.state_dict(), tmp_path / "ring.onnx").inputs == ("z",)
    session = onnxruntime.InferenceSession(str(tmp_path / "ring.onnx"), providers=["CPUExecutionProvider"])
    z = torch.randn(5, ring.config.model.noise_dim)
    assert np.abs(session.run(None, {"z": z.numpy()})[0] - ring.generate({"z": z}).numpy()).max() <= 1e-4
    dcgan, _ = quick("dcgan_fashion", fake_dir=fake_fashion)
    with pytest.raises(OnnxExportError, match="could not be exported as ONNX: dynamo cannot trace this"):
        export_onnx(dcgan.state_dict(), tmp_path / "dcgan.onnx")


def test_the_window_exports_the_onnx_model_of_its_run(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    import onnx
    from PySide6.QtCore import QSettings

    from studio.export import ExportDialog
    from studio.window import MainWindow

    dialog = ExportDialog()
    labels = {button.property("kind"): button.text() for button in dialog.group.buttons()}
    assert labels["onnx"] == "ONNX model (.onnx)"
    assert dialog.count.isEnabled()  # the sample grid is drawn by count, seed and scale; a model has none of them
    next(b for b in dialog.group.buttons() if b.property("kind") == "onnx").setChecked(True)
    assert not dialog.count.isEnabled() and not dialog.seed.isEnabled() and not dialog.scale.isEnabled()
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    window.close_policy = "save"
    qtbot.addWidget(window)
    window.config.set("train.steps", 20)
    with qtbot.waitSignal(window.bridge.finished, timeout=60_000):
        window.start()
    out = tmp_path / "ring.onnx"
    with qtbot.waitSignal(window.exporter.busy, timeout=5_000), \
            qtbot.waitSignal(window.exportDone, timeout=60_000) as done:
        window.export("onnx", out)
    assert done.args == [str(out)]
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["z"]
    assert window.statusBar().currentMessage() == f"Exported {out}"
    window.close()



def test_a_full_disk_in_tensorboards_writer_thread_prints_no_traceback(monkeypatch):
    """Its failure comes back as one warning at the next write; Python's own traceback would follow the message."""
    import threading
    from types import SimpleNamespace
    from engine.tensorboard_log import quiet_writer_threads
    printed = []
    monkeypatch.setattr(threading, "excepthook", printed.append)  # stands for Python's hook, which prints
    quiet_writer_threads()

    class _AsyncWriterThread(threading.Thread):  # TensorBoard's class name
        pass

    full = SimpleNamespace(thread=_AsyncWriterThread(), exc_value=OSError(27, "File too large"))
    bug = SimpleNamespace(thread=threading.Thread(), exc_value=ValueError("a real bug"))
    threading.excepthook(full)
    threading.excepthook(bug)
    assert printed == [bug]  # any other thread's error is still printed

"""One loop, many algorithm families: a family from outside the engine trains, resumes and samples through
the entry-point group; the loop names no family; version-1 checkpoints still sample; sampling leaves the
process's random state alone; the engine and the studio have no import cycle and no giant file."""
import ast
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import algorithms
from engine.checkpoint import load_checkpoint
from engine import events as ev
from engine.cli import ProgressBar, main as cli
from engine.config import Config, ConfigError
from engine.presets import load_preset
from engine.sampler import load_sampler

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOY_PRESET = PLUGINS / "toy1d.toml"


@pytest.fixture
def toy_installed(monkeypatch):
    """The toy family is installed the way a third-party package would be: a .dist-info on sys.path."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    assert "toy1d" in algorithms.names()
    return TOY_PRESET


def checkpoint_weights(path):
    state = load_checkpoint(path)
    return {f"{net}.{name}": tensor for net, sd in state["nets"].items() for name, tensor in sd.items()}


def test_a_plug_in_family_trains_resumes_and_samples_from_the_cli(toy_installed, tmp_path):
    assert cli(["train", str(toy_installed), "--steps", "200", "--out", str(tmp_path / "a")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    means = [r["fake_mean"] for r in rows if "fake_mean" in r]
    assert abs(means[0] - 2.0) > 1.0 and abs(np.mean(means[-3:]) - 2.0) < 0.3  # G found the real mean
    bar = ProgressBar(200, stream=io.StringIO())  # the CLI's progress line shows what the family declared
    bar(ev.Started(0, "cpu", None, {}, algorithms.get("toy1d").declare(load_preset(toy_installed))))
    bar(ev.Metrics(200, {"d_loss": 1.4, "g_loss": 0.7, "fake_mean": means[-1]}))
    assert f"D 1.400  mean {means[-1]:.2f}" in bar.stream.getvalue()

    assert cli(["train", str(toy_installed), "--steps", "100", "--set", "train.checkpoint_every=50",
                "--out", str(tmp_path / "b")]) == 0
    assert cli(["train", "--resume", str(tmp_path / "b" / "checkpoints" / "step_0000100.pt"), "--steps", "200"]) == 0
    straight = checkpoint_weights(tmp_path / "a" / "checkpoints" / "step_0000200.pt")
    resumed = checkpoint_weights(tmp_path / "b" / "checkpoints" / "step_0000200.pt")
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)

    out = tmp_path / "hist.png"
    assert cli(["sample", str(tmp_path / "a" / "checkpoints" / "step_0000200.pt"), "--n", "500",
                "--out", str(out)]) == 0
    with Image.open(out) as img:
        picture = np.asarray(img.convert("RGB"))
    orange = np.all(picture == (230, 85, 13), axis=2)
    columns = np.flatnonzero(orange.any(0))
    assert 20 <= columns.mean() <= 40  # the histogram's mass sits near 2 on [−4, 6], not near 0


def test_a_plug_in_family_has_its_own_settings_section(toy_installed):
    config = load_preset(toy_installed, ["toy_mean=1.5"])
    assert config.toy1d.mean == 1.5 and "toy1d.mean" in config.live_keys()
    assert not config.relevant("data.dataset") and not config.relevant("loss.name")
    with pytest.raises(ConfigError, match=r"loss\.name.*'toy1d'"):
        load_preset(toy_installed, ["loss.name='hinge'"])
    with pytest.raises(ConfigError, match=r"toy1d\.std belongs to algorithm 'toy1d'"):
        load_preset("ring8", ["toy1d.std=2"])


def test_families_keep_their_settings_apart():
    vae = load_preset("vae_fashion")
    assert vae.algorithm == "vae" and vae.vae.sigma == 0.3
    with pytest.raises(ConfigError, match=r"loss\.gp_weight.*'vae'"):
        load_preset("vae_fashion", ["gp_weight=5"])
    began = load_preset("began_fashion")
    shown = {key for key in began.keys() if began.relevant(key)}
    assert {"loss.began_gamma", "loss.began_lambda_k"} <= shown
    assert not {"loss.gp_weight", "loss.clip", "loss.ls_lambda", "vae.sigma"} & shown
    # its D is an autoencoder: no class, projection, Q or minibatch options to offer
    assert not {"model.conditional", "model.info_continuous", "model.semi_supervised", "tricks.minibatch_features"} & shown
    assert "model.conditional" in {key for key in load_preset("dcgan_fashion").keys()
                                   if load_preset("dcgan_fashion").relevant(key)}
    # a config written before families (the VAE was a loss) reads as the vae family
    old = {"name": "old", "data": {"dataset": "fashion_mnist"}, "model": {"architecture": "dcgan"},
           "loss": {"name": "vae", "vae_sigma": 0.2, "gp_weight": 10.0}}
    config = Config.from_dict(old)
    assert config.algorithm == "vae" and config.vae.sigma == 0.2


def test_a_setting_the_family_never_reads_is_refused_by_name_and_old_runs_still_open(tmp_path):
    # model.g_fc is read by the families whose G is the engine's; composite builds its own G (but the engine's D)
    with pytest.raises(ConfigError, match=r"model\.g_fc is not allowed with algorithm = 'composite'"):
        load_preset("composite_fashion", ["model.g_fc=64"])
    assert load_preset("composite_fashion", ["model.d_fc=64"]).model.d_fc == 64
    with pytest.raises(ConfigError, match=r"train\.mixed_precision is not allowed with algorithm = 'vae'"):
        load_preset("vae_fashion", ["train.mixed_precision=true"])
    with pytest.raises(ConfigError, match=r"model\.noise_dim is not allowed with algorithm = 'stackgan', which has "
                                          r"no \[model\] section"):
        load_preset("stackgan_fashion", ["model.noise_dim=50"])
    # a short name two places share means the family's own: SEGAN and SeqGAN read batch_size as their batch
    assert load_preset("segan_speech", ["batch_size=16"]).segan.batch == 16
    assert load_preset("seqgan_fortunes", ["batch_size=16"]).seqgan.batch == 16
    assert load_preset("ring8", ["batch_size=16"]).data.batch_size == 16
    # switching from InfoGAN in the window turns off what StackGAN would not read, its [model] section included
    config = load_preset("infogan_fashion")
    turned_off = config.switch_algorithm("stackgan")
    assert {"model.g_fc", "model.d_fc", "model.noise_dim", "model.info_categorical"} <= set(turned_off)
    # a run written before these were refused kept them; it opens, with them back at their defaults
    saved = load_preset("stackgan_fashion").to_dict()
    saved["model"].update(g_fc=1024, noise_dim=62)
    saved["train"]["mixed_precision"] = True
    with pytest.raises(ConfigError, match="is not allowed with algorithm = 'stackgan'"):
        Config.from_dict(saved)
    reopened = Config.from_saved(saved)
    assert (reopened.model.g_fc, reopened.model.noise_dim, reopened.train.mixed_precision) == (0, 2, False)
    assert reopened.stackgan == load_preset("stackgan_fashion").stackgan
    # so does such a run's config.toml, which the window reads when the run has no checkpoint yet
    from engine.presets import to_toml
    old_run = Config.from_saved(saved)
    old_run.model.g_fc = 1024
    (tmp_path / "config.toml").write_text(to_toml(old_run), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.toml: model\.g_fc is not allowed"):
        load_preset(tmp_path / "config.toml")
    assert load_preset(tmp_path / "config.toml", saved=True).model.g_fc == 0


def test_the_loop_names_no_family():
    text = (ROOT / "engine" / "loop.py").read_text().lower()
    for word in ("began", "ebgan", "semi", "info", "vae", "discriminator", "generator."):
        assert word not in text, word


def _module_imports(path: Path, package_root: Path) -> set[str]:
    """Every engine.* / studio.* module a file imports, at any depth of the file (lazy imports count)."""
    name = ".".join(path.relative_to(package_root).with_suffix("").parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(name.split(".")[: -node.level] + [node.module])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in ("engine", "studio")}


def test_engine_and_studio_have_no_import_cycle():
    files = {}
    for package in ("engine", "studio"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    graph = {name: {m for m in _module_imports(path, ROOT) if m in files and m != name} for name, path in files.items()}
    # a package's __init__ is imported before its submodules: an edge to engine.x.y is an edge to engine.x too
    for name, edges in graph.items():
        for target in list(edges):
            parent = target.rsplit(".", 1)[0]
            if parent in files and parent != name and not name.startswith(parent + "."):
                edges.add(parent)
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_file_in_engine_or_studio_is_a_giant():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for package in ("engine", "studio") for p in (ROOT / package).rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}


@pytest.mark.parametrize("fixture, args, picture", [
    ("v1_ring8.pt", ["--n", "64", "--seed", "3"], "v1_ring8_sample.png"),
    ("v1_infogan_fashion.pt", ["--n", "16", "--seed", "3", "--cat", "c0=4", "--code", "c1=0.5"], "v1_infogan_sample.png"),
])
def test_a_version_1_checkpoint_samples_the_same_picture(fixture, args, picture, tmp_path):
    out = tmp_path / "again.png"
    assert cli(["sample", str(FIXTURES / fixture), *args, "--out", str(out)]) == 0
    with Image.open(out) as now, Image.open(FIXTURES / picture) as then:
        assert np.array_equal(np.asarray(now), np.asarray(then))


def test_a_version_1_checkpoint_trains_on(tmp_path):
    resume = tmp_path / "run" / "checkpoints" / "step_0000030.pt"
    resume.parent.mkdir(parents=True)
    resume.write_bytes((FIXTURES / "v1_ring8.pt").read_bytes())
    (tmp_path / "run" / "config.toml").write_text("")  # a run folder, as GAN Studio 1 left it
    assert cli(["train", "--resume", str(resume), "--steps", "40"]) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000040.pt")
    assert state["version"] == 2 and state["step"] == 40


def test_sampling_leaves_the_global_random_state_alone():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    sampler = load_sampler(FIXTURES / "v1_infogan_fashion.pt")
    assert torch.equal(torch.get_rng_state(), before)
    assert set(sampler.algorithm.nets) == {"generator"} and not sampler.algorithm.opts


def test_a_plug_in_family_trains_in_the_window(qtbot, toy_installed, tmp_path):
    """The toy family's preset, dropped into the user's preset folder, trains in the studio: the window
    draws the plots and the term the family declares and the picture its preview makes, its own live
    setting steers the run, and the checkpoint keeps the change."""
    pytest.importorskip("PySide6")
    pytest.importorskip("pytestqt")
    import shutil
    from PySide6.QtCore import QSettings
    from engine.presets import user_preset_dir
    from studio.window import MainWindow

    user_preset_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(toy_installed, user_preset_dir() / "toy1d.toml")
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    window.close_policy = "save"
    qtbot.addWidget(window)
    window.show()
    window.select_preset("toy1d")
    assert window.config.algorithm == "toy1d" and window.form.widgets["toy1d.mean"].isVisibleTo(window.form)
    assert not window.form.widgets["loss.name"].isVisibleTo(window.form)
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=60_000,
                          check_params_cb=lambda ms: ms[-1].step >= 100):
        window.start_action.trigger()
    with qtbot.waitSignal(window.bridge.paramChanged, timeout=60_000):
        window.form.widgets["toy1d.mean"].setText("0.5")
        window.form.widgets["toy1d.mean"].editingFinished.emit()
    assert window.curves.markers[-1][1] == "toy_mean 2→0.5"
    with qtbot.waitSignal(window.bridge.samplesArrived, timeout=60_000,
                          check_params_cb=lambda s: s.step >= 150) as blocker:
        pass
    assert blocker.args[0].picture.shape == (64, 64, 3)
    qtbot.waitUntil(lambda: window.samples.current_picture() is not None, timeout=60_000)
    window.curves.flush()
    assert "fake_mean" in window.curves.term_names()
    assert window.curves.term_items["fake_mean"][1].name() == "mean of G(z)"
    with qtbot.waitSignal(window.bridge.finished, timeout=60_000):
        window.stop_action.trigger()
    checkpoint = sorted((window.run_dir / "checkpoints").glob("step_*.pt"))[-1]
    assert load_sampler(checkpoint).config.toy1d.mean == 0.5  # the live change was saved with the run
    window.close()

"""SeqGAN: sequences of tokens, policy gradient with rollouts, the oracle benchmark and real text, in the
engine, the CLI and the window."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import events as ev
from engine.cli import main as cli
from engine.data import DataError
from engine.presets import load_preset
from engine.text import data as text_data
from engine.text.metrics import Bleu, SequenceQuality, mean_nll
from engine.text.nets import SeqGenerator
from helpers import Recorder, needs_fortunes, quick

TINY = ["seqgan.vocab_size=40", "seqgan.seq_len=8", "seqgan.oracle_samples=800", "seqgan.embed_dim=16",
        "seqgan.hidden_dim=16", "seqgan.oracle_embed_dim=16", "seqgan.oracle_hidden_dim=16",
        "seqgan.d_embed_dim=16", "seqgan.d_widths=[1, 2, 4]", "seqgan.d_filters=[8, 8, 8]", "seqgan.batch=32",
        "seqgan.mle_steps=40", "seqgan.d_pre_steps=20", "seqgan.rollouts=4", "seqgan.d_steps=2",
        "train.metrics_every=0", "train.sample_count=4", "train.report_every=5"]
ADVERSARIAL = 60  # the first adversarial step of TINY
ROUND = 4 + 2  # rollout passes of one G step, then D steps


def tiny(*more, run_dir=None, **kwargs):
    return quick("seqgan_oracle", *TINY, *more, run_dir=run_dir, **kwargs)


def nll_oracle(trainer, n=400):
    probe = SequenceQuality(trainer.algorithm, n, 0)
    return probe.compute(probe.snapshot())


def test_the_generator_steps_like_its_lstm_and_rollouts_keep_each_prefix():
    torch.manual_seed(0)
    g = SeqGenerator(30, 6, 8, 8)
    x = g.sample(torch.rand(5, 6))
    tokens, h, c = g.start_state(5, "cpu")
    stepped = []
    for t in range(6):
        h, c = g.cell(tokens, h, c)
        stepped.append(g.out(h))
        tokens = x[:, t]
    assert torch.allclose(torch.stack(stepped, 1), g.logits(x), atol=1e-5)
    done = g.complete(x, torch.rand(5, 5, 6))
    assert done.shape == (5, 5, 6)
    for t in range(1, 6):
        assert torch.equal(done[t - 1, :, :t], x[:, :t])
    with torch.no_grad():  # a generator that only ever says token 3 completes every prefix with 3s
        g.out.bias.fill_(-50.0)
        g.out.bias[3] = 50.0
    done = g.complete(x, torch.rand(5, 5, 6))
    for t in range(1, 6):
        assert (done[t - 1, :, t:] == 3).all()


def test_the_oracle_comes_from_its_seed_and_mle_learns_it():
    a, _ = tiny()
    b, _ = tiny()
    other, _ = tiny("seqgan.oracle_seed=5")
    assert torch.equal(a.dataset.train, b.dataset.train)
    assert not torch.equal(a.dataset.train, other.dataset.train)
    before = nll_oracle(a)["nll_oracle"]
    a.run(40)
    after = nll_oracle(a)["nll_oracle"]
    real = mean_nll(a.dataset.oracle, a.dataset.train[:400])  # the oracle's own entropy: the floor
    assert after < before - 0.3 and after > real - 0.1


def test_seqgan_goes_through_its_phases_and_measures_both_models(tmp_path):
    trainer, events = tiny("train.metrics_every=36", "train.sample_every=30", run_dir=tmp_path / "run")
    assert trainer.run(ADVERSARIAL + 2 * ROUND) == "done"
    changes = [(e.step, e.old, e.new) for e in events.of(ev.PhaseChanged)]
    assert changes == [(40, "MLE pre-training", "D pre-training"), (ADVERSARIAL, "D pre-training", "adversarial")]
    log = [json.loads(line) for line in (tmp_path / "run" / "changes.jsonl").read_text().splitlines()]
    assert [(e["step"], e["name"], e["new"]) for e in log] == [(40, "phase", "D pre-training"),
                                                              (60, "phase", "adversarial")]
    train = events.of(ev.Metrics)
    last = [m for m in train if m.group == "train"][-1]
    assert last.phase == "adversarial"
    assert {"mle_loss", "d_loss", "d_accuracy", "pg_loss", "reward", "baseline_mle_loss"} <= set(last.values)
    assert 0.0 < last.values["reward"] < 1.0
    quality = [m for m in train if m.group == "quality"]
    assert [m.step for m in quality] == [36, 72]
    assert set(quality[0].values) == {"nll_oracle"}  # the MLE-only continuation starts with the adversarial phase
    assert set(quality[1].values) == {"nll_oracle", "nll_oracle_mle"}
    samples = events.of(ev.Samples)[-1]
    assert samples.kind == "text" and len(samples.text) == 4
    assert all(len(line.split()) == 8 and all(0 <= int(t) < 40 for t in line.split()) for line in samples.text)
    assert samples.picture.shape[1] == 640 and samples.picture.shape[2] == 3
    assert samples.tokens[0] == tuple(samples.text[0].split()) and len(samples.shades[0]) == 8
    assert all(0.0 <= v <= 1.0 for row in samples.shades for v in row)
    shades = samples.picture.reshape(-1, 3)
    assert len(np.unique(shades, axis=0)) > 20  # tokens on tiles shaded by their rewards, not plain text
    with Image.open(samples.path) as img:
        assert img.size[0] == 640
    pytest.importorskip("PySide6")
    from studio.export import make_timelapse
    snapshots = sorted((tmp_path / "run" / "samples").glob("step_*.png"))
    heights = set()
    for png in snapshots:
        with Image.open(png) as img:
            heights.add(img.size[1])
    gif = make_timelapse(tmp_path / "run", tmp_path / "run.gif")
    with Image.open(gif) as img:  # the timelapse export: one frame per snapshot, the tallest one's size
        assert img.n_frames == len(snapshots) == 4 and img.size == (640, max(heights))


def weights(trainer):
    return torch.cat([p.detach().flatten() for net in trainer.nets.values() for p in net.parameters()])


def test_a_policy_step_is_spread_over_rollout_steps_and_resumes_exactly(tmp_path):
    """Pause and stop wait at most for one rollout pass: G changes only on the pass that completes its
    rollouts; a checkpoint taken between passes resumes to the same weights as a run never stopped."""
    trainer, _ = tiny(run_dir=tmp_path / "a")
    trainer.run(ADVERSARIAL + 1)
    g = lambda t: torch.cat([p.detach().flatten() for p in t.nets["generator"].parameters()])
    start = g(trainer).clone()
    trainer.run(ADVERSARIAL + 3)
    assert torch.equal(g(trainer), start)  # 3 of 4 rollout passes done: G has not moved
    checkpoint = trainer.save_checkpoint()
    trainer.run(ADVERSARIAL + 4)
    assert not torch.equal(g(trainer), start)
    trainer.run(ADVERSARIAL + 3 * ROUND)
    resumed, _ = tiny(run_dir=tmp_path / "b", resume=checkpoint)
    assert resumed.algorithm.pending is not None and resumed.algorithm.pending["done"] == 3
    resumed.run(ADVERSARIAL + 3 * ROUND)
    if trainer.device.type == "cpu":
        assert torch.equal(weights(trainer), weights(resumed))
    else:  # CUDA's embedding backward adds with atomics, in no fixed order: equal up to that noise
        assert torch.allclose(weights(trainer), weights(resumed), atol=2e-2)


def test_policy_gradient_learns_to_fool_a_fixed_discriminator():
    """With D frozen after pre-training (no D steps per round), G's policy gradient raises D's probability
    of 'real' for G's own sequences: the reward is followed uphill, not down."""
    trainer, _ = tiny("seqgan.mle_steps=0", "seqgan.d_pre_steps=150", "seqgan.d_steps=0", "seqgan.rollouts=2",
                      "optim.lr_d=1e-3")
    start = 150
    trainer.run(start)
    algorithm = trainer.algorithm
    u = torch.rand(500, 8, generator=torch.Generator().manual_seed(1)).to(trainer.device)
    fooled = lambda: float(algorithm._judge(algorithm.nets["generator"].sample(u)).mean())
    before = fooled()
    assert before < 0.3  # an untrained G against the oracle's data: D tells them apart
    trainer.run(start + 2 * 40)
    assert fooled() > before + 0.4


def test_the_cli_trains_samples_and_evaluates_the_oracle(tmp_path, capsys):
    sets = [arg for item in TINY for arg in ("--set", item)]
    assert cli(["train", "seqgan_oracle", "--steps", str(ADVERSARIAL + ROUND), "--out", str(tmp_path / "run"),
                *sets]) == 0
    err = capsys.readouterr().err
    assert "Step 40: D pre-training" in err and "Step 60: adversarial" in err
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    assert cli(["sample", str(checkpoint), "--n", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(len(line.split()) == 8 for line in lines)
    assert cli(["sample", str(checkpoint), "--n", "3", "--seed", "4", "--out", str(tmp_path / "s.txt")]) == 0
    assert len((tmp_path / "s.txt").read_text().splitlines()) == 3
    assert cli(["sample", str(checkpoint), "--each", str(tmp_path / "each")]) == 2
    assert "--out FILE.txt" in capsys.readouterr().err
    assert cli(["eval", str(checkpoint), "--n", "300"]) == 0
    out = capsys.readouterr().out
    values = dict(line.split() for line in out.splitlines()[1:])
    assert 0 < float(values["nll_oracle"]) < 10 and "nll_oracle_mle" in values
    pytest.importorskip("PySide6")
    from studio.export import export_samples
    export_samples(checkpoint, "grid", tmp_path / "grid.png", 6, 0, 2)  # the window's Export: text as a picture
    with Image.open(tmp_path / "grid.png") as img:
        assert img.size[0] == 2 * 640 and img.size[1] > 6 * 2 * 18
    export_samples(checkpoint, "each", tmp_path / "each", 3, 0, 1)
    assert len(list((tmp_path / "each").glob("sample_*.png"))) == 3


SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher"]
VERBS = ["sees", "likes", "finds", "draws", "hears", "follows"]
OBJECTS = ["the moon", "a red apple", "the river", "a quiet song", "the city", "an open door"]


def write_corpus(path: Path, n=400, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_text_trains_and_is_scored_by_held_out_nll_and_bleu(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "lines.txt")
    sets = ["seqgan.source='text'", f"seqgan.text_file={str(corpus)!r}", "seqgan.vocab_size=100",
            "seqgan.seq_len=8", "seqgan.d_widths=[1, 2, 4]", "seqgan.d_filters=[8, 8, 8]", "seqgan.batch=32",
            "seqgan.mle_steps=150", "seqgan.d_pre_steps=10", "seqgan.rollouts=2", "seqgan.d_steps=1",
            "train.metrics_every=0"]
    args = [arg for item in sets for arg in ("--set", item)]
    assert cli(["train", "seqgan_oracle", "--steps", "166", "--out", str(tmp_path / "run"), *args]) == 0
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    capsys.readouterr()
    assert cli(["sample", str(checkpoint), "--n", "8"]) == 0
    words = {w for part in SUBJECTS + VERBS + OBJECTS for w in part.split()} | {"."}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all(set(line.split()) <= words | {"<unk>"} for line in lines)
    assert sum(line.endswith(".") for line in lines) >= 4  # the sentences' shape was learnt
    assert cli(["eval", str(checkpoint), "--n", "200"]) == 0
    values = dict(line.split() for line in capsys.readouterr().out.splitlines()[1:])
    assert float(values["nll_test"]) < 2.0  # far below log(vocabulary) = 3.4 for an untrained G
    assert float(values["bleu2"]) > 0.5 and float(values["bleu4"]) <= float(values["bleu2"])
    write_corpus(corpus, seed=1, n=50)  # another text: another vocabulary order
    corpus.write_text(corpus.read_text() + "zebras quietly juggle .\n" * 30)
    assert cli(["eval", str(checkpoint)]) == 2
    assert "vocab differs" in capsys.readouterr().err


def test_characters_are_tokens_too(tmp_path):
    corpus = write_corpus(tmp_path / "lines.txt")
    trainer, events = tiny("seqgan.source='text'", f"seqgan.text_file={str(corpus)!r}", "seqgan.tokens='char'",
                           "seqgan.seq_len=40", "seqgan.vocab_size=60")
    vocab = trainer.dataset.vocab
    assert vocab.level == "char" and {"a", "t", " ", "."} <= set(vocab.tokens)
    trainer.run(30)
    text = "".join(events.of(ev.Samples)[-1].text).replace("<unk>", "")
    assert " " in text and set(text) <= set(corpus.read_text())  # characters of the text, joined without spaces


def test_bleu_counts_clipped_ngrams():
    bleu = Bleu([["the", "cat", "sat"], ["a", "dog", "ran"]])
    assert bleu.sentence(["the", "cat", "sat"], 2) == pytest.approx(1.0)
    assert bleu.sentence(["the", "the", "the"], 2) < 0.2
    assert bleu.corpus([["the", "cat", "ran"]])["bleu2"] < 1.0


@pytest.mark.parametrize("content, sets, message", [
    (b"", [], "is empty"),
    (b"  \n\n \t\n", [], "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), [], "not a UTF-8 text file"),
    (None, [], "is not a file"),
    (("word " * 30 + "\n").encode() * 20, [], "No line of"),
    (("\n".join(f"w{i} w{i + 1} w{i + 2}" for i in range(0, 900, 3))).encode(), ["seqgan.vocab_size=50"],
     "raise seqgan.vocab_size to at least"),
    (b"a b c\n", ["seqgan.seq_len=0"], "seqgan.seq_len = 0 is not allowed"),
    (b"a b c\n", ["seqgan.d_widths=[1, 9]", "seqgan.d_filters=[4, 4]"], "longer than seqgan.seq_len = 8"),
    (b"a b c\n", ["seqgan.d_widths=[1, 2]", "seqgan.d_filters=[4]"], "one count per width"),
])
def test_bad_text_is_refused_in_one_sentence_and_nothing_starts(tmp_path, capsys, content, sets, message):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    items = [*TINY, "seqgan.source='text'", f"seqgan.text_file={str(path)!r}", *sets]
    args = [arg for item in items for arg in ("--set", item)]
    assert cli(["train", "seqgan_oracle", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.endswith(".")
    assert not (tmp_path / "run").exists()


def test_missing_fortunes_name_their_package(tmp_path, monkeypatch):
    monkeypatch.setattr(text_data, "FORTUNES", tmp_path / "none")
    config = load_preset("seqgan_fortunes")
    with pytest.raises(DataError, match="apt-get install fortunes"):
        text_data.make_text(config.seqgan)


def test_the_fortunes_are_the_built_in_text():
    config = load_preset("seqgan_fortunes")
    needs_fortunes(config)
    data = text_data.make_text(config.seqgan)
    assert len(data.train) > 3000 and len(data.held_out) > 300
    assert data.vocab.level == "word" and len(data.vocab) == 5000
    assert data.vocab.decode(data.train[0].tolist()).strip()


def test_seqgan_trains_in_the_window_with_a_text_preview(qtbot, tmp_path):
    """The window draws SeqGAN's curves and its text preview, marks the phases on the curves, and the
    number of rollouts changes while it trains."""
    pytest.importorskip("PySide6")
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings
    from engine.presets import to_toml, user_preset_dir
    from studio.window import MainWindow

    config = load_preset("seqgan_oracle", TINY + ["train.steps=100000", "train.sample_every=20"])
    config.name = "seqgan_tiny"
    user_preset_dir().mkdir(parents=True, exist_ok=True)
    (user_preset_dir() / "seqgan_tiny.toml").write_text(to_toml(config), encoding="utf-8")
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    window.close_policy = "save"
    qtbot.addWidget(window)
    window.show()
    window.select_preset("seqgan_tiny")
    assert window.form.widgets["seqgan.rollouts"].isVisibleTo(window.form)
    assert not window.form.widgets["seqgan.text_file"].isVisibleTo(window.form)  # oracle data: no file
    assert not window.form.widgets["loss.name"].isVisibleTo(window.form)
    with qtbot.waitSignal(window.bridge.phaseChanged, timeout=120_000,
                          check_params_cb=lambda e: e.new == "adversarial"):
        window.start_action.trigger()
    with qtbot.waitSignal(window.bridge.paramChanged, timeout=60_000):
        window.form.widgets["seqgan.rollouts"].setValue(2)
    with qtbot.waitSignal(window.bridge.metricsArrived, timeout=60_000,
                          check_params_cb=lambda ms: ms[-1].group == "train" and ms[-1].values.get("rollouts") == 2):
        pass
    with qtbot.waitSignal(window.bridge.samplesArrived, timeout=60_000) as blocker:
        pass
    assert blocker.args[0].kind == "text"
    with qtbot.waitSignal(window.bridge.finished, timeout=60_000):
        window.stop_action.trigger()
    latest = window.samples.latest
    qtbot.waitUntil(lambda: latest.text[0] in window.samples.current_text(), timeout=10_000)  # text, not a picture
    assert "background-color" in window.samples.text_view.toHtml()  # each token shaded by its reward
    window.samples.slider.setValue(0)  # scrubbing back shows the saved picture of an older snapshot
    assert window.samples.current_picture().shape[1] == 640
    window.curves.flush()
    texts = [text for _, text in window.curves.markers]
    assert texts[:2] == ["D pre-training", "adversarial"] and "rollouts 4→2" in texts
    assert {"pg_loss", "reward", "d_accuracy", "baseline_mle_loss"} <= set(window.curves.buffer.values)
    window.close()

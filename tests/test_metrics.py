"""Quality metrics against cases with known answers, live in the metrics stream, and from `gan-studio eval`."""
import itertools
import json
import shutil

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.cli import main as cli
from engine.data import synthetic
from engine.data.images import DEBIAN_FASHION_MNIST, load_idx_dataset
from engine.metrics import mixture_quality, painter_quality
from engine.metrics import evaluator as evaluator_module
from engine.metrics.images import class_histogram, frechet_distance, image_quality, precision_recall
from engine.metrics.matching import best_assignment, matched_accuracy
from engine.config import ConfigError
from engine.presets import load_preset
from helpers import BarReader, best_matched_accuracy, quick

HAVE_FASHION = (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()


@pytest.mark.parametrize("make", [synthetic.ring8, synthetic.grid25])
def test_real_mixture_samples_cover_every_mode(make):
    data = make()
    real, _ = data.sample(2500, torch.Generator().manual_seed(0))
    q = mixture_quality(real.numpy(), data.centres.numpy(), data.std)
    assert q["modes_captured"] == len(data.centres)
    assert q["high_quality"] > 0.98  # a 2-D Gaussian puts 1 − e^(−9/2) ≈ 98.9 % within 3σ


def test_a_generator_stuck_on_one_mode_captures_one():
    data = synthetic.ring8()
    one_mode = data.centres[3].numpy() + 0.01 * np.random.default_rng(0).standard_normal((2500, 2))
    q = mixture_quality(one_mode, data.centres.numpy(), data.std)
    assert q["modes_captured"] == 1 and q["high_quality"] == 1.0
    far = np.zeros((2500, 2))  # the centre of the ring is 2 away from every mode
    assert mixture_quality(far, data.centres.numpy(), data.std)["high_quality"] == 0.0


def test_painter_metrics_know_real_curves_from_flat_lines():
    real, _ = synthetic.PainterCurves().sample(1000, torch.Generator().manual_seed(0))
    good = painter_quality(real.numpy())
    assert good["valid_share"] == 1.0 and good["a_distance"] < 0.05 and good["fit_rmse"] < 1e-5
    flat = painter_quality(np.zeros((1000, 15)))
    assert flat["valid_share"] == 0.0 and flat["a_distance"] > 0.5


def test_hungarian_matching_is_optimal_and_accuracy_ignores_label_names():
    rng = np.random.default_rng(1)
    for _ in range(20):
        cost = rng.random((5, 5))
        match = best_assignment(cost)
        best = min(sum(cost[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
        assert cost[np.arange(5), match].sum() == pytest.approx(best)
    truth = rng.integers(0, 10, 2000)
    assert matched_accuracy(rng.permutation(10)[truth], truth) == 1.0
    assert matched_accuracy(rng.integers(0, 10, 2000), truth, 10) < 0.2


def test_frechet_and_precision_recall_on_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8))
    assert frechet_distance(a, b) < 0.3
    assert frechet_distance(a, b + 3.0) == pytest.approx(72.0, rel=0.1)  # |Δμ|² = 8·9
    precision, recall = precision_recall(a, b)
    assert precision > 0.8 and recall > 0.8
    narrow = 0.1 * rng.standard_normal((1000, 8))
    precision, recall = precision_recall(a, narrow)
    assert precision > 0.9 and recall < 0.3  # the classic collapse signature


def test_class_kl_raises_the_alarm_for_a_collapsed_generator():
    even = np.eye(10)[np.arange(1000) % 10]
    assert class_histogram(even) == {"class_coverage": 1.0, "class_kl": 0.0, "collapse_alarm": 0.0}
    collapsed = class_histogram(np.eye(10)[np.zeros(1000, dtype=int)])
    assert collapsed["class_kl"] == pytest.approx(np.log(10)) and collapsed["collapse_alarm"] == 1.0


@pytest.mark.skipif(not HAVE_FASHION, reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_evaluator_metrics_on_real_noise_and_one_class():
    card = json.loads(evaluator_module.CARD.read_text())
    assert card["test_accuracy"] > 0.85
    images, labels = load_idx_dataset("fashion_mnist", train=False)
    x = images.float() / 127.5 - 1
    real_vs_real = image_quality(x[:1000], x[1000:2000])
    real_vs_noise = image_quality(x[:1000], torch.rand(1000, 1, 28, 28) * 2 - 1)
    one_class = image_quality(x[:1000], x[2000:6000][labels[2000:6000] == 1][:1000])
    assert real_vs_real["frechet_distance"] < 20 < 20 * 20 < real_vs_noise["frechet_distance"]
    assert real_vs_real["precision"] > 0.8 and real_vs_real["recall"] > 0.8
    assert real_vs_real["collapse_alarm"] == 0.0 and one_class["collapse_alarm"] == 1.0
    assert one_class["recall"] < 0.3


def test_a_tampered_evaluator_is_refused(tmp_path, monkeypatch):
    weights = tmp_path / "evaluator_fashion_mnist.pt"
    shutil.copy(evaluator_module.WEIGHTS, weights)
    shutil.copy(evaluator_module.CARD, tmp_path / "evaluator_fashion_mnist.json")
    with open(weights, "ab") as handle:
        handle.write(b"x")
    monkeypatch.setattr(evaluator_module, "WEIGHTS", weights)
    monkeypatch.setattr(evaluator_module, "CARD", tmp_path / "evaluator_fashion_mnist.json")
    monkeypatch.setattr(evaluator_module, "_cached", None)
    with pytest.raises(evaluator_module.EvaluatorError, match="checksum"):
        evaluator_module.load_evaluator()


def test_quality_arrives_in_the_metrics_stream_and_the_run_log(tmp_path):
    trainer, events = quick("ring8", "metrics_every=50", run_dir=tmp_path / "run")
    trainer.run(150)
    quality = [e for e in events.of(ev.Metrics) if e.group == "quality"]
    assert [q.step for q in quality] == [50, 100, 150]
    assert set(quality[0].values) == {"modes_captured", "high_quality"}
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r.get("group") == "quality"] == [50, 100, 150]


def test_infogan_code_accuracy_is_measured_live(fake_fashion):
    trainer, events = quick("infogan_fashion", "metrics_every=5", "metrics_samples=200", "batch_size=16",
                            fake_dir=fake_fashion)
    trainer.run(5)
    quality = [e for e in events.of(ev.Metrics) if e.group == "quality"][0]
    # Q's first code on the probe's real images, matched to their classes here
    probe = trainer.quality.extras[0]
    d = trainer.nets["discriminator"].eval()
    with torch.no_grad():
        codes = d(probe.real).q[:, :10].argmax(1).numpy()
    expected = best_matched_accuracy(codes, probe.labels.numpy(), 10)
    assert quality.values["code_accuracy"] == pytest.approx(expected)


def test_infogan_reports_its_two_information_parts_and_weighs_the_continuous_one(fake_fashion):
    from engine import tricks
    trainer, events = quick("infogan_fashion", "metrics_every=0", "batch_size=16", "report_every=1",
                            "model.info_continuous=2", "model.info_continuous_weight=0.1", fake_dir=fake_fashion)
    trainer.run(1)
    values = events.of(ev.Metrics)[-1].values
    # D's −L_I, as trained: the categorical CE (between 0 and log 10 for one 10-way code) + 0.1 × ½ Σ (c − μ)²
    assert 0.0 <= values["info_categorical"] <= 2 * np.log(10) + 1
    assert values["info_continuous"] >= 0.0  # σ = 1: no log σ² to drive it below 0
    assert values["info_loss"] == pytest.approx(values["info_categorical"] + 0.1 * values["info_continuous"], rel=1e-5)
    q = torch.randn(4, 14)
    cat, cont = torch.tensor([[3], [1], [0], [9]]), torch.rand(4, 2) * 2 - 1
    parts = tricks.info_parts(q, [10], cat, cont)
    assert float(parts[1]) == pytest.approx(float(0.5 * ((cont - q[:, 10:12]) ** 2).sum(1).mean()))
    assert float(parts[0]) == pytest.approx(float(torch.nn.functional.cross_entropy(q[:, :10], cat[:, 0])))
    learned = tricks.info_parts(q, [10], cat, cont, learned_variance=True)[1]
    logvar = q[:, 12:14]
    assert float(learned) == pytest.approx(float(0.5 * (((cont - q[:, 10:12]) ** 2) * torch.exp(-logvar)
                                                        + logvar).sum(1).mean()))


def test_infogan_q_learns_continuous_variances_only_when_asked_and_old_runs_keep_theirs(fake_fashion, tmp_path):
    """σ = 1 (the authors' code): Q outputs a mean per continuous code. A checkpoint written before the setting
    existed learned log σ² as well, and loads that way."""
    from engine.checkpoint import load_checkpoint, save_checkpoint
    sets = ("metrics_every=0", "batch_size=8", "model.info_continuous=2")
    fixed, _ = quick("infogan_fashion", *sets, fake_dir=fake_fashion)
    learned, _ = quick("infogan_fashion", *sets, "model.info_learned_variance=true", "checkpoint_every=2",
                       fake_dir=fake_fashion, run_dir=tmp_path / "run")
    q_size = lambda t: t.algorithm.nets["discriminator"].q_head[-1].out_features
    assert (q_size(fixed), q_size(learned)) == (12, 14)
    learned.run(2)
    state = load_checkpoint(sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1])
    del state["config"]["model"]["info_learned_variance"]
    old = save_checkpoint(tmp_path / "old.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    again = load_checkpoint(old)
    assert again["config"]["model"]["info_learned_variance"] is True
    with pytest.raises(ConfigError, match=r"model\.info_learned_variance"):
        load_preset("infogan_fashion", ["model.info_continuous=0", "model.info_learned_variance=true"])


def test_code_accuracy_matches_codes_to_classes_on_the_held_out_split(fake_fashion, tmp_path):
    import shutil
    from engine.data import make_dataset
    from engine.metrics.live import CodeAccuracy
    from engine.presets import load_preset
    config = load_preset("infogan_fashion", [f"data.path={str(fake_fashion)!r}"])
    data = make_dataset(config)
    renamed = [(3 * c + 7) % 10 for c in range(10)]  # the codes know the classes, under other names
    knows = CodeAccuracy(BarReader(relabel=renamed), config, data, 10, 300)
    assert len(knows.labels) == 256  # the whole test split, not n training images
    assert knows.compute(knows.snapshot())["code_accuracy"] == 1.0
    constant = CodeAccuracy(BarReader(constant=4), config, data, 10, 300)
    share = np.bincount(constant.labels.numpy(), minlength=10).max() / 256  # the best a single code can match
    assert constant.compute(constant.snapshot())["code_accuracy"] == pytest.approx(share) and share < 0.2
    # the matching is the best one: a code that knows all but one class scores 9 classes' worth
    partly = CodeAccuracy(BarReader(relabel=[0, 1, 2, 3, 4, 5, 6, 7, 8, 8]), config, data, 10, 300)
    labels = partly.labels.numpy()
    assert partly.compute(partly.snapshot())["code_accuracy"] == pytest.approx(
        best_matched_accuracy(np.minimum(labels, 8), labels, 10))
    # a folder without the test split: n training images instead
    train_only = tmp_path / "train-only"
    shutil.copytree(fake_fashion, train_only)
    for f in train_only.glob("t10k-*"):
        f.unlink()
    config = load_preset("infogan_fashion", [f"data.path={str(train_only)!r}", "data.download=false"])
    fallback = CodeAccuracy(BarReader(relabel=renamed), config, make_dataset(config), 10, 300)
    assert len(fallback.labels) == 300 and fallback.compute(fallback.snapshot())["code_accuracy"] == 1.0


def printed_metrics(text):
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("  ")}


def test_eval_prints_the_metrics_of_a_checkpoint(tmp_path, capsys):
    from engine.metrics.live import QualityProbe
    trainer, _ = quick("ring8", "metrics_samples=500", "metrics_every=0", run_dir=tmp_path / "run")
    assert trainer.run(20) == "done"
    # what the trainer itself measures with these weights, with no checkpoint in between
    probe = QualityProbe(trainer)
    expected = probe.compute(probe.snapshot(trainer))
    capsys.readouterr()
    assert cli(["eval", str(tmp_path / "run" / "checkpoints" / "step_0000020.pt"), "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "step 20" in out and "500 samples" in out
    printed = printed_metrics(out)
    assert printed.keys() == expected.keys() == {"modes_captured", "high_quality"}
    for name, value in expected.items():
        assert printed[name] == pytest.approx(value, abs=5e-5), name  # printed to 4 decimals
    # a checkpoint with a known answer: a G that puts every sample on mode 3 captures one mode, all in 3σ
    stuck, _ = quick("ring8", run_dir=tmp_path / "stuck")
    for net in stuck.sampling_nets().values():  # the EMA copy, which samples, where there is one
        last = net.body[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(stuck.dataset.centres[3])
    stuck.save_checkpoint()
    assert cli(["eval", str(tmp_path / "stuck" / "checkpoints" / "step_0000000.pt"), "--n", "500"]) == 0
    assert printed_metrics(capsys.readouterr().out) == {"modes_captured": 1.0, "high_quality": 1.0}
    # and the untrained weights it came from do not score so
    assert cli(["eval", str(tmp_path / "run" / "checkpoints" / "step_0000000.pt"), "--n", "500"]) == 0
    assert printed_metrics(capsys.readouterr().out)["high_quality"] < 0.5

"""Triple-GAN: a classifier C, a class-conditional G and a D of (image, label) pairs; the losses are the
definitions, G takes the class picker's labels, C is scored beside a labels-only twin, resume is exact."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import events as ev
from engine.config import ConfigError
from engine.latent import draw_latent, latent_for
from engine.presets import load_preset
from helpers import quick, trained_parameters, unmoved_networks

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
NETS = {"generator", "discriminator", "classifier", "baseline"}


def small(fake_dir, *overrides, **kwargs):
    return quick("triplegan_fashion", "batch_size=16", "triplegan.unlabelled_batch=24", "metrics_every=0",
                 *overrides, fake_dir=fake_dir, **kwargs)


def test_the_preset_loads_and_trains_every_network(fake_fashion):
    config = load_preset("triplegan_fashion")
    assert config.algorithm == "triplegan" and config.data.dataset == "fashion_mnist"
    assert config.triplegan.labels_kept == 100 and config.triplegan.alpha == 0.5
    assert {"triplegan.alpha", "triplegan.alpha_p", "triplegan.lr_c"} <= set(config.live_keys())
    assert "data.labelled" not in {k for k in config.keys() if config.relevant(k)}  # its own labelled count
    trainer, events = small(fake_fashion, "report_every=2", "triplegan.pseudo_start=3")
    labels = trainer.dataset.labels[trainer.dataset.labelled_index]
    assert torch.bincount(labels, minlength=10).tolist() == [10] * 10  # 100 labels, 10 per class
    before = trained_parameters(trainer)
    assert set(before) == NETS
    assert trainer.opts["classifier"].param_groups[0]["lr"] == 3e-4  # C takes triplegan.lr_c, not lr_d
    assert trainer.run(6) == "done"
    assert unmoved_networks(trainer, before) == []
    metrics = [m for m in events.of(ev.Metrics) if m.group == "train"]
    assert [m.step for m in metrics] == [2, 4, 6]
    for m in metrics:
        assert all(np.isfinite(m.values[k]) for k in ("d_loss", "g_loss", "c_loss", "baseline_loss"))
    assert "pseudo_loss" not in metrics[0].values and "pseudo_loss" in metrics[-1].values  # R_P from step 3
    assert [(e.step, e.new) for e in events.of(ev.PhaseChanged)] == [(3, "C also learns from G's pairs (R_P)")]
    declared = trainer.declaration
    assert declared.steerable and set(declared.losses) == {"d_loss", "g_loss", "c_loss"}
    assert set(declared.quality_pairs) == {"test_accuracy", "baseline_accuracy"}  # the keys SGAN's probe uses


@pytest.mark.parametrize("non_saturating", [True, False])
def test_the_losses_are_the_definitions(fake_fashion, non_saturating):
    alpha, alpha_p = 0.3, 0.7
    trainer, _ = small(fake_fashion, f"triplegan.alpha={alpha}", f"triplegan.alpha_p={alpha_p}",
                       "triplegan.pseudo_start=0", f"triplegan.non_saturating={str(non_saturating).lower()}")
    algo = trainer.algorithm
    G0, D0, C0 = (copy.deepcopy(trainer.nets[n]) for n in ("generator", "discriminator", "classifier"))
    rng = torch.Generator().set_state(trainer.rng.get_state())
    out = algo.train_step(0, report=True)
    D1 = trainer.nets["discriminator"]  # D after its step: C and G step against it

    # the step's draws, in the documented order
    x_l, y_l = trainer.dataset.sample_labelled(16, rng)
    x_u, _ = trainer.dataset.sample(24, rng)
    latent = draw_latent(trainer.config.model, 16, rng, 10)
    y_g = latent.labels
    fake = G0(latent.z, None, y_g)

    def pair_logits(d, x):  # D's logit of (x, y) for every class y, one class at a time
        return torch.stack([d(x, torch.full((len(x),), y, dtype=torch.long)).logit for y in range(10)], 1)

    minus_log_1_minus_d = lambda d: -F.logsigmoid(-d)
    fool = (lambda d: -F.logsigmoid(d)) if non_saturating else (lambda d: F.logsigmoid(-d))
    with torch.no_grad():
        p = torch.softmax(C0(x_u).class_logits, 1)
        d_loss = (-F.logsigmoid(D0(x_l, y_l).logit).mean()
                  + alpha * (p * minus_log_1_minus_d(pair_logits(D0, x_u))).sum(1).mean()
                  + (1 - alpha) * minus_log_1_minus_d(D0(fake, y_g).logit).mean())
        on_c_pairs = fool(pair_logits(D1, x_u))
    p = torch.softmax(C0(x_u).class_logits, 1)
    c_loss = (F.cross_entropy(C0(x_l).class_logits, y_l) + alpha * (p * on_c_pairs).sum(1).mean()
              + alpha_p * F.cross_entropy(C0(fake.detach()).class_logits, y_g))
    g_loss = (1 - alpha) * fool(D1(fake, y_g).logit).mean()
    assert out["d_loss"].item() == pytest.approx(d_loss.item(), rel=1e-5)
    assert out["c_loss"].item() == pytest.approx(c_loss.item(), rel=1e-5)
    assert out["g_loss"].item() == pytest.approx(g_loss.item(), rel=1e-5)
    # what each network stepped on: C's gradient goes through p_c(y|x) (the expectation), not through G
    for name, net, loss in (("classifier", C0, c_loss), ("generator", G0, g_loss)):
        want = torch.autograd.grad(loss, list(net.parameters()))
        got = [q.grad for q in trainer.nets[name].parameters()]
        for a, b in zip(got, want):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


def test_the_generator_draws_the_class_it_is_asked_for(fake_fashion):
    trainer, _ = small(fake_fashion)
    trainer.run(3)
    assert trainer.algorithm.g_conditioned and trainer.algorithm.num_classes == 10

    def images(label, seed=7):  # the explorer's and `sample --label`'s path
        latent = latent_for(trainer, 4, seed, label=label)
        assert latent.labels.tolist() == [label] * 4
        with torch.no_grad():
            return trainer.generate(latent.as_dict()).clone()

    shots = [images(label) for label in range(10)]
    assert torch.equal(images(3), shots[3])  # same seed, same class: the same images
    for a in range(10):
        for b in range(a + 1, 10):
            assert (shots[a] - shots[b]).abs().mean() > 1e-4, (a, b)
    g = trainer.sampling_nets()["generator"]
    with torch.no_grad():  # G reads the label through its embedding: change class 3's row and only 3 changes
        g.embed.weight[3] += 1.0
    assert not torch.equal(images(3), shots[3])
    assert all(torch.equal(images(label), shots[label]) for label in (0, 5, 9))
    with pytest.raises(ConfigError, match="--label 10 is out of range"):
        latent_for(trainer, 1, 0, label=10)


def weights(trainer):
    modules = list(trainer.nets.values()) + list(trainer.ema.values())
    return torch.cat([t.detach().float().flatten() for m in modules for t in list(m.parameters()) + list(m.buffers())])


def test_resume_is_bit_identical(fake_fashion, tmp_path):
    sets = ("checkpoint_every=10", "triplegan.pseudo_start=14")  # R_P starts after the resume
    straight, _ = small(fake_fashion, *sets, run_dir=tmp_path / "a")
    straight.run(20)
    first, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b")
    first.run(10)
    resumed, _ = small(fake_fashion, *sets, run_dir=tmp_path / "b", resume=tmp_path / "b" / "checkpoints" / "step_0000010.pt")
    assert resumed.step == 10
    resumed.run(20)
    assert torch.equal(weights(straight), weights(resumed))


def test_the_live_probe_scores_c_beside_the_labels_only_twin(fake_fashion):
    trainer, events = small(fake_fashion, "metrics_every=4", "metrics_samples=64")
    trainer.run(4)
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    assert quality and {"test_accuracy", "baseline_accuracy"} <= set(quality[-1])
    assert all(0.0 <= quality[-1][k] <= 1.0 for k in ("test_accuracy", "baseline_accuracy"))


@pytest.mark.parametrize("override, key", [
    ("triplegan.alpha=1.5", r"triplegan\.alpha = 1\.5"),
    ("triplegan.alpha=-0.1", r"triplegan\.alpha = -0\.1"),
    ("triplegan.labels_kept=5", r"triplegan\.labels_kept = 5"),
    ("triplegan.lr_c=0", r"triplegan\.lr_c = 0"),
    ("model.conditional=true", r"model\.conditional"),
    ("data.labelled=50", r"data\.labelled"),
])
def test_bad_settings_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key) as caught:
        load_preset("triplegan_fashion", [override])
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")  # one sentence


@pytest.mark.parametrize("data", [["data.dataset='folder'", "data.path='/tmp'"],
                                  ["model.architecture='mlp'", "data.dataset='ring8'"]])
def test_data_without_labels_or_a_test_split_is_refused(data):
    with pytest.raises(ConfigError, match=r"labelled image data set.*data\.dataset = '(folder|ring8)'"):
        load_preset("triplegan_fashion", data)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_c_learns_fashion_mnist_from_100_labels():
    trainer, events = quick("triplegan_fashion", "metrics_every=100", "metrics_samples=2000")
    trainer.run(300)
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    accuracy = np.mean([q["test_accuracy"] for q in quality[-2:]])
    assert accuracy > 0.45, accuracy  # chance is 0.1


def test_live_settings_take_effect(fake_fashion):
    trainer, events = small(fake_fashion, "report_every=1", "triplegan.pseudo_start=0")
    opts = trainer.opts
    trainer.apply_set("lr_c", 1e-3)
    trainer.apply_set("lr_d", 5e-4)
    assert not events.of(ev.CommandRejected)
    assert [opts[n].param_groups[0]["lr"] for n in ("classifier", "baseline", "discriminator")] == [1e-3, 1e-3, 5e-4]
    trainer.apply_set("triplegan.alpha", 1.0)  # all of D's fake side is C's: G's loss is weighted 1 − α = 0
    trainer.apply_set("triplegan.alpha_p", 0.0)  # R_P off
    assert trainer.run(1) == "done"
    values = events.of(ev.Metrics)[-1].values
    assert values["g_loss"] == 0.0 and "pseudo_loss" not in values
    assert values["c_loss"] == pytest.approx(values["supervised_loss"] + values["adversarial_c"], rel=1e-6)


def test_d_input_noise_reaches_every_image_d_sees(fake_fashion, monkeypatch):
    trainer, events = small(fake_fashion)
    trainer.apply_set("triplegan.d_input_noise", 0.3)
    assert not events.of(ev.CommandRejected)
    seen = []
    D = trainer.nets["discriminator"]
    original = D.forward
    monkeypatch.setattr(D, "forward", lambda x, *a, **k: (seen.append(x.detach().clone()), original(x, *a, **k))[1])
    grid = torch.linspace(-1, 1, 256)  # real pixels sit on the uint8 grid (G's are off it anyway); noise leaves it
    assert trainer.run(1) == "done" and seen
    for x in seen:
        off_grid = (x.unsqueeze(-1) - grid).abs().min(-1).values > 1e-3
        assert off_grid.float().mean() > 0.5

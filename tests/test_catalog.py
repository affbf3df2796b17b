"""The rest of the catalog: each model or option does what it is for, on a CPU budget of seconds."""
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.config import ConfigError
from engine.presets import load_preset
from engine.models import MinibatchDiscrimination, layer_norms, lipschitz_bound
from helpers import generated, quick

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def small(name, fake_dir, *overrides, batch=16):
    """A preset on the small fake Fashion-MNIST, reporting every 10 steps, without quality metrics."""
    return quick(name, f"batch_size={batch}", "report_every=10", "metrics_every=0", *overrides, fake_dir=fake_dir)


def train_values(events, name):
    return [m.values[name] for m in events.of(ev.Metrics) if m.group == "train" and name in m.values]


def head_tail(values, n=3):
    return float(np.mean(values[:n])), float(np.mean(values[-n:]))


def test_began_keeps_k_in_range_and_convergence_falls(fake_fashion):
    trainer, events = small("began_fashion", fake_fashion, batch=32)
    trainer.run(150)
    k = train_values(events, "began_k")
    m = train_values(events, "convergence")
    assert len(k) == 15 and all(0.0 <= v <= 1.0 for v in k)
    assert max(k) > 0  # the control moved
    first, last = head_tail(m)
    assert last < 0.5 * first
    # γ is live: asking for more diversity is accepted between steps
    trainer.apply_set("gamma", 0.7)
    assert trainer.config.loss.began_gamma == 0.7 and events.of(ev.ParamChanged)[-1].name == "gamma"


def test_feature_matching_works_with_an_autoencoder_d(fake_fashion):
    trainer, events = small("began_fashion", fake_fashion, "feature_matching=true", batch=8)
    assert trainer.run(20) == "done"
    last = events.of(ev.Metrics)[-1].values
    assert np.isfinite(last["feature_matching"]) and 0.0 <= last["began_k"] <= 1.0


def test_ebgan_energy_separates_real_from_fake(fake_fashion):
    trainer, events = small("ebgan_fashion", fake_fashion, batch=32)
    trainer.run(300)
    real, fake = train_values(events, "energy_real"), train_values(events, "energy_fake")
    pull = train_values(events, "pullaway")
    assert head_tail(real)[1] < 0.5 * head_tail(real)[0]  # D learned to reconstruct the data
    assert np.mean(real[-3:]) < np.mean(fake[-3:])  # real data has the lower energy
    assert all(0.0 <= p <= 1.0 for p in pull) and len(pull) == 30


def test_loss_sensitive_margin_shrinks_as_g_improves(fake_fashion):
    trainer, events = small("loss_sensitive_fashion", fake_fashion, batch=32)
    trainer.run(200)
    margin = train_values(events, "ls_margin")
    violated = train_values(events, "ls_violated")
    assert head_tail(margin)[1] < 0.8 * head_tail(margin)[0]  # Δ(x, G(z)) falls as fakes approach data
    assert all(0.0 <= v <= 1.0 for v in violated)


def test_spectral_norm_holds_every_layer_at_norm_one(fake_fashion):
    norms = {}
    for name in ("sngan_fashion", "hinge_fashion", "wgan_clip_fashion"):
        trainer, events = small(name, fake_fashion, "lr_d=1e-3", "d_batchnorm=false")
        trainer.run(40)
        norms[name] = layer_norms(trainer.nets["discriminator"])
        if name != "hinge_fashion":  # reported live for the constrained critics
            bound = train_values(events, "d_lipschitz_bound")
            assert len(bound) == 4 and bound[-1] == pytest.approx(lipschitz_bound(trainer.nets["discriminator"]), rel=1e-3)
    assert all(0.95 < n < 1.05 for n in norms["sngan_fashion"])  # by construction, whatever D learned
    assert not all(0.95 < n < 1.05 for n in norms["hinge_fashion"])
    # clipping bounds each weight, not each layer: the layers' norms are set by the clip value and the shapes
    assert not all(0.95 < n < 1.05 for n in norms["wgan_clip_fashion"])


def test_improved_techniques_compose_with_label_smoothing(fake_fashion):
    trainer, events = small("improved_fashion", fake_fashion, "feature_layer=1")
    assert trainer.run(60) == "done"
    last = events.of(ev.Metrics)[-1].values
    for name in ("feature_matching", "historical_d", "historical_g", "minibatch_closeness", "d_real", "d_fake"):
        assert np.isfinite(last[name]), name
    # one-sided smoothing: D's target for real data is 0.9, so D(x) does not run to 1
    smooth = train_values(events, "d_real")
    plain, plain_events = small("dcgan_fashion", fake_fashion)
    plain.run(60)
    assert np.mean(smooth[-3:]) < np.mean(train_values(plain_events, "d_real")[-3:])
    assert np.mean(smooth[-3:]) < 0.93


def test_minibatch_discrimination_sees_a_collapsed_batch():
    layer = MinibatchDiscrimination(16, kernels=8, kernel_dim=5)
    torch.manual_seed(0)
    same = torch.randn(1, 16).repeat(10, 1)
    varied = torch.randn(10, 16) * 10
    collapsed = layer(same)[:, 16:]
    diverse = layer(varied)[:, 16:]
    assert torch.allclose(collapsed, torch.full_like(collapsed, 9.0))  # every other sample is identical
    assert diverse.max() < 1.0


def test_noise_annealing_narrows_d_early_and_then_fades(fake_fashion):
    noisy, noisy_events = small("noise_annealing_fashion", fake_fashion,
                                      "instance_noise_anneal_steps=60", "instance_noise=1.0")
    noisy.run(80)
    sigma = train_values(noisy_events, "instance_noise")
    assert sigma[0] == pytest.approx(1.0 * (1 - 10 / 60)) and sigma == sorted(sigma, reverse=True)
    assert sigma[-1] == 0.0
    clean, clean_events = small("dcgan_fashion", fake_fashion)
    clean.run(30)
    gap = lambda e: np.mean([r - f for r, f in zip(train_values(e, "d_real")[:3], train_values(e, "d_fake")[:3])])
    assert gap(noisy_events) < gap(clean_events)  # noise blurs the two distributions for D


def sharpness(images: np.ndarray) -> float:
    """Mean absolute Laplacian: edges and texture score high, blur scores low."""
    x = images[:, 0]
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.abs(lap).mean())


def test_vae_elbo_improves_and_its_samples_are_blurrier_than_the_data(fake_fashion):
    trainer, events = small("vae_fashion", fake_fashion, batch=32)
    trainer.run(200)
    loss = train_values(events, "g_loss")
    assert head_tail(loss)[1] < 0.5 * head_tail(loss)[0]
    assert "recon" in events.of(ev.Metrics)[-1].values and "kl" in events.of(ev.Metrics)[-1].values
    samples = generated(trainer, n=256)
    real = trainer.dataset.sample(256, torch.Generator().manual_seed(0))[0].numpy()
    assert sharpness(samples) < 0.5 * sharpness(real)
    assert samples.std(0).mean() > 0.05  # not one blurred mean image: z still matters


def test_semi_supervised_scores_both_classifiers_live(fake_fashion):
    trainer, events = quick("sgan_fashion", "batch_size=16", "metrics_every=20", "metrics_samples=100",
                            "labelled=30", fake_dir=fake_fashion)
    labels = trainer.dataset.labels[trainer.dataset.labelled_index]
    assert len(labels) == 30 and torch.bincount(labels, minlength=10).tolist() == [3] * 10
    trainer.run(40)
    quality = [m for m in events.of(ev.Metrics) if m.group == "quality"]
    assert [m.step for m in quality] == [20, 40]
    for m in quality:
        assert 0.0 <= m.values["test_accuracy"] <= 1.0 and 0.0 <= m.values["baseline_accuracy"] <= 1.0
    assert "supervised_loss" in events.of(ev.Metrics)[-2].values


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_semi_supervised_gan_beats_the_labels_only_classifier_on_100_labels():
    trainer, events = quick("sgan_fashion", "metrics_every=150", "metrics_samples=2000")
    trainer.run(600)
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    sgan = np.mean([q["test_accuracy"] for q in quality[-3:]])
    alone = np.mean([q["baseline_accuracy"] for q in quality[-3:]])
    assert sgan > alone + 0.01, (sgan, alone)


@pytest.mark.parametrize("override, key", [
    ("label_smoothing=0.1", "tricks.label_smoothing"),
    ("conditional=true", "model.conditional"),
    ("feature_layer=5", "tricks.feature_layer"),
])
def test_catalog_refuses_combinations_that_do_nothing(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_preset("began_fashion", [override])


def test_vae_refuses_discriminator_tricks():
    with pytest.raises(ConfigError, match=r"model\.spectral_norm.*'vae'"):
        load_preset("vae_fashion", ["spectral_norm=true"])
    with pytest.raises(ConfigError, match=r"model\.semi_supervised needs a labelled image data set"):
        load_preset("ring8", ["semi_supervised=true"])


def test_virtual_batch_norm_makes_a_sample_independent_of_its_batch_mates(fake_fashion):
    outputs = {}
    for vbn in (False, True):
        trainer, _ = small("improved_fashion", fake_fashion, f"virtual_batchnorm={str(vbn).lower()}")
        trainer.run(5)
        g = trainer.nets["generator"].train()  # training mode: plain batch norm uses the batch's own statistics
        z = torch.randn(8, trainer.config.model.noise_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            together = g(z)[:1]
            alone = g(z[:1].repeat(2, 1))[:1]
        outputs[vbn] = (together - alone).abs().max().item()
    assert outputs[True] < 1e-5 < outputs[False]

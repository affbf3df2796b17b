"""The rest of the catalog: each model or option does what it is for, on a CPU budget of seconds."""
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import events as ev
from engine.config import ConfigError
from engine.presets import load_preset
from engine.models import MinibatchDiscrimination
from engine.data import make_test_set
from helpers import BarReader, generated, quick

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def small(name, fake_dir, *overrides, batch=16):
    """A preset on the small fake Fashion-MNIST, reporting every 10 steps, without quality metrics."""
    return quick(name, f"batch_size={batch}", "report_every=10", "metrics_every=0", *overrides, fake_dir=fake_dir)


def train_values(events, name):
    return [m.values[name] for m in events.of(ev.Metrics) if m.group == "train" and name in m.values]


def head_tail(values, n=3):
    return float(np.mean(values[:n])), float(np.mean(values[-n:]))


def check_began_updates(k, real, fake, gamma, lambda_k, k_before):
    """Each step's logged k_t against k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1), from the logged energies."""
    for k_now, r, f in zip(k, real, fake):
        assert k_now == pytest.approx(min(1.0, max(0.0, k_before + lambda_k * (gamma * r - f))), abs=1e-12)
        k_before = k_now
    return k_before


def test_began_k_follows_its_control_law_and_gamma_steers_it(fake_fashion):
    trainer, events = small("began_fashion", fake_fashion, "report_every=1", "grad_norms=false", batch=32)
    lambda_k, gamma = trainer.config.loss.began_lambda_k, trainer.config.loss.began_gamma
    trainer.algorithm.loss_ctx.state["k"] = 0.05  # off its floor, so that each step's update shows
    trainer.run(60)
    k = train_values(events, "began_k")
    real, fake = train_values(events, "energy_real"), train_values(events, "energy_fake")
    m = train_values(events, "convergence")
    assert len(k) == len(real) == len(fake) == 60
    k_now = check_began_updates(k, real, fake, gamma, lambda_k, 0.05)
    assert k_now > 0 and len(set(k)) > 30  # the control moved, step after step
    for r, f, m_t in zip(real, fake, m):  # M = L(x) + |γ L(x) − L(G(z))|
        assert m_t == pytest.approx(r + abs(gamma * r - f), abs=1e-12)
    first, last = head_tail(m, 10)
    assert last < first
    # γ is live: asking for more diversity changes the balance k_t is steered by from the next step on
    trainer.apply_set("gamma", 0.9)
    assert trainer.config.loss.began_gamma == 0.9 and events.of(ev.ParamChanged)[-1].name == "gamma"
    trainer.run(75)
    k2 = train_values(events, "began_k")[60:]
    real2, fake2 = train_values(events, "energy_real")[60:], train_values(events, "energy_fake")[60:]
    assert len(k2) == 15 and min(k2) > 0
    check_began_updates(k2, real2, fake2, 0.9, lambda_k, k_now)
    with pytest.raises(AssertionError):  # the old γ does not explain the new steps
        check_began_updates(k2, real2, fake2, gamma, lambda_k, k_now)


def test_feature_matching_works_with_an_autoencoder_d(fake_fashion, monkeypatch):
    from engine import tricks
    seen = []
    original = tricks.feature_matching

    def spy(target, mine):
        out = original(target, mine)
        seen.append((target.detach().clone(), mine.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(tricks, "feature_matching", spy)
    trainer, events = small("began_fashion", fake_fashion, "feature_matching=true", "report_every=5", batch=8)
    assert trainer.run(20) == "done"
    assert len(seen) == 20
    code_dim = trainer.config.model.ae_code_dim
    for target, mine, out in seen:  # ‖E f(x) − E f(G(z))‖², f = D's code, computed here on the same batches
        assert target.shape == mine.shape == (8, code_dim)
        assert out.item() == pytest.approx(((target.mean(0) - mine.mean(0)) ** 2).mean().item(), rel=1e-5)
    reports = [m.values for m in events.of(ev.Metrics) if m.group == "train"]
    assert len(reports) == 4
    for values in reports:  # and it is what G minimises (BEGAN's own G loss is replaced)
        assert values["g_loss"] == values["feature_matching"]
        assert 0.0 <= values["began_k"] <= 1.0
    assert reports[-1]["feature_matching"] == pytest.approx(seen[-1][2].item())


def test_pull_away_term_is_the_mean_squared_cosine_of_distinct_pairs():
    from engine.tricks import pull_away
    assert pull_away(torch.eye(4)).item() == pytest.approx(0.0, abs=1e-7)  # orthogonal codes
    assert pull_away(torch.ones(5, 3) * 2.0).item() == pytest.approx(1.0)  # one code repeated
    batch = torch.randn(6, 2, 4, generator=torch.Generator().manual_seed(0))
    flat = batch.flatten(1)
    pairs = [(float(flat[i] @ flat[j]) / (float(flat[i].norm()) * float(flat[j].norm()))) ** 2
             for i in range(6) for j in range(6) if i != j]
    assert pull_away(batch).item() == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)


def test_ebgan_energy_separates_real_from_fake(fake_fashion, monkeypatch):
    from engine import tricks
    codes = []
    original = tricks.pull_away

    def spy(features):
        out = original(features)
        codes.append((features.detach().clone(), out.item()))
        return out

    monkeypatch.setattr(tricks, "pull_away", spy)
    trainer, events = small("ebgan_fashion", fake_fashion, batch=32)
    trainer.run(300)
    real, fake = train_values(events, "energy_real"), train_values(events, "energy_fake")
    pull = train_values(events, "pullaway")
    assert head_tail(real)[1] < 0.5 * head_tail(real)[0]  # D learned to reconstruct the data
    assert np.mean(real[-3:]) < np.mean(fake[-3:])  # real data has the lower energy
    assert len(pull) == 30 and len(codes) == 300
    for features, value in codes[:20]:  # the term on G's batches of codes (before they align), from its definition
        s = F.normalize(features.double().flatten(1), dim=1)
        cos2 = (s @ s.t()) ** 2
        n = len(s)
        assert value == pytest.approx(float((cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))), rel=1e-5)
    assert pull[-1] == pytest.approx(codes[-1][1], rel=1e-6)


def check_loss_sensitive(call):
    """One D step of the loss-sensitive GAN against its definition, computed here from the step's own batches:
    Δ = scale · mean |x − G(z)| per pair, L = softplus(D), loss = w E L(x) + λ E (Δ + L(x) − L(G(z)))₊."""
    s = call["settings"]
    delta = s.ls_delta_scale * (call["real_x"] - call["fake_x"]).abs().flatten(1).mean(1)
    l_real, l_fake = F.softplus(call["real"]), F.softplus(call["fake"])
    violation = torch.clamp(delta + l_real - l_fake, min=0)
    assert call["report"]["ls_margin"].item() == pytest.approx(delta.mean().item(), rel=1e-5)
    assert call["report"]["ls_violated"].item() == pytest.approx((violation > 0).float().mean().item())
    expected = s.ls_real_weight * l_real.mean() + s.ls_lambda * violation.mean()
    assert call["out"].item() == pytest.approx(expected.item(), rel=1e-5)
    return delta.mean().item()


def test_loss_sensitive_margin_shrinks_as_g_improves(fake_fashion):
    trainer, events = small("loss_sensitive_fashion", fake_fashion, batch=32)
    calls = spy_on_d_loss(trainer)
    trainer.run(200)
    margin = train_values(events, "ls_margin")
    k = trainer.config.train.discriminator_steps
    assert len(calls) == 200 * k
    for call in calls[::20]:
        check_loss_sensitive(call)
    assert head_tail(margin)[1] < 0.93 * head_tail(margin)[0]  # Δ(x, G(z)) falls as fakes approach data
    assert margin[-1] == pytest.approx(calls[-1]["report"]["ls_margin"].item())
    # the scale of Δ and the weight λ are live: the next D steps use them
    trainer.apply_set("ls_delta_scale", 2.0)
    trainer.apply_set("ls_lambda", 0.5)
    trainer.apply_set("ls_real_weight", 0.3)
    trainer.run(202)
    for call in calls[-2 * k:]:
        assert (call["settings"].ls_delta_scale, call["settings"].ls_lambda) == (2.0, 0.5)
        assert call["settings"].ls_real_weight == 0.3
        plain = (call["real_x"] - call["fake_x"]).abs().flatten(1).mean(1).mean().item()
        assert check_loss_sensitive(call) == pytest.approx(2.0 * plain, rel=1e-5)


def singular_values(module) -> list[float]:
    """The largest singular value of each linear / convolution layer's effective weight (the one the forward
    pass uses, after any parametrisation), from a full SVD rather than a power iteration."""
    was_training = module.training
    module.eval()  # reading the weight in eval mode leaves spectral norm's power-iteration state alone
    try:
        return [float(torch.linalg.svdvals(layer.weight.detach().double().flatten(1))[0])
                for layer in module.modules() if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d))]
    finally:
        module.train(was_training)


def test_spectral_norm_holds_every_layer_at_norm_one(fake_fashion):
    norms = {}
    for name in ("sngan_fashion", "hinge_fashion", "wgan_clip_fashion"):
        trainer, events = small(name, fake_fashion, "lr_d=1e-3", "d_batchnorm=false")
        trainer.run(40)
        d = trainer.nets["discriminator"]
        norms[name] = singular_values(d)
        assert len(norms[name]) >= 3
        if name != "hinge_fashion":  # reported live for the constrained critics: the product of the layers' norms
            bound = train_values(events, "d_lipschitz_bound")
            assert len(bound) == 4 and bound[-1] == pytest.approx(math.prod(norms[name]), rel=1e-3)
    assert all(abs(n - 1.0) < 0.05 for n in norms["sngan_fashion"]), norms["sngan_fashion"]
    assert not all(abs(n - 1.0) < 0.05 for n in norms["hinge_fashion"])
    # clipping bounds each weight, not each layer: the layers' norms are set by the clip value and the shapes
    assert not all(abs(n - 1.0) < 0.05 for n in norms["wgan_clip_fashion"])


def spy_on_d_loss(trainer):
    """Wrap the run's D loss; each call's inputs, settings, output and report are kept in the returned list."""
    calls = []
    original = trainer.algorithm.loss.d_loss

    def d_loss(real, fake, target, ctx):
        out = original(real, fake, target, ctx)
        calls.append({"real": real.detach().clone(), "fake": fake.detach().clone(), "target": target,
                      "out": out.detach().clone(), "real_x": None if ctx.real_x is None else ctx.real_x.clone(),
                      "fake_x": None if ctx.fake_x is None else ctx.fake_x.clone(), "report": dict(ctx.report),
                      "settings": dataclasses.replace(ctx.settings)})
        return out

    trainer.algorithm.loss = dataclasses.replace(trainer.algorithm.loss, d_loss=d_loss)
    return calls


def test_improved_techniques_compose_with_label_smoothing(fake_fashion):
    trainer, events = small("improved_fashion", fake_fashion, "feature_layer=1")
    calls = spy_on_d_loss(trainer)
    assert trainer.run(60) == "done"
    last = events.of(ev.Metrics)[-1].values
    for name in ("feature_matching", "historical_d", "historical_g", "minibatch_closeness", "d_real", "d_fake"):
        assert np.isfinite(last[name]), name
    # one-sided smoothing: D's target for real data is 1 − 0.1, for fakes still 0
    assert len(calls) == 60 and {c["target"] for c in calls} == {0.9}
    for c in calls[::10]:
        expected = (F.binary_cross_entropy_with_logits(c["real"], torch.full_like(c["real"], 0.9))
                    + F.binary_cross_entropy_with_logits(c["fake"], torch.zeros_like(c["fake"])))
        assert c["out"].item() == pytest.approx(expected.item(), rel=1e-5)
    # so D(x) does not run to 1: the same model and seed without smoothing puts D(x) higher
    plain, plain_events = small("improved_fashion", fake_fashion, "feature_layer=1", "label_smoothing=0")
    plain_calls = spy_on_d_loss(plain)
    plain.run(60)
    assert {c["target"] for c in plain_calls} == {1.0}
    smooth, unsmoothed = train_values(events, "d_real"), train_values(plain_events, "d_real")
    assert np.mean(smooth[-3:]) < np.mean(unsmoothed[-3:]) - 0.01, (smooth, unsmoothed)


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
    trainer, events = quick("sgan_fashion", "batch_size=16", "metrics_every=20", "metrics_samples=256",
                            "labelled=30", fake_dir=fake_fashion)
    labels = trainer.dataset.labels[trainer.dataset.labelled_index]
    assert len(labels) == 30 and torch.bincount(labels, minlength=10).tolist() == [3] * 10
    trainer.run(40)
    quality = [m for m in events.of(ev.Metrics) if m.group == "quality"]
    assert [m.step for m in quality] == [20, 40]
    assert "supervised_loss" in events.of(ev.Metrics)[-2].values
    # the last measurement is of the final weights: score both nets here on the whole held-out split
    test = make_test_set(trainer.config)
    images, truth = test.scaled(torch.arange(len(test))), test.labels
    assert len(truth) == 256
    for name, net in (("test_accuracy", "discriminator"), ("baseline_accuracy", "baseline")):
        model = trainer.nets[net].eval()
        with torch.no_grad():
            mine = (model(images).class_logits.argmax(1) == truth).float().mean().item()
        assert quality[-1].values[name] == pytest.approx(mine, abs=1e-6), name


def test_classifier_accuracy_scores_a_knowing_and_a_constant_head(fake_fashion):
    from engine.metrics.live import ClassifierAccuracy
    config = load_preset("sgan_fashion", [f"data.path={str(fake_fashion)!r}"])
    probe = ClassifierAccuracy({"knows": BarReader(), "renamed": BarReader(relabel=[(c + 1) % 10 for c in range(10)]),
                                "constant": BarReader(constant=3)}, config, 200)
    values = probe.compute(probe.snapshot())
    assert values["knows"] == 1.0
    assert values["renamed"] == 0.0  # a classifier is scored on the labels' own names
    share = (probe.labels == 3).float().mean().item()
    assert values["constant"] == pytest.approx(share) and 0.03 < share < 0.2  # about 1 in 10


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_semi_supervised_gan_beats_the_labels_only_classifier_on_100_labels():
    trainer, events = quick("sgan_fashion", "metrics_every=150", "metrics_samples=2000")
    trainer.run(900)
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    sgan = np.mean([q["test_accuracy"] for q in quality[-3:]])
    alone = np.mean([q["baseline_accuracy"] for q in quality[-3:]])
    assert sgan > alone + 0.01, (sgan, alone)


def test_began_generator_is_shaped_like_its_decoder(fake_fashion):
    """Berthelot et al.: G has D's decoder's architecture, no batch norm and no tanh on either; the preset puts a
    fully-connected layer (model.g_fc) before it."""
    trainer, _ = small("began_fashion", fake_fashion)
    G, D = trainer.algorithm.nets["generator"], trainer.algorithm.nets["discriminator"]
    kinds = lambda net: [type(m).__name__ for m in net]
    assert kinds(G.body) == ["Linear", "ELU"] + kinds(D.decoder)
    assert G.body[0].out_features == 1024
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Tanh)) for m in G.modules())
    # the paper's upsampling: nearest neighbour then a 3×3 convolution, in G and the decoder alike
    assert isinstance(D.decoder[-2], torch.nn.Upsample) and D.decoder[-1].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    ebgan, _ = small("ebgan_fashion", fake_fashion)  # EBGAN keeps its DCGAN generator
    assert isinstance(ebgan.algorithm.nets["generator"].body[-1], torch.nn.Tanh)
    assert isinstance(ebgan.algorithm.nets["generator"].body[-2], torch.nn.ConvTranspose2d)


def test_nearest_upsampling_builds_a_dcgan_generator_that_trains(fake_fashion):
    """model.upsample = nearest swaps every transposed convolution of G for upsampling and a 3×3 convolution;
    an MLP has no feature maps to upsample, and the setting is refused there with its key named."""
    trainer, events = small("dcgan_fashion", fake_fashion, "upsample=nearest", "report_every=1")
    G = trainer.algorithm.nets["generator"]
    assert sum(isinstance(m, torch.nn.Upsample) for m in G.modules()) == 2
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    trainer.run(3)
    assert all(np.isfinite(train_values(events, "g_loss")))
    with torch.no_grad():
        assert trainer.generate(trainer.algorithm.random_inputs(4, torch.Generator())).shape == (4, 1, 28, 28)
    with pytest.raises(ConfigError, match=r"model\.upsample"):
        load_preset("ring8", ["upsample=nearest"])


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_began_k_rises_on_fashion_mnist():
    """With a tanh-ended G and decoder, G's samples never cost under γ L(x) and k_t stayed at 0 (a flat image)."""
    trainer, events = quick("began_fashion", "metrics_every=0", "report_every=50")
    trainer.run(1000)
    k = train_values(events, "began_k")
    assert k[-1] > 0.002, k[-5:]


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_loss_sensitive_margin_is_met_by_a_growing_share_on_fashion_mnist():
    """Weighing E L(x) pushed L = softplus(D) into its flat end for real and fake alike: every pair stayed in
    violation and G's gradient vanished."""
    trainer, events = quick("loss_sensitive_fashion", "metrics_every=0", "report_every=25")
    trainer.run(1500)
    violated = train_values(events, "ls_violated")
    assert np.mean(violated[-20:]) < 0.7, violated[-20:]
    assert train_values(events, "grad_norm_g")[-1] > 1e-3


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

"""The Bad GAN family (engine.algorithms.badgan): its preset trains, every term is what its definition says,
a weight of 0 takes exactly its term out, resume is exact, bad settings are refused."""
import copy
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.algorithms.badgan import PixelDensity, conditional_entropy
from engine.config import Config, ConfigError
from engine.presets import load_preset, to_toml
from engine.sampler import load_sampler
from helpers import quick, trained_parameters, unmoved_networks

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
TERMS = ("supervised_loss", "unsupervised_loss", "d_entropy", "feature_matching", "pullaway", "low_density",
         "log_density_fake", "baseline_loss")


def small(fake_fashion, *overrides):
    return quick("badgan_fashion", "batch_size=16", "report_every=2", "metrics_every=0", "density_images=200",
                 *overrides, fake_dir=fake_fashion)


def test_the_preset_trains_every_network_and_scores_d_beside_the_labels_only_net(fake_fashion):
    trainer, events = quick("badgan_fashion", "batch_size=16", "report_every=2", "metrics_every=4",
                            "metrics_samples=64", "density_images=200", fake_dir=fake_fashion)
    labels = trainer.dataset.labels[trainer.dataset.labelled_index]
    assert torch.bincount(labels, minlength=10).tolist() == [10] * 10  # 100 labels, 10 per class
    assert set(trainer.opts) == {"generator", "discriminator", "baseline"}
    before = trained_parameters(trainer)
    assert trainer.run(4) == "done"
    assert unmoved_networks(trainer, before) == []
    train = [m.values for m in events.of(ev.Metrics) if m.group == "train"]
    for name in TERMS + ("d_loss", "g_loss", "d_real", "d_fake", "above_epsilon"):
        assert name in train[-1] and np.isfinite(train[-1][name]), name
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    assert quality and {"test_accuracy", "baseline_accuracy"} <= set(quality[-1])
    declared = trainer.declaration
    assert set(declared.quality_pairs) == {"test_accuracy", "baseline_accuracy"}
    assert set(TERMS) <= set(declared.terms)
    assert {"badgan.d_entropy_weight", "badgan.g_pullaway_weight", "badgan.low_density_weight",
            "badgan.low_density_quantile"} <= set(declared.controls)
    trainer.apply_set("d_entropy", 0.5)  # a live weight reaches the family
    assert trainer.algorithm.config.badgan.d_entropy_weight == 0.5


def entropy_by_definition(logits):
    out = []
    for row in logits.double().tolist():
        top = max(row)
        z = sum(math.exp(v - top) for v in row)
        p = [math.exp(v - top) / z for v in row]
        out.append(-sum(q * math.log(q) for q in p if q > 0))
    return sum(out) / len(out)


def test_conditional_entropy_is_the_entropy_of_the_class_softmax():
    logits = torch.randn(7, 10, generator=torch.Generator().manual_seed(1)) * 3
    assert conditional_entropy(logits).item() == pytest.approx(entropy_by_definition(logits), rel=1e-5)
    assert conditional_entropy(torch.zeros(3, 10)).item() == pytest.approx(math.log(10), rel=1e-6)
    sure = torch.full((2, 10), -30.0)
    sure[:, 4] = 30.0
    assert conditional_entropy(sure).item() < 1e-6


def test_pixel_density_is_probabilistic_pca():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 1, 2, 3, generator=gen) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.4, 0.3]).view(1, 1, 2, 3)
    density = PixelDensity(x, 2, "cpu")
    flat = x.flatten(1).double()
    cov = torch.cov(flat.t(), correction=0)
    eig = torch.linalg.eigvalsh(cov).flip(0)
    assert density.variances.double() == pytest.approx(eig[:2], rel=1e-4)
    assert density.sigma2 == pytest.approx(eig[2:].mean().item(), rel=1e-4)
    u = density.basis.double()
    full = u @ torch.diag(density.variances.double()) @ u.t() + density.sigma2 * (torch.eye(6) - u @ u.t())
    mvn = torch.distributions.MultivariateNormal(flat.mean(0), covariance_matrix=full)
    probe = torch.randn(5, 1, 2, 3, generator=gen) * 2
    assert density.log_prob(probe).double() == pytest.approx(mvn.log_prob(probe.flatten(1).double()) / 6, rel=1e-4)
    real = mvn.log_prob(flat) / 6  # log ε is a quantile of the fitted images' own log p
    assert density.threshold(0.1) == pytest.approx(torch.sort(real).values[int(0.1 * 399)].item(), rel=1e-4)


def test_the_pixel_density_finds_real_images_likelier_than_noise(fake_fashion):
    trainer, _ = small(fake_fashion)
    density = trainer.algorithm.density
    real, _ = trainer.dataset.sample(64, torch.Generator().manual_seed(3))
    noise = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(4)) * 2 - 1
    assert density.log_prob(real).min() > density.log_prob(noise).max()


def step_with_replay(trainer, low_eps=None):
    """One train_step, and everything needed to compute its terms again: the nets before and after, the draws."""
    alg = trainer.algorithm
    if low_eps is not None:  # pretend ε is low, so G's first, unlikely samples are already over it
        alg.density.threshold = lambda quantile: low_eps
    g0, d0 = copy.deepcopy(alg.nets["generator"]), copy.deepcopy(alg.nets["discriminator"])
    state = alg.rng.get_state()
    values = {k: float(v) for k, v in alg.train_step(0, report=True).items()}
    rng = torch.Generator().set_state(state)
    batch = trainer.config.data.batch_size
    x_u, _ = trainer.dataset.sample(batch, rng)
    x_l, y_l = trainer.dataset.sample_labelled(batch, rng)
    z_d, z_g = alg.latent(batch, rng).z, alg.latent(batch, rng).z
    return values, g0, d0, alg.nets["discriminator"], (x_u, x_l, y_l, z_d, z_g)


def test_each_term_of_a_step_is_its_definition_on_that_steps_batch(fake_fashion):
    trainer, _ = small(fake_fashion)
    s = trainer.config.badgan
    values, g0, d0, d1, (x_u, x_l, y_l, z_d, z_g) = step_with_replay(trainer, low_eps=-200.0)
    with torch.no_grad():
        # D's side, with D and G as they were before the step
        lse = lambda logits: torch.log(torch.exp(logits.double()).sum(1))
        logits_u = d0(x_u).class_logits
        log_sm = lambda logits: logits.double() - lse(logits)[:, None]
        supervised = -log_sm(d0(x_l).class_logits)[torch.arange(len(y_l)), y_l].mean()
        real, fake = lse(logits_u), lse(d0(g0(z_d)).class_logits)
        sigmoid = lambda t: 1 / (1 + torch.exp(-t))
        unsupervised = -torch.log(sigmoid(real)).mean() - torch.log(1 - sigmoid(fake)).mean()
        entropy = entropy_by_definition(logits_u)
        # G's side: G before its step, D after its own
        images = g0(z_g)
        f_real, f_fake = d1.trunk(x_u).double(), d1.trunk(images).double()
        matched = ((f_real.mean(0) - f_fake.mean(0)) ** 2).mean()
        n = len(f_fake)
        pairs = [(torch.dot(f_fake[i], f_fake[j]) / f_fake[i].norm() / f_fake[j].norm()) ** 2
                 for i in range(n) for j in range(n) if i != j]
        pullaway = sum(pairs) / (n * (n - 1))
        density = trainer.algorithm.density
        r = images.flatten(1).double() - density.mean.double()
        u, lam = density.basis.double(), density.variances.double()
        full = u @ torch.diag(lam) @ u.t() + density.sigma2 * (torch.eye(784, dtype=torch.float64) - u @ u.t())
        inverse = torch.linalg.inv(full)
        maha = ((r @ inverse) * r).sum(1)
        log_p = -0.5 * (784 * math.log(2 * math.pi) + torch.logdet(full) + maha) / 784
        low = torch.clamp(log_p + 200.0, min=0).mean()
    assert values["supervised_loss"] == pytest.approx(supervised.item(), rel=1e-4)
    assert values["unsupervised_loss"] == pytest.approx(unsupervised.item(), rel=1e-4)
    assert values["d_entropy"] == pytest.approx(entropy, rel=1e-4)
    assert values["feature_matching"] == pytest.approx(matched.item(), rel=1e-3)
    assert values["pullaway"] == pytest.approx(pullaway.item(), rel=1e-3)
    assert values["log_density_fake"] == pytest.approx(log_p.mean().item(), rel=1e-4)
    assert values["low_density"] == pytest.approx(low.item(), rel=1e-4) and low > 0
    assert values["d_loss"] == pytest.approx(supervised.item() + unsupervised.item() + s.d_entropy_weight * entropy,
                                             rel=1e-4)
    assert values["g_loss"] == pytest.approx(matched.item() + s.g_pullaway_weight * pullaway.item()
                                             + s.low_density_weight * low.item(), rel=1e-3)


@pytest.mark.parametrize("key, loss, term", [("d_entropy_weight", "d_loss", "d_entropy"),
                                             ("g_pullaway_weight", "g_loss", "pullaway"),
                                             ("low_density_weight", "g_loss", "low_density")])
def test_a_weight_of_zero_takes_exactly_its_term_out_of_the_loss(fake_fashion, key, loss, term):
    on, _ = small(fake_fashion, f"badgan.{key}=0.7")
    off, _ = small(fake_fashion, f"badgan.{key}=0")
    with_term, without = step_with_replay(on, low_eps=-200.0)[0], step_with_replay(off, low_eps=-200.0)[0]
    assert with_term[term] > 0 and with_term[term] == pytest.approx(without[term], rel=1e-6)  # the same batch
    assert with_term[loss] - without[loss] == pytest.approx(0.7 * with_term[term], rel=1e-4, abs=1e-6)


def weights(trainer):
    modules = list(trainer.nets.values()) + list(trainer.ema.values())
    return torch.cat([t.detach().float().flatten() for m in modules for t in list(m.parameters()) + list(m.buffers())])


def test_resume_is_bit_identical(fake_fashion, tmp_path):
    sets = ("batch_size=16", "checkpoint_every=5", "metrics_every=0", "density_images=200", "ema_decay=0.9")
    straight, _ = quick("badgan_fashion", *sets, fake_dir=fake_fashion, run_dir=tmp_path / "a")
    straight.run(10)
    first, _ = quick("badgan_fashion", *sets, fake_dir=fake_fashion, run_dir=tmp_path / "b")
    first.run(5)
    resumed, _ = quick("badgan_fashion", *sets, fake_dir=fake_fashion, run_dir=tmp_path / "b",
                       resume=tmp_path / "b" / "checkpoints" / "step_0000005.pt")
    assert resumed.step == 5
    resumed.run(10)
    assert torch.equal(weights(straight), weights(resumed))
    sampler = load_sampler(tmp_path / "b" / "checkpoints" / "step_0000010.pt")  # G alone, no data, no density
    inputs = sampler.algorithm.random_inputs(4, torch.Generator().manual_seed(0))
    assert tuple(sampler.generate(inputs).shape) == (4, 1, 28, 28)


def test_the_preset_round_trips_and_every_live_setting_takes_effect(fake_fashion):
    config = load_preset("badgan_fashion")
    assert Config.from_dict(tomllib.loads(to_toml(config))) == config
    trainer, events = small(fake_fashion)
    for key in trainer.config.live_keys():
        value = trainer.config.get(key)
        new = [v * 0.9 for v in value] if isinstance(value, list) else value * 0.5
        trainer.apply_set(key, new)
        assert not events.of(ev.CommandRejected) and trainer.algorithm.config.get(key) == new, key
    assert trainer.run(2) == "done"


@pytest.mark.parametrize("overrides, key", [
    (["badgan.matched_layer=5"], "badgan.matched_layer"),
    (["badgan.density_components=784"], "badgan.density_components"),
    (["badgan.density_images=20"], "badgan.density_images"),
    (["badgan.d_entropy_weight=-1"], "badgan.d_entropy_weight"),
    (["badgan.low_density_quantile=0"], "badgan.low_density_quantile"),
    (["architecture='mlp'", "dataset='ring8'"], "data.dataset"),
    (["semi_supervised=true"], "model.semi_supervised"),
    (["feature_matching=true"], "tricks.feature_matching"),
])
def test_a_bad_setting_is_refused_in_one_sentence_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as caught:
        load_preset("badgan_fashion", overrides)
    text = str(caught.value)
    assert key in text and text.endswith(".") and text.count(". ") == 0, text


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="needs Fashion-MNIST: apt-get install dataset-fashion-mnist")
def test_on_real_fashion_mnist_d_beats_chance_clearly_with_100_labels():
    trainer, events = quick("badgan_fashion", "metrics_every=150", "metrics_samples=1000")
    trainer.run(450)
    quality = [m.values for m in events.of(ev.Metrics) if m.group == "quality"]
    accuracy = np.mean([q["test_accuracy"] for q in quality[-2:]])
    assert accuracy > 0.5, (accuracy, quality)  # chance is 0.1

"""Triple-GAN (Li et al. 2017): three players for semi-supervised learning and class-conditional generation.

A classifier C gives p_c(y|x), a class-conditional generator G gives x = G(z, y), and a discriminator D
scores (image, label) pairs. D's "real" pairs are the labelled ones (x_l, y_l); its "fake" pairs are G's,
(G(z, y), y) with y uniform over the classes, weighted 1 − α, and C's, (x_u, y) with x_u an image drawn
without its label and y ~ p_c(y|x_u), weighted α. With d(x, y) = D's logit and σ the logistic function:

  D minimises   mean softplus(−d(x_l, y_l)) + α · mean_u Σ_y p_c(y|x_u) softplus(d(x_u, y))
                + (1 − α) · mean softplus(d(G(z, y), y))                  (p_c held fixed)
  C minimises   CE(C(x_l), y_l) + α · mean_u Σ_y p_c(y|x_u) ℓ(d(x_u, y))
                + α_P · CE(C(G(z, y)), y)    (R_P, from step triplegan.pseudo_start on; G's images fixed)
  G minimises   (1 − α) · mean ℓ(d(G(z, y), y))

where ℓ(d) = softplus(−d) = −log D (non-saturating, the default) or −softplus(d) = log(1 − D) (the
paper's minimax value). The sum over y is the exact expectation under C's probabilities, not the
paper's sampled (REINFORCE) estimate: D's label projection gives all classes' logits from one pass
of its trunk, so the expectation costs no more than one sample, and C's gradient flows through
p_c(y|x_u). A network of C's shape trained on the labels alone (the "baseline") runs beside C, and
the live Quality plot shows both test accuracies, under the keys the semi-supervised GAN uses.

One step, with every draw from the family's generator in this order: a labelled batch (x_l, y_l) of
data.batch_size, an unlabelled batch x_u of triplegan.unlabelled_batch, then G's latents (z, y) of
data.batch_size. G's images are made once; D steps on them, then C and G step against the updated D,
then the baseline steps on the same labelled batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.base import Algorithm, data_previews, needs_labelled_images
from engine.events import Declaration
from engine.latent import Latent, draw_latent
from engine.metrics.live import ClassifierAccuracy
from engine.models import DOut, Discriminator, Generator, _d_trunk, _dcgan_init
from engine.settings import ConfigError, _f


@dataclass
class TripleGanSettings:
    labels_kept: int = _f(100, "labelled examples kept (balanced over classes); the other images are used without "
                            "their labels", min=1, max=100000)
    alpha: float = _f(0.5, "α: weight of C's pairs among D's fakes; G's pairs get 1 − α", min=0.0, max=1.0,
                      live=True)
    alpha_p: float = _f(0.1, "α_P: weight of the pseudo-discriminative loss CE(C(G(z, y)), y) on C (0: off)",
                        min=0.0, max=100.0, live=True)
    pseudo_start: int = _f(2000, "step from which C also learns from G's pairs (R_P), once G is reliable", min=0)
    lr_c: float = _f(3e-4, "learning rate of C and of the labels-only baseline (optimiser and betas: optim.*_d)",
                     gt=0.0, max=1.0, live=True, alias="lr_c")
    unlabelled_batch: int = _f(64, "unlabelled images per step, pseudo-labelled by C for D", min=1, max=4096)
    d_input_noise: float = _f(0.0, "σ of Gaussian noise added to every image D sees while training (the authors' "
                                   "code: 0.3), so D cannot memorise the few labelled pairs", min=0.0, max=10.0,
                              live=True)
    non_saturating: bool = _f(True, "G and C minimise −log D(pair) instead of the paper's log(1 − D(pair))")


PLOTS = (
    ("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"), ("c_loss", "C loss", "#2ca02c"))),
    ("D on pairs", (("d_real", "D(x, y) labelled", "#1f77b4"), ("d_fake_c", "D(x, y ~ C)", "#2ca02c"),
                    ("d_fake_g", "D(G(z, y), y)", "#d62728"))),
    ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"),
                        ("grad_norm_c", "|∇C|", "#2ca02c"))),
)
TERMS = {"supervised_loss": "C's CE on the labels", "adversarial_c": "C's adversarial term",
         "pseudo_loss": "R_P: CE(C(G(z, y)), y)", "pseudo_accuracy": "C agrees with G's label",
         "baseline_loss": "labels-only CE"}
PROGRESS = (("D", "d_loss", ".3f"), ("G", "g_loss", ".3f"), ("C", "c_loss", ".3f"))
QUALITY_PAIRS = {"test_accuracy": ("Triple-GAN C", "baseline_accuracy", "same net, labels only"),
                 "baseline_accuracy": ("same net, labels only", "test_accuracy", "Triple-GAN C")}


class Classifier(nn.Module):
    """C (and the baseline): D's trunk with a linear head of class logits; answers a DOut like a D with a
    class head, so the live ClassifierAccuracy reads it (logit: the log-sum-exp of the class logits)."""

    def __init__(self, config, data_shape: tuple, num_classes: int):
        super().__init__()
        self.trunk, features = _d_trunk(config, tuple(data_shape))
        self.head = nn.Linear(features, num_classes)
        if config.model.architecture == "dcgan":
            self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        h = self.trunk(x)
        logits = self.head(h)
        return DOut(torch.logsumexp(logits, 1), h, logits)


def all_class_logits(d: Discriminator, x: torch.Tensor) -> torch.Tensor:
    """(N, K): D's logit of (x_i, y) for every class y, from one pass of its trunk (D(x, y) = head(h) + e_y·h)."""
    h = d.trunk(x)
    return d.head(h) + h @ d.projection.weight.t()


def fooling(logits: torch.Tensor, non_saturating: bool) -> torch.Tensor:
    """ℓ(d): what G and C minimise for a pair D scored d: −log σ(d), or log(1 − σ(d)) = −softplus(d)."""
    return F.softplus(-logits) if non_saturating else -F.softplus(logits)


class TripleGanAlgorithm(Algorithm):
    name = "triplegan"
    section = "triplegan"
    settings = TripleGanSettings
    base_sections = ("data", "model", "optim", "train", "tricks")
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d", "classifier": "d", "baseline": "d"}
    C_NETS = ("classifier", "baseline")  # they take triplegan.lr_c
    g_conditioned = True  # the explorer's class picker, `sample --label`

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        shape, k = tuple(dataset.shape), dataset.num_classes
        self.num_classes = k
        wanted = lambda name: nets is None or name in nets
        if wanted("generator"):
            self.nets["generator"] = Generator(config, shape, k, conditioned=True).to(device)
        if wanted("discriminator"):
            d = Discriminator(config, shape, k, projection=True)
            nn.init.normal_(d.projection.weight, 0.0, 0.02)  # N(0, 1) over thousands of features: logits of ±50
            self.nets["discriminator"] = d.to(device)
        for name in self.C_NETS:
            if wanted(name):
                self.nets[name] = Classifier(config, shape, k).to(device)
        if nets is None and hasattr(dataset, "keep_labels"):  # not when a sampler only draws from G
            dataset.keep_labels(config.triplegan.labels_kept, config.train.seed)

    # -- what the config, the studio and the CLI know beforehand ------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        s = config.triplegan
        needs_labelled_images(config, "algorithm = 'triplegan'")
        if s.labels_kept < 10:  # every supported data set has 10 classes
            raise ConfigError(f"triplegan.labels_kept = {s.labels_kept} is not allowed: each of the 10 classes needs "
                              f"at least one labelled example, so use 10 or more.")

    @classmethod
    def declare(cls, config) -> Declaration:
        return Declaration(plots=PLOTS, terms=TERMS, settings=("lr_g", "lr_d", "lr_c"),
                           controls=tuple(config.live_keys()), previews=data_previews(config), steerable=True,
                           progress=PROGRESS,
                           losses={"d_loss": "D's loss", "g_loss": "G's loss", "c_loss": "C's loss"},
                           quality_pairs=QUALITY_PAIRS)

    def phase(self, step: int) -> str:
        start = self.config.triplegan.pseudo_start
        if start == 0:
            return ""
        return "C learns from labels and D" if step < start else "C also learns from G's pairs (R_P)"

    # -- inputs and outputs ----------------------------------------------------------------------------
    def latent(self, n: int, rng: torch.Generator, fixed: bool = False) -> Latent:
        return draw_latent(self.config.model, n, rng, self.num_classes, fixed)

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.latent(n, rng).as_dict()

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.latent(n, rng, fixed=True).as_dict()

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        return nets["generator"](inputs["z"], None, inputs["labels"])

    def quality_probes(self) -> list:
        c = self.config
        models = {key: self.nets[name] for key, name in (("test_accuracy", "classifier"),
                                                          ("baseline_accuracy", "baseline")) if name in self.nets}
        return [ClassifierAccuracy(models, c, c.train.metrics_samples)] if models else []

    # -- optimisers: C and the baseline take triplegan.lr_c -------------------------------------------
    def build_optimizers(self) -> None:
        super().build_optimizers()
        self._set_lr_c()

    def settings_changed(self) -> None:
        super().settings_changed()
        self._set_lr_c()

    def _set_lr_c(self) -> None:
        for name in self.C_NETS:
            for group in self.opts[name].param_groups if name in self.opts else ():
                group["lr"] = self.config.triplegan.lr_c

    # -- one step ----------------------------------------------------------------------------------------
    def draw(self) -> tuple:
        """The step's batches, in the documented order: (x_l, y_l), x_u, then G's latent."""
        c = self.config
        x_l, y_l = self.dataset.sample_labelled(c.data.batch_size, self.rng)
        x_u, _ = self.dataset.sample(c.triplegan.unlabelled_batch, self.rng)
        return x_l, y_l, x_u, self.latent(c.data.batch_size, self.rng)

    def train_step(self, step: int, report: bool) -> dict:
        c, s = self.config, self.config.triplegan
        G, D, C = self.nets["generator"], self.nets["discriminator"], self.nets["classifier"]
        norms = report and c.tricks.grad_norms
        alpha, last = s.alpha, {}
        x_l, y_l, x_u, latent = self.draw()
        fake = G(latent.z, None, latent.labels)
        probs_u = F.softmax(C(x_u).class_logits, 1)  # C's p_c(y|x_u), kept for C's own step

        # D: labelled pairs real; C's pairs (expectation over p_c, held fixed) and G's pairs fake
        noisy = self._noisy
        d_real = D(noisy(x_l), y_l).logit
        d_c = all_class_logits(D, noisy(x_u))
        d_g = D(noisy(fake.detach()), latent.labels).logit
        weights = probs_u.detach()
        d_loss = (F.softplus(-d_real).mean() + alpha * (weights * F.softplus(d_c)).sum(1).mean()
                  + (1 - alpha) * F.softplus(d_g).mean())
        self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")

        # C: the labels, fooling the updated D with its pairs, and (from pseudo_start) G's pairs
        supervised = F.cross_entropy(C(x_l).class_logits, y_l)
        with torch.no_grad():
            scores = fooling(all_class_logits(D, noisy(x_u)), s.non_saturating)
        adversarial = (probs_u * scores).sum(1).mean()
        c_loss = supervised + alpha * adversarial
        if step >= s.pseudo_start and s.alpha_p > 0:
            pseudo_logits = C(fake.detach()).class_logits
            pseudo = F.cross_entropy(pseudo_logits, latent.labels)
            c_loss = c_loss + s.alpha_p * pseudo
            last["pseudo_loss"] = pseudo.detach()
            if report:
                last["pseudo_accuracy"] = (pseudo_logits.argmax(1) == latent.labels).float().mean().detach()
        self.optimise("classifier", c_loss, norms, last, "grad_norm_c")

        # G: its pairs should fool the updated D
        g_loss = (1 - alpha) * fooling(D(noisy(fake), latent.labels).logit, s.non_saturating).mean()
        self.optimise("generator", g_loss, norms, last, "grad_norm_g")

        last["baseline_loss"] = self._baseline_step(x_l, y_l)
        last.update(d_loss=d_loss.detach(), c_loss=c_loss.detach(), g_loss=g_loss.detach(),
                    supervised_loss=supervised.detach(), adversarial_c=adversarial.detach())
        if report:  # D's probabilities before its step, as the GAN family reports them
            last.update(d_real=torch.sigmoid(d_real).mean().detach(), d_fake_g=torch.sigmoid(d_g).mean().detach(),
                        d_fake_c=(weights * torch.sigmoid(d_c)).sum(1).mean().detach())
        return last

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.config.triplegan.d_input_noise
        return x if sigma <= 0 else x + sigma * torch.randn(x.shape, generator=self.rng, device=x.device)

    def _baseline_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(self.nets["baseline"](x).class_logits, y)
        opt = self.opts["baseline"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

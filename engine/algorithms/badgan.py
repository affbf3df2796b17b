"""Bad GAN (Dai et al. 2017, "Good Semi-supervised Learning That Requires a Bad GAN").

D is the semi-supervised GAN's K+1-class classifier (engine.algorithms.gan, model.semi_supervised):
K class logits l_k(x) and a fake class whose logit is fixed at 0, so D's real/fake logit is
lse(x) = log Σ_k exp l_k(x). G is a "complement" generator: it should put its samples in the low-density
gaps between the classes, where fakes teach D the most, rather than on the data. Per step (k = 1):

  D minimises  CE(l(x_l), y_l)                               labelled cross-entropy (supervised_loss)
             + softplus(−lse(x_u)) + softplus(lse(G(z)))       unlabelled real vs fake (unsupervised_loss)
             + badgan.d_entropy_weight · H(x_u)                  conditional entropy (d_entropy)
    where H(x) = −Σ_k p_k log p_k with p = softmax(l(x)) over the K real classes, i.e. the entropy of
    p_D(y | x, y ≤ K), averaged over the unlabelled batch: D is asked to be confident on unlabelled data.
  G minimises  ‖E f(x_u) − E f(G(z))‖² / F                    feature matching on D's hidden layer
                                                              badgan.matched_layer (0: the last), the
                                                              mean over the F features (feature_matching)
             + badgan.g_pullaway_weight · PT(f(G(z)))            pull-away term on D's last features of the
                                                              batch: mean squared cosine similarity of
                                                              different samples (pullaway)
             + badgan.low_density_weight · E relu(log p(G(z)) − log ε)          (low_density)

Approximations, said plainly:
- G's entropy term −H(p_G) is the paper's cheap choice, the pull-away term (EBGAN's, engine.tricks); the
  variational lower bound with an encoder is not built.
- The low-density term needs a density model p of the real images, trained beforehand. The paper uses
  PixelCNN++; here p is probabilistic PCA in pixel space (a Gaussian whose covariance has the data's top
  badgan.density_components principal directions with their own variances and one shared variance σ² for
  every other direction), fitted in closed form to badgan.density_images training images chosen by
  train.seed when the run is built. log p is per pixel (nats / dimension), so the weight does not depend on
  the image size. ε is set as a quantile rather than a raw density: log ε is the badgan.low_density_quantile
  quantile of log p over those same images (0.1: a sample of G more likely than the least likely 10 % of
  real images is pushed down). The penalty is the hinge relu(log p − log ε), which has the same gradient as
  the paper's E log p(x) 1[p(x) > ε]; it is averaged over the whole batch and on from step 0.
- D's real/fake loss is the project's non-saturating one at weight 1 (the authors' code weights it by 0.5).
The labels-only baseline (the same network trained on the labelled examples alone) runs beside D as in
the semi-supervised GAN, and the Quality plot shows both test accuracies (test_accuracy, baseline_accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine import tricks
from engine.algorithms.base import GRAD_PLOT, data_previews, needs_labelled_images
from engine.algorithms.gan import GanAlgorithm, check_d_layer
from engine.events import Declaration
from engine.settings import ConfigError, _f


def _density_on(c) -> bool:
    return c.badgan.low_density_weight > 0


@dataclass
class BadGanSettings:
    labels_kept: int = _f(100, "labelled examples kept (balanced over classes); the rest of the training set is "
                               "unlabelled", min=1, max=100000)
    d_entropy_weight: float = _f(0.1, "weight of the conditional entropy of D's class guesses on unlabelled data",
                                 min=0.0, max=100.0, live=True, alias="d_entropy")
    g_pullaway_weight: float = _f(0.8, "weight of the pull-away term on D's features of G's batch (G's entropy)",
                                  min=0.0, max=100.0, live=True, alias="g_pullaway")
    matched_layer: int = _f(0, "feature matching: D's hidden layer to match, 1 = first, 0 = last", min=0, max=16)
    low_density_weight: float = _f(0.1, "weight of the low-density term: G's samples more likely than ε under the "
                                        "pixel density (nats per pixel) are pushed down (0: off)",
                                   min=0.0, max=100.0, live=True, alias="low_density")
    low_density_quantile: float = _f(0.1, "ε: log ε is this quantile of the real images' log-density",
                                     gt=0.0, max=1.0, live=True, alias="low_density_quantile", when=_density_on)
    density_components: int = _f(32, "principal directions of the pixel density (probabilistic PCA)", min=1,
                                 max=4096)
    density_images: int = _f(5000, "training images the pixel density is fitted on", min=2, max=100000)


class PixelDensity:
    """Probabilistic PCA of flattened images: N(μ, U diag(λ) Uᵀ + σ² (I − U Uᵀ)), fitted in closed form
    (maximum likelihood: λ the top sample-covariance eigenvalues, σ² the mean of the rest)."""

    FLOOR = 1e-4  # smallest variance kept, so a direction that never varies cannot make p infinite

    def __init__(self, images: torch.Tensor, components: int, device):
        x = images.flatten(1).double().cpu()
        n, d = x.shape
        self.dim = d
        mean = x.mean(0)
        _, singular, vh = torch.linalg.svd(x - mean, full_matrices=False)
        variances = singular ** 2 / n
        q = min(components, d - 1, len(variances))
        rest = (variances.sum() - variances[:q].sum()) / (d - q)
        self.sigma2 = float(max(float(rest), self.FLOOR))
        self.mean = mean.float().to(device)
        self.basis = vh[:q].t().contiguous().float().to(device)  # d × q, orthonormal columns
        self.variances = variances[:q].clamp_min(self.sigma2).float().to(device)
        self.log_det = float(torch.log(variances[:q].clamp_min(self.sigma2)).sum()) + (d - q) * math.log(self.sigma2)
        self.real_log_p = torch.sort(self.log_prob(images.to(device).float()).detach()).values
        self._thresholds: dict = {}

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) / dimension, per sample."""
        r = x.flatten(1).float() - self.mean
        proj = r @ self.basis
        inside = (proj ** 2).sum(1)
        outside = ((r ** 2).sum(1) - inside).clamp_min(0.0)
        maha = (proj ** 2 / self.variances).sum(1) + outside / self.sigma2
        return -0.5 * (self.dim * math.log(2 * math.pi) + self.log_det + maha) / self.dim

    def threshold(self, quantile: float) -> float:
        """log ε: the `quantile` quantile of the fitted images' log p (lower interpolation)."""
        if quantile not in self._thresholds:
            n = len(self.real_log_p)
            self._thresholds[quantile] = float(self.real_log_p[min(n - 1, int(quantile * (n - 1)))])
        return self._thresholds[quantile]


def conditional_entropy(class_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the entropy of softmax(class_logits): p_D(y | x, y ≤ K)."""
    log_p = F.log_softmax(class_logits.float(), 1)
    return -(log_p.exp() * log_p).sum(1).mean()


def low_density_penalty(log_p: torch.Tensor, log_eps: float) -> torch.Tensor:
    """Mean over the batch of relu(log p(x) − log ε)."""
    return F.relu(log_p - log_eps).mean()


TERMS = {"supervised_loss": "labelled CE", "unsupervised_loss": "real/fake (unlabelled)",
         "d_entropy": "H(y|x) on unlabelled (D)", "feature_matching": "feature matching",
         "pullaway": "pull-away (G's entropy)", "low_density": "low-density hinge",
         "log_density_fake": "log p(G(z)) per pixel", "above_epsilon": "share of G(z) above ε",
         "baseline_loss": "labels-only CE"}
PLOTS = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"))),
         ("D(x) and D(G(z))", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728"))),
         GRAD_PLOT)
PROGRESS = (("D", "d_loss", ".3f"), ("G", "g_loss", ".3f"), ("H", "d_entropy", ".3f"),
            ("D(x)", "d_real", ".2f"), ("D(G(z))", "d_fake", ".2f"))
QUALITY_PAIRS = {"test_accuracy": ("Bad GAN D", "baseline_accuracy", "same net, labels only"),
                 "baseline_accuracy": ("same net, labels only", "test_accuracy", "Bad GAN D")}


def network_config(config):
    """The config the GAN family's networks are built from: the K+1-class D of the semi-supervised GAN with
    badgan.labels_kept labels (model.semi_supervised and data.labelled are the GAN family's own settings)."""
    net = config.copy()
    net.model.semi_supervised = True
    net.data.labelled = config.badgan.labels_kept
    return net


class BadGanAlgorithm(GanAlgorithm):
    name = "badgan"
    section = "badgan"
    settings = BadGanSettings
    base_sections = ("data", "model", "optim", "train", "tricks")

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(network_config(config), dataset, device, rng, nets)
        self.config = config  # live changes reach the [badgan] weights through the trainer's own config
        self.density = None
        if nets is None and torch.device(device).type != "meta" and getattr(dataset, "kind", "") == "images":
            s = config.badgan
            pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(config.train.seed + 13))
            images = dataset.scaled(pick[: s.density_images].to(dataset.device))
            self.density = PixelDensity(images, s.density_components, device)

    @classmethod
    def check_config(cls, config) -> None:
        d, s = config.data, config.badgan
        needs_labelled_images(config, "algorithm = 'badgan'")
        check_d_layer(config, "badgan.matched_layer", s.matched_layer)
        pixels = d.channels * d.image_size ** 2
        if s.density_components >= pixels:
            raise ConfigError(f"badgan.density_components = {s.density_components} is not allowed: the images have "
                              f"{pixels} pixels, so use fewer than {pixels} components.")
        if s.density_images <= s.density_components:
            raise ConfigError(f"badgan.density_images = {s.density_images} is not allowed: fit the density on more "
                              f"images than badgan.density_components = {s.density_components}.")

    @classmethod
    def declare(cls, config) -> Declaration:
        return Declaration(plots=PLOTS, terms=TERMS, settings=("lr_g", "lr_d"), controls=tuple(config.live_keys()),
                           previews=data_previews(config), progress=PROGRESS,
                           losses={"d_loss": "D's loss", "g_loss": "G's loss"}, quality_pairs=QUALITY_PAIRS)

    def train_step(self, step: int, report: bool) -> dict:
        """Draws, in this order, from self.rng: the unlabelled batch, the labelled batch, D's z, G's z."""
        c, s = self.config, self.config.badgan
        G, D = self.nets["generator"], self.nets["discriminator"]
        grad_norms = report and c.tricks.grad_norms
        batch = c.data.batch_size
        autocast = self.autocast()
        last = {}
        x_u, _ = self.dataset.sample(batch, self.rng)
        x_l, y_l = self.dataset.sample_labelled(batch, self.rng)
        latent = self.latent(batch, self.rng)
        with autocast:
            with torch.no_grad():
                fake = G(latent.z)
            out_u, out_f = D(x_u), D(fake)
            supervised = F.cross_entropy(D(x_l).class_logits.float(), y_l)
            unsupervised = self.loss.d_loss(out_u.logit.float(), out_f.logit.float(), 1.0, self.loss_ctx)
            entropy = conditional_entropy(out_u.class_logits)
            d_loss = supervised + unsupervised
            if s.d_entropy_weight > 0:
                d_loss = d_loss + s.d_entropy_weight * entropy
        self.optimise("discriminator", d_loss, grad_norms, last, "grad_norm_d")
        last["baseline_loss"] = self._baseline_step(x_l, y_l)

        latent = self.latent(batch, self.rng)
        with autocast:
            fake = G(latent.z)
            out_g = D(fake)
            layer = s.matched_layer
            with torch.no_grad():
                target = D.hidden(x_u, layer)
            matched = tricks.feature_matching(target, out_g.features if layer == 0 else D.hidden(fake, layer))
            pullaway = tricks.pull_away(out_g.features.float())
            g_loss = matched
            if s.g_pullaway_weight > 0:
                g_loss = g_loss + s.g_pullaway_weight * pullaway
            if self.density is not None:
                with torch.autocast(device_type=self.device.type, enabled=False):  # log p in float32 under AMP
                    log_p = self.density.log_prob(fake.float())
                low = low_density_penalty(log_p, self.density.threshold(s.low_density_quantile))
                if s.low_density_weight > 0:
                    g_loss = g_loss + s.low_density_weight * low
                last.update(low_density=low.detach(), log_density_fake=log_p.mean().detach())
                if report:
                    last["above_epsilon"] = (log_p > self.density.threshold(s.low_density_quantile)).float().mean()
        self.optimise("generator", g_loss, grad_norms, last, "grad_norm_g")

        last.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(), supervised_loss=supervised.detach(),
                    unsupervised_loss=unsupervised.detach(), d_entropy=entropy.detach(),
                    feature_matching=matched.detach(), pullaway=pullaway.detach())
        if report:
            last.update(self._readings(out_u.logit.detach(), out_f.logit.detach(), 0.0))
        return last

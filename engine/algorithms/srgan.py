"""SRGAN (Ledig et al. 2017): single-image super-resolution, 4x, with a perceptual loss.

G (SRResNet) maps a low-resolution image x to a high-resolution one; D tells real high-resolution images from
G's. With y the true image, φ a fixed feature extractor and ℓ cross-entropy on D's logits:

  D minimises  ℓ(D(y), real) + ℓ(D(G(x)), fake)
  G minimises  content_weight · content(G(x), y) + adversarial_weight · ℓ(D(G(x)), real) + tv_weight · TV(G(x))

content = "evaluator": the mean squared distance of φ(G(x)) and φ(y), φ the shipped Fashion-MNIST evaluator's
convolutional features before its last pooling (64 maps of 14 x 14, the analogue of the paper's VGG φ5,4). Not VGG
because there are no VGG weights offline, and VGG was trained on photographs, not 28-pixel grey items; the
evaluator was trained on this data. content = "mse": the pixel MSE (the paper's SRResNet-MSE).
The paper first trains G on the pixel MSE alone (SRResNet) and starts SRGAN from it: srgan.pretrain_steps.
With adversarial_weight = 0 and content = "mse", G is the paper's MSE-only baseline and D is not trained.
TV is the anisotropic total variation, mean |∇G(x)| (the survey lists it; the paper's last version drops it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.algorithms.translation import TranslationAlgorithm, TranslationSettings, gan_loss
from engine.img2img.data import SCALE
from engine.img2img.metrics import to_evaluator
from engine.img2img.nets import SRDiscriminator, SRResNet
from engine.settings import ConfigError, _f

PLOTS = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_adv", "G's adversarial term", "#ff7f0e"),
                     ("content", "content loss", "#2ca02c"), ("pixel_mse", "pixel MSE", "#9467bd"))),
         ("D", (("d_real", "D(y)", "#1f77b4"), ("d_fake", "D(G(x))", "#d62728"))),
         ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))))


@dataclass
class SrganSettings(TranslationSettings):
    task: str = _f("lowres", "built-in task: 4× low resolution → item", choices=("lowres",))
    content: str = _f("evaluator", "content loss: in the evaluator's feature space, or the pixel MSE",
                      choices=("evaluator", "mse"))
    content_weight: float = _f(1.0, "weight of the content loss", min=0.0, max=1e6, live=True, alias="content_weight")
    adversarial_weight: float = _f(1e-3, "weight of G's adversarial term (the paper: 10⁻³; 0: no GAN, D not trained)",
                                   min=0.0, max=1e3, live=True, alias="adversarial_weight")
    tv_weight: float = _f(0.0, "weight of the total-variation term", min=0.0, max=1e3, live=True)
    pretrain_steps: int = _f(1000, "steps of G on the pixel MSE alone (SRResNet) before the GAN starts", min=0)
    g_filters: int = _f(32, "G's feature maps (the paper: 64)", min=4, max=512)
    g_blocks: int = _f(4, "G's residual blocks (the paper: 16)", min=1, max=64)
    d_filters: int = _f(32, "D's first layer's filters (the paper: 64)", min=4, max=512)


class SrganAlgorithm(TranslationAlgorithm):
    name = "srgan"
    section = "srgan"
    settings = SrganSettings
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d"}
    needs_pairs = True
    tasks = ("lowres",)
    input_scale = SCALE  # a folder's A pictures are made 4x smaller: G enlarges them 4x

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.srgan
        c, size = dataset.shape[0], dataset.shape[-1]
        if nets is None or "generator" in nets:
            self.nets["generator"] = SRResNet(c, SCALE, s.g_filters, s.g_blocks).to(device)
        if nets is None:
            self.nets["discriminator"] = SRDiscriminator(c, size, s.d_filters).to(device)
        self._features = None

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.srgan.content == "evaluator" and config.data.channels != 1:
            raise ConfigError("srgan.content = 'evaluator' needs grey images (the evaluator reads one channel), but "
                              "data.channels = 3; use srgan.content = 'mse' for colour.")

    @classmethod
    def declare(cls, config):
        return cls.declaration(config, PLOTS, {"g_loss": "G's whole loss", "tv": "total variation"},
                               (("D", "d_loss", ".3f"), ("content", "content", ".4f")),
                               {"d_loss": "D's loss", "g_loss": "G's loss"})

    def phase(self, step: int) -> str:
        s = self.config.srgan
        if s.pretrain_steps == 0:
            return ""
        return "pixel-MSE pre-training (SRResNet)" if step < s.pretrain_steps else "SRGAN"

    def translate(self, x: torch.Tensor, direction: str, nets: dict) -> torch.Tensor:
        return nets["generator"](x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ: the evaluator's feature maps before its last pooling (fixed, never trained)."""
        if self._features is None:
            from engine.metrics.evaluator import load_evaluator
            self._features = copy.deepcopy(load_evaluator().body[:5]).to(self.device).requires_grad_(False).eval()
        return self._features(to_evaluator(x))

    def content_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if self.config.srgan.content == "mse":
            return F.mse_loss(fake, real)
        return F.mse_loss(self.features(fake), self.features(real))

    def train_step(self, step: int, report: bool) -> dict:
        s = self.config.srgan
        G = self.nets["generator"]
        norms = report and self.config.tricks.grad_norms
        x, y = self.dataset.sample_pairs(self.config.data.batch_size, self.rng)
        fake = G(x)
        last = {}
        pixel = F.mse_loss(fake, y)
        if step < s.pretrain_steps:
            self.optimise("generator", pixel, norms, last, "grad_norm_g")
            last.update(g_loss=pixel.detach(), pixel_mse=pixel.detach(), content=pixel.detach())
            return last
        g_loss = torch.zeros((), device=fake.device)
        if s.adversarial_weight > 0:
            D = self.nets["discriminator"]
            d_real, d_fake = D(y), D(fake.detach())
            d_loss = gan_loss(d_real, True, "vanilla") + gan_loss(d_fake, False, "vanilla")
            self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")
            g_adv = gan_loss(D(fake), True, "vanilla")
            g_loss = g_loss + s.adversarial_weight * g_adv
            last.update(d_loss=d_loss.detach(), g_adv=g_adv.detach())
            if report:
                last.update(d_real=torch.sigmoid(d_real).mean().detach(), d_fake=torch.sigmoid(d_fake).mean().detach())
        content = self.content_loss(fake, y)
        g_loss = g_loss + s.content_weight * content
        if s.tv_weight > 0:
            tv = (fake[..., 1:, :] - fake[..., :-1, :]).abs().mean() + (fake[..., 1:] - fake[..., :-1]).abs().mean()
            g_loss = g_loss + s.tv_weight * tv
            last["tv"] = tv.detach()
        self.optimise("generator", g_loss, norms, last, "grad_norm_g")
        last.update(g_loss=g_loss.detach(), content=content.detach(), pixel_mse=pixel.detach())
        return last

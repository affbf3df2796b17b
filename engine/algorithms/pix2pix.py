"""pix2pix (Isola et al. 2017): image-to-image translation learnt from aligned pairs with a conditional GAN.

G is a U-Net from the input x to the output; D is a PatchGAN that scores (x, y) pairs patch by patch (the two
images stacked as channels). With ℓ the GAN loss on D's logits (pix2pix.gan_loss: the paper's cross-entropy,
or least squares) and y the true target of x:

  D minimises  ½ [ℓ(D(x, y), real) + ℓ(D(x, G(x)), fake)]      (the paper halves D's loss)
  G minimises  gan_weight · ℓ(D(x, G(x)), real) + l1_weight · |y − G(x)|₁

G's only noise is dropout in the decoder (the paper drops z: G learnt to ignore it); its masks come from the
run's generator. With gan_weight = 0, D is not trained and G is the paper's "L1 alone" ablation.

One step: a batch of data.batch_size aligned pairs drawn from the run's generator, G's output once (dropout
masks drawn next), D's step on it, then G's step against the updated D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.algorithms.translation import TranslationAlgorithm, TranslationSettings, gan_loss
from engine.img2img.nets import PatchDiscriminator, UNet
from engine.settings import _f

PLOTS = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_gan", "G's GAN term", "#ff7f0e"),
                     ("l1", "L1 to the target", "#2ca02c"))),
         ("D on pairs", (("d_real", "D(x, y)", "#1f77b4"), ("d_fake", "D(x, G(x))", "#d62728"))),
         ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))))


@dataclass
class Pix2PixSettings(TranslationSettings):
    gan_loss: str = _f("vanilla", "GAN loss: the paper's cross-entropy, or least squares", choices=("vanilla", "lsgan"))
    gan_weight: float = _f(1.0, "weight of G's GAN term (0: L1 alone, the paper's ablation; D is then not trained)",
                           min=0.0, max=1000.0, live=True, alias="gan_weight")
    l1_weight: float = _f(100.0, "λ: weight of the L1 distance to the target", min=0.0, max=10000.0, live=True,
                          alias="l1_weight")
    g_filters: int = _f(32, "filters of the U-Net's first layer (the paper: 64), doubled per level up to 8×",
                        min=4, max=512)
    dropout: float = _f(0.5, "dropout of the U-Net's innermost decoder layers (G's noise)", min=0.0, max=0.95)
    d_filters: int = _f(32, "filters of the PatchGAN's first layer (the paper: 64)", min=4, max=512)
    d_layers: int = _f(1, "stride-2 layers of the PatchGAN: patches of 16 px (1), 34 (2) or 70 (3); the paper's 70 "
                          "px on 256 px images is about 9 px on 32", min=1, max=5)


class Pix2PixAlgorithm(TranslationAlgorithm):
    name = "pix2pix"
    section = "pix2pix"
    settings = Pix2PixSettings
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d"}
    needs_pairs = True
    tasks = ("edges", "lowres")

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.pix2pix
        c_in, c_out, size = dataset.input_shape[0], dataset.shape[0], dataset.shape[-1]
        self.upsample_input = tuple(dataset.input_shape[1:]) != tuple(dataset.shape[1:])
        if nets is None or "generator" in nets:
            self.nets["generator"] = UNet(c_in, c_out, size, s.g_filters, s.dropout).to(device)
        if nets is None:
            self.nets["discriminator"] = PatchDiscriminator(c_in + c_out, s.d_filters, s.d_layers).to(device)

    @classmethod
    def declare(cls, config):
        return cls.declaration(config, PLOTS, {"g_loss": "G's whole loss"},
                               (("D", "d_loss", ".3f"), ("L1", "l1", ".4f")),
                               {"d_loss": "D's loss", "g_loss": "G's loss"})

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        """A smaller input (the low-resolution task) enlarged to the output size, bicubic, for the U-Net."""
        if not self.upsample_input:
            return x
        return torch.nn.functional.interpolate(x, size=self.dataset.shape[1:], mode="bicubic",
                                               align_corners=False).clamp(-1, 1)

    def translate(self, x: torch.Tensor, direction: str, nets: dict) -> torch.Tensor:
        return nets["generator"](self._fit(x))

    def train_step(self, step: int, report: bool) -> dict:
        s = self.config.pix2pix
        G = self.nets["generator"]
        norms = report and self.config.tricks.grad_norms
        a, b = self.dataset.sample_pairs(self.config.data.batch_size, self.rng)
        x = self._fit(a)
        fake = G(x, self.rng)
        last = {}
        adversarial = s.gan_weight > 0
        if adversarial:
            D = self.nets["discriminator"]
            d_real = D(torch.cat([x, b], 1))
            d_fake = D(torch.cat([x, fake.detach()], 1))
            d_loss = 0.5 * (gan_loss(d_real, True, s.gan_loss) + gan_loss(d_fake, False, s.gan_loss))
            self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")
            g_gan = gan_loss(D(torch.cat([x, fake], 1)), True, s.gan_loss)
            last.update(d_loss=d_loss.detach(), g_gan=g_gan.detach())
            if report:  # D's probabilities (least squares: its raw outputs, aimed at 1 and 0)
                shown = torch.sigmoid if s.gan_loss == "vanilla" else (lambda t: t)
                last.update(d_real=shown(d_real).mean().detach(), d_fake=shown(d_fake).mean().detach())
        else:
            g_gan = torch.zeros((), device=fake.device)
        l1 = (fake - b).abs().mean()
        g_loss = s.gan_weight * g_gan + s.l1_weight * l1
        self.optimise("generator", g_loss, norms, last, "grad_norm_g")
        last.update(g_loss=g_loss.detach(), l1=l1.detach())
        return last

"""The VAE family: the non-adversarial baseline (Kingma & Welling 2014) on the same networks and data.

The encoder q(z|x) is D's body with a linear head (means, then log-variances); the decoder p(x|z)
is G. Maximise the ELBO: a Gaussian decoder with σ = vae.sigma, and the reparameterisation trick.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.algorithms.base import GRAD_PLOT, Algorithm, data_previews, grad_norm
from engine.events import Declaration
from engine.models import Discriminator, Generator, draw_noise
from engine.settings import _f


@dataclass
class VaeSettings:
    sigma: float = _f(0.3, "std of the Gaussian decoder p(x|z) in data units", gt=0.0)


class VaeAlgorithm(Algorithm):
    name = "vae"
    section = "vae"
    settings = VaeSettings
    sampling_nets = ("decoder",)
    opt_roles = {"decoder": "g", "encoder": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        shape, classes = tuple(dataset.shape), dataset.num_classes
        if nets is None or "decoder" in nets:
            self.nets["decoder"] = Generator(config, shape, classes).to(device)
        if nets is None or "encoder" in nets:
            self.nets["encoder"] = Discriminator(config, shape, classes, encoder_dim=2 * config.model.noise_dim).to(device)

    @classmethod
    def declare(cls, config) -> Declaration:
        return Declaration(plots=(("Loss", (("g_loss", "−ELBO", "#ff7f0e"),)), GRAD_PLOT),
                           terms={"recon": "reconstruction", "kl": "KL"}, settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()),
                           previews=data_previews(config),
                           progress=(("loss", "g_loss", ".1f"), ("KL", "kl", ".1f")), losses={"g_loss": "the ELBO"})

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return {"z": draw_noise(n, self.config.model.noise_dim, "normal", rng)}

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        return nets["decoder"](inputs["z"])

    def train_step(self, step: int, report: bool) -> dict:
        c = self.config
        encoder, decoder = self.nets["encoder"], self.nets["decoder"]
        x, _ = self.dataset.sample(c.data.batch_size, self.rng)
        stats = encoder(x).logit.float()
        mean, logvar = stats.chunk(2, 1)
        logvar = logvar.clamp(-10.0, 10.0)
        eps = torch.randn(mean.shape, generator=self.rng, device=mean.device)
        z = mean + torch.exp(0.5 * logvar) * eps
        recon = decoder(z).float()
        recon_loss = 0.5 * ((recon - x) ** 2).flatten(1).sum(1) / c.vae.sigma ** 2
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).sum(1)
        total = (recon_loss + kl).mean()
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        total.backward()
        last = {}
        if report and c.tricks.grad_norms:
            last["grad_norm_g"] = grad_norm(decoder)
            last["grad_norm_d"] = grad_norm(encoder)
        self.opts["decoder"].step()
        self.opts["encoder"].step()
        last.update(g_loss=total.detach(), recon=recon_loss.mean().detach(), kl=kl.mean().detach())
        return last

"""A third-party algorithm family in a few lines: a 1-D GAN whose G is an affine map of N(0, 1) noise,
learning N(mean, std). It lives outside engine/ and studio/ and reaches them only through the
entry-point group gan_studio.algorithms (see the .dist-info folder beside this file)."""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.base import Algorithm
from engine.events import Declaration
from engine.settings import _f


@dataclass
class Toy1DSettings:
    mean: float = _f(2.0, "mean of the real data", live=True, alias="toy_mean")
    std: float = _f(0.5, "std of the real data", gt=0.0)
    batch: int = _f(64, "samples per batch", min=1, max=4096)


class Line:
    """The real data: N(mean, std) numbers, read from the live settings at every draw."""
    name, kind, shape, num_classes, class_names = "toy1d", "toy1d", (1,), 0, ()

    def __init__(self, settings):
        self.settings = settings

    def to(self, device):
        return self

    def sample(self, n, rng):
        return self.settings.mean + self.settings.std * torch.randn(n, 1, generator=rng, device=rng.device), None


def histogram(values: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=32, range=(-4.0, 6.0))
    heights = (counts / max(1, counts.max()) * 60).astype(int)
    picture = np.full((64, 64, 3), 255, np.uint8)
    for i, h in enumerate(heights):
        picture[64 - h:, 2 * i:2 * i + 2] = (230, 85, 13)
    return picture


class Toy1D(Algorithm):
    name, section, settings = "toy1d", "toy1d", Toy1DSettings
    base_sections = ("optim", "train", "tricks")
    opt_roles = {"generator": "g", "discriminator": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        self.nets["generator"] = nn.Linear(1, 1).to(device)
        if nets is None:
            self.nets["discriminator"] = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(device)

    @classmethod
    def make_data(cls, config, progress=None, warn=None):
        return Line(config.toy1d)

    @classmethod
    def declare(cls, config):
        return Declaration(plots=(("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"))),),
                           terms={"fake_mean": "mean of G(z)"}, settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()), previews=("images",),
                           progress=(("D", "d_loss", ".3f"), ("mean", "fake_mean", ".2f")),
                           losses={"d_loss": "D's loss", "g_loss": "G's loss"})

    def phase(self, step):
        return "warm-up" if step < 10 else "adversarial"

    def random_inputs(self, n, rng):
        return {"z": torch.randn(n, 1, generator=rng, device=rng.device)}

    def generate(self, inputs, nets):
        return nets["generator"](inputs["z"])

    def preview(self, preview, outputs):
        return {"kind": "images", "picture": histogram(outputs.cpu().numpy().ravel())}

    def pictures(self, preview, outputs):
        picture = histogram(outputs.cpu().numpy().ravel())
        return picture, [picture]

    def train_step(self, step, report):
        G, D = self.nets["generator"], self.nets["discriminator"]
        real, _ = self.dataset.sample(self.config.toy1d.batch, self.rng)
        fake = G(torch.randn(real.shape, generator=self.rng, device=real.device))
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        self.opts["discriminator"].zero_grad()
        d_loss.backward()
        self.opts["discriminator"].step()
        g_loss = F.softplus(-D(fake)).mean()
        self.opts["generator"].zero_grad()
        g_loss.backward()
        self.opts["generator"].step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "fake_mean": fake.mean().detach()}

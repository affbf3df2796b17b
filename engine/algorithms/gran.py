"""GRAN (Im et al. 2016, "Generating images with recurrent adversarial networks"): a generator that draws onto a
canvas over T = gran.steps steps, trained against an ordinary discriminator of the finished image.

With z ~ N(0, I) drawn once per image and fed at every step (the paper's eq. 7 feeds z at each step; the authors'
code draws a z per step but uses only the first one, so the same z throughout), an encoder g, a decoder f:

  h₁ = 0,   h_t = g(ΔC_{t−1}) (t > 1),   ΔC_t = f([φ(z), h_t]),   C_t = C_{t−1} + ΔC_t (C₀ = 0),   x = tanh(C_T)

h_t is the code of the previous update (the paper's eq. 6; gran.encoder_reads = "canvas" reads tanh(C_{t−1}), the
picture so far, instead). φ(z) = tanh(batch-normed linear map of z) as the authors' code; g is strided 4×4
convolutions with LeakyReLU and a linear map to a tanh code the size of z; f is a DCGAN generator (a linear map to
the smallest feature map, transposed 4×4 convolutions with batch norm and ReLU) whose last layer is linear, since
the tanh comes after the sum. The weights of f and g are shared by all steps, but each step has its own batch-norm
layers, so the running statistics used for sampling (eval mode) are each step's own. The paper's 28×28 code ends
in a sigmoid (its data in [0, 1]); data here is in [−1, 1], hence tanh. D is a DCGAN discriminator of x.

Loss: the non-saturating GAN loss, D minimises softplus(−D(x_real)) + softplus(D(G(z))) and G minimises
softplus(−D(G(z))). Stages (previews, `sample --stages`): tanh(C_t) after each step, a film strip whose last frame
is the image. One step draws, from the run's generator in this order: a data batch, then z; G's images are made
once, D steps on them, then G steps against the updated D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.lapgan import ConvDiscriminator, conv_trunk, images_only, optimise
from engine.algorithms.staged import StagedAlgorithm
from engine.config import resolution_steps, start_side
from engine.events import Declaration
from engine.models import _dcgan_init
from engine.settings import _f

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass
class GranSettings:
    steps: int = _f(4, "T: drawing steps, each adding an update ΔC_t to the canvas", min=1, max=16)
    noise_dim: int = _f(100, "size of z (and of the encoder's code of the canvas)", min=1, max=1024)
    encoder_reads: str = _f("update", "what the encoder reads at each step: the previous update ΔC_{t−1} (the "
                                      "paper's eq. 6) or the picture so far, tanh(C_{t−1})",
                            choices=("update", "canvas"))
    g_channels: int = _f(16, "feature maps of the decoder's last hidden layer (doubled per layer towards its input) "
                             "and of the encoder's first", min=4, max=512)
    d_channels: int = _f(32, "feature maps of D's first layer (doubled per layer)", min=4, max=512)


PLOTS = (
    ("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"))),
    ("D", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728"))),
    ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))),
)


class RecurrentGenerator(nn.Module):
    """The decoder f, the encoder g and φ(z); forward(z) -> (x, [C_1, ..., C_T], [ΔC_1, ..., ΔC_T])."""

    def __init__(self, shape: tuple, noise_dim: int, width: int, steps: int, reads: str):
        super().__init__()
        channels, size = shape[0], shape[-1]
        self.steps, self.reads, self.noise_dim = steps, reads, noise_dim
        side, ups = start_side(size), resolution_steps(size)
        widths = [width * 2 ** (ups - 1 - i) for i in range(ups)]  # the decoder's hidden widths, input side first
        self.z_map = nn.Sequential(nn.Linear(noise_dim, noise_dim), nn.BatchNorm1d(noise_dim), nn.Tanh())
        self.project = nn.Sequential(nn.Linear(2 * noise_dim, widths[0] * side * side, bias=False),
                                     nn.Unflatten(1, (widths[0], side, side)))
        self.ups = nn.ModuleList([nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in zip(widths, widths[1:])]
                                 + [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)])
        self.norms = nn.ModuleList([nn.ModuleList([nn.BatchNorm2d(w) for w in widths]) for _ in range(steps)])
        trunk, features = conv_trunk(channels, size, width, norm=False)
        self.encoder = nn.Sequential(trunk, nn.Linear(features, noise_dim), nn.Tanh())
        self.apply(_dcgan_init)

    def decode(self, code: torch.Tensor, t: int) -> torch.Tensor:
        x = self.project(code)
        for norm, layer in zip(self.norms[t], self.ups):
            x = layer(F.relu(norm(x)))
        return x

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        zc = self.z_map(z)
        h = torch.zeros_like(zc)
        canvas, canvases, updates = None, [], []
        for t in range(self.steps):
            if t:
                h = self.encoder(updates[-1] if self.reads == "update" else torch.tanh(canvas))
            delta = self.decode(torch.cat([zc, h], 1), t)
            canvas = delta if canvas is None else canvas + delta
            canvases.append(canvas)
            updates.append(delta)
        return torch.tanh(canvas), canvases, updates


class GranAlgorithm(StagedAlgorithm):
    name = "gran"
    section = "gran"
    settings = GranSettings
    base_sections = ("data", "optim", "train", "tricks")
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s, shape = config.gran, tuple(dataset.shape)
        if nets is None or "generator" in nets:
            self.nets["generator"] = RecurrentGenerator(shape, s.noise_dim, s.g_channels, s.steps,
                                                        s.encoder_reads).to(device)
        if nets is None or "discriminator" in nets:
            self.nets["discriminator"] = ConvDiscriminator(shape[0], shape[-1], s.d_channels).to(device)

    @classmethod
    def check_config(cls, config) -> None:
        images_only(config, cls.name)

    @classmethod
    def declare(cls, config) -> Declaration:
        updates = ("Canvas updates", tuple((f"update_{t + 1}", f"mean |ΔC{t + 1}|", COLOURS[t % 8])
                                           for t in range(config.gran.steps)))
        return Declaration(steerable=True, plots=PLOTS + (updates,), settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()),
                           previews=("images",), progress=(("D", "d_loss", ".3f"), ("G", "g_loss", ".3f")),
                           losses={"d_loss": "D's loss", "g_loss": "G's loss"})

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return {"z": torch.randn(n, self.config.gran.noise_dim, generator=rng, device=rng.device)}

    def draw(self, inputs: dict, nets: dict) -> tuple[torch.Tensor, list]:
        image, canvases, _ = nets["generator"](inputs["z"])
        stages = [(f"t{t + 1}", torch.tanh(canvas)) for t, canvas in enumerate(canvases)]
        return image, stages

    def train_step(self, step: int, report: bool) -> dict:
        c = self.config
        G, D = self.nets["generator"], self.nets["discriminator"]
        norms = report and c.tricks.grad_norms
        x, _ = self.dataset.sample(c.data.batch_size, self.rng)
        z = self.random_inputs(len(x), self.rng)["z"]
        fake, _, updates = G(z)
        last = {}

        d_real, d_fake = D(x), D(fake.detach())
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        optimise([self.opts["discriminator"]], d_loss, {"grad_norm_d": D} if norms else None, last)

        D.requires_grad_(False)
        try:
            g_loss = F.softplus(-D(fake)).mean()
        finally:
            D.requires_grad_(True)
        optimise([self.opts["generator"]], g_loss, {"grad_norm_g": G} if norms else None, last)

        last.update(d_loss=d_loss.detach(), g_loss=g_loss.detach())
        if report:
            last.update(d_real=torch.sigmoid(d_real).mean().detach(), d_fake=torch.sigmoid(d_fake).mean().detach())
            last.update({f"update_{t + 1}": delta.detach().abs().mean() for t, delta in enumerate(updates)})
        return last

"""Composite GAN (Kwak and Zhang 2016, "Generating images part by part with composite generative adversarial
networks"): an RNN turns a sequence of noise vectors into one code per part, each part has its own generator,
and the parts are laid over one another by alpha blending.

With n = composite.parts, z_1 .. z_n each of model.noise_dim drawn from N(0, I), and an LSTM (or GRU) of
composite.rnn_hidden units: h_1 .. h_n = RNN(z_1 .. z_n). Part t is C_t = G_t(h_t), each G_t a generator of
its own (no weight sharing; a DCGAN generator of model.base_channels, or an MLP with model.architecture = 'mlp').
G_2 .. G_n make a colour (or grey) image and an alpha map α_t = (a_t + 1) / 2 from the extra tanh channel a_t;
G_1 makes the background, which is opaque: it has no alpha channel (α_1 = 1), and its stage is shown with an
alpha of 1. The composite is

  O^(1) = colour_1,     O^(t) = α_t · colour_t + (1 − α_t) · O^(t−1),     the image is O^(n).

D is a DCGAN discriminator (model.base_channels) on O^(n). The loss is the non-saturating one: D minimises
softplus(−D(x)) + softplus(D(O)), G minimises softplus(−D(O)) + composite.alpha_weight · Σ_{t ≥ 2} R_t with the
paper's alpha regulariser, its sums taken as shares of the P pixels (so u = composite.opacity is the share of the
image a part should cover):

  R_t = | u − (1/P) Σ_ij α_t,ij | − (1/P) Σ_ij (α_t,ij − 0.5)²          (mean over the batch)

The first term pulls each part's coverage to u (so no part takes the whole image and none vanishes), the second
pushes each alpha to 0 or 1 (a part is there or not). Below u the two cancel at α = 0 (∂R/∂α_ij = −2α_ij / P), so
a part that the GAN term has switched off is not pulled back: a weight of about 5 holds the coverage at u from the
start, about 3 or less lets the parts fade (the background then draws everything). Every step reports each
part's coverage (its mean alpha) and the share of the final image it shows through, α_t Π_{s > t} (1 − α_s);
the shares sum to 1.

Not in the paper: each alpha map is averaged over composite.alpha_pool-pixel blocks and enlarged back bilinearly.
With per-pixel alphas (alpha_pool = 1) the transposed convolutions at once make a fixed lattice (one pixel of
every 2 x 2 opaque) that meets u = 0.25 with binary alphas while drawing nothing; on Fashion-MNIST those runs
collapsed.

One step, with every draw from the run's generator in this order: a real batch of data.batch_size, then z for the
same number of fakes. G's images are made once; D steps on them, then G steps against the updated D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.base import data_previews
from engine.algorithms.staged import StagedAlgorithm
from engine.events import Declaration
from engine.models import Discriminator, _act, _dcgan_init, _up_body, draw_noise
from engine.settings import LOW_DIM_DATASETS, ConfigError, _f

MAX_PARTS = 8
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _several(config) -> bool:
    return config.composite.parts > 1


@dataclass
class CompositeSettings:
    parts: int = _f(3, "number of parts, each from its own generator; part 1 is the opaque background",
                    min=1, max=MAX_PARTS)
    rnn: str = _f("lstm", "the recurrent network that turns the noise sequence into the parts' codes",
                  choices=("lstm", "gru"))
    rnn_hidden: int = _f(128, "units of the RNN: the size of each part's code h_t", min=1, max=4096)
    alpha_weight: float = _f(5.0, "weight of the alpha regulariser on G (0: off); below about 3, parts that fade "
                                  "out stay out", min=0.0, max=1000.0, live=True, alias="alpha_weight",
                             when=_several)
    alpha_pool: int = _f(4, "each alpha map is averaged over blocks of this many pixels a side and enlarged back "
                            "bilinearly (1: the paper's per-pixel alpha, which transposed convolutions turn into a "
                            "one-pixel lattice that meets the coverage target without drawing anything)",
                         choices=(1, 2, 4), when=_several)
    opacity: float = _f(0.25, "u: the share of the pixels each part (after the first) should cover", min=0.0,
                        max=1.0, live=True, alias="opacity", when=_several)


TERMS = {"g_gan": "G's GAN term", "alpha_reg": "alpha regulariser Σ_t R_t",
         **{f"coverage_{t}": f"part {t}: mean alpha" for t in range(2, MAX_PARTS + 1)},
         **{f"visible_{t}": f"part {t}: share shown" for t in range(1, MAX_PARTS + 1)}}


def part_body(config, in_dim: int, shape: tuple) -> nn.Sequential:
    """One part's generator, from its code h_t to an image of `shape` (colour, plus alpha after the first)."""
    if config.model.architecture == "mlp":
        return _up_body(config, in_dim, shape, lambda: _act(config.model.activation))
    body = _up_body(config, in_dim, shape, nn.ReLU, nn.BatchNorm2d)
    body.apply(_dcgan_init)
    return body


def blend(colours: list, alphas: list) -> tuple[torch.Tensor, list]:
    """(the final image, the running composites O^(1) .. O^(n)): alphas[0] is ignored (the background is opaque);
    the others are in [0, 1]."""
    out = colours[0]
    running = [out]
    for colour, alpha in zip(colours[1:], alphas[1:]):
        out = alpha * colour + (1 - alpha) * out
        running.append(out)
    return out, running


def alpha_regulariser(alpha: torch.Tensor, opacity: float) -> torch.Tensor:
    """R_t per sample: |u − mean α| − mean (α − 0.5)², the paper's pixel sums as shares of the pixels."""
    flat = alpha.flatten(1)
    return (opacity - flat.mean(1)).abs() - ((flat - 0.5) ** 2).mean(1)


def visible_shares(alphas: list) -> list:
    """Each part's share of the final image, α_t Π_{s > t} (1 − α_s) with α_1 = 1; per pixel they sum to 1."""
    shares, above = [], None
    for alpha in reversed(alphas):
        mine = alpha if above is None else alpha * above
        shares.append(mine)
        rest = 1 - alpha
        above = rest if above is None else above * rest
    return shares[::-1]


class CompositeGenerator(nn.Module):
    """The RNN over the noise sequence and one generator per part; forward gives the colours and alphas."""

    def __init__(self, config, shape: tuple):
        super().__init__()
        s, m = config.composite, config.model
        self.parts, self.noise_dim, self.shape, self.pool = s.parts, m.noise_dim, tuple(shape), s.alpha_pool
        kind = nn.LSTM if s.rnn == "lstm" else nn.GRU
        self.rnn = kind(m.noise_dim, s.rnn_hidden, batch_first=True)
        channels, rest = shape[0], tuple(shape[1:])
        self.painters = nn.ModuleList(
            part_body(config, s.rnn_hidden, (channels + (t > 0), *rest)) for t in range(s.parts))

    def forward(self, z: torch.Tensor) -> tuple[list, list]:
        """z: N x (parts · noise_dim) -> ([colour_t], [α_t]) with α_1 = 1 (a ones tensor), α_t in [0, 1]."""
        n = z.shape[0]
        h, _ = self.rnn(z.view(n, self.parts, self.noise_dim))
        colours, alphas = [], []
        for t, painter in enumerate(self.painters):
            x = painter(h[:, t]).view(n, self.shape[0] + (t > 0), *self.shape[1:])
            if t == 0:
                colours.append(x)
                alphas.append(torch.ones_like(x[:, :1]))
            else:
                colours.append(x[:, :-1])
                alphas.append((self.smooth(x[:, -1:]) + 1) / 2)
        return colours, alphas

    def smooth(self, a: torch.Tensor) -> torch.Tensor:
        """The alpha channel averaged over pool x pool blocks and enlarged back bilinearly (pool 1: as it is)."""
        if self.pool == 1:
            return a
        return F.interpolate(F.avg_pool2d(a, self.pool), size=a.shape[-2:], mode="bilinear", align_corners=False)


class CompositeAlgorithm(StagedAlgorithm):
    name = "composite"
    section = "composite"
    settings = CompositeSettings
    base_sections = ("data", "model", "optim", "train", "tricks")
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        shape = tuple(dataset.shape)
        if nets is None or "generator" in nets:
            self.nets["generator"] = CompositeGenerator(config, shape).to(device)
        if nets is None:
            self.nets["discriminator"] = Discriminator(config, shape, 0, projection=False).to(device)

    # -- what the config, the studio and the CLI know beforehand ------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        if config.data.dataset in LOW_DIM_DATASETS:
            raise ConfigError(f"algorithm = 'composite' lays image parts over one another, but data.dataset = "
                              f"{config.data.dataset!r}; use fashion_mnist, mnist, cifar10 or folder.")

    @classmethod
    def declare(cls, config) -> Declaration:
        n = config.composite.parts
        plots = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"),
                             ("g_gan", "G's GAN term", "#2ca02c"), ("alpha_reg", "alpha regulariser", "#d62728"))),
                 ("D", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728"))),
                 ("Part coverage (mean alpha)",
                  tuple((f"coverage_{t}", f"part {t}", COLOURS[t - 1]) for t in range(2, n + 1))),
                 ("Share of the image each part shows",
                  tuple((f"visible_{t}", f"part {t}", COLOURS[t - 1]) for t in range(1, n + 1))),
                 ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))))
        plots = tuple(p for p in plots if p[1])  # one part: no coverage to plot
        return Declaration(steerable=True, plots=plots, terms=TERMS, settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()),
                           previews=data_previews(config), progress=(("D", "d_loss", ".3f"), ("G", "g_loss", ".3f")),
                           losses={"d_loss": "D's loss", "g_loss": "G's loss"})

    # -- inputs and outputs ----------------------------------------------------------------------------
    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        """z_1 .. z_n side by side: N x (parts · noise_dim), from N(0, I)."""
        c = self.config
        return {"z": draw_noise(n, c.composite.parts * c.model.noise_dim, "normal", rng)}

    def draw(self, inputs: dict, nets: dict) -> tuple[torch.Tensor, list]:
        colours, alphas = nets["generator"](inputs["z"])
        image, running = blend(colours, alphas)
        stages = []
        for t, (colour, alpha, after) in enumerate(zip(colours, alphas, running), 1):
            stages += [(f"part {t}", torch.cat([colour, alpha * 2 - 1], 1)), (f"after {t}", after)]
        return image, stages

    # -- one step ----------------------------------------------------------------------------------------
    def train_step(self, step: int, report: bool) -> dict:
        c, s = self.config, self.config.composite
        G, D = self.nets["generator"], self.nets["discriminator"]
        norms = report and c.tricks.grad_norms
        batch, last = c.data.batch_size, {}
        real, _ = self.dataset.sample(batch, self.rng)
        z = self.random_inputs(batch, self.rng)["z"]
        colours, alphas = G(z)
        fake, _ = blend(colours, alphas)

        d_real = D(real).logit
        d_fake = D(fake.detach()).logit
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")

        g_gan = F.softplus(-D(fake).logit).mean()
        reg = sum((alpha_regulariser(a, s.opacity).mean() for a in alphas[1:]), torch.zeros((), device=fake.device))
        g_loss = g_gan + s.alpha_weight * reg
        self.optimise("generator", g_loss, norms, last, "grad_norm_g")

        last.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(), g_gan=g_gan.detach(), alpha_reg=reg.detach())
        if report:
            last.update(d_real=torch.sigmoid(d_real).mean().detach(), d_fake=torch.sigmoid(d_fake).mean().detach())
            with torch.no_grad():
                for t, alpha in enumerate(alphas[1:], 2):
                    last[f"coverage_{t}"] = alpha.mean()
                for t, share in enumerate(visible_shares([a.detach() for a in alphas]), 1):
                    last[f"visible_{t}"] = share.mean()
        return last


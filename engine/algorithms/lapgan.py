"""LAPGAN (Denton et al. 2015): a Laplacian pyramid of GANs, each level adding the detail of its octave.

Levels are numbered from the coarsest, k = 0 .. L − 1 (lapgan.levels = L; 28×28 with L = 3: 7, 14, 28 pixels).
With down(x) the 2×2 mean (a box filter, halving the side) and up(x) a 2× bilinear enlargement, a real image I
gives its pyramid I_{L−1} = I, I_{k−1} = down(I_k), and at each finer level the low-pass image l_k = up(I_{k−1})
and the residual (the band-pass detail) h_k = I_k − l_k.

  level 0:     G₀(z₀) → a coarsest image;  D₀ tells G₀'s images from real I₀
  level k > 0: G_k(z_k, l_k) → a residual h̃_k;  D_k tells real pairs (h_k, l_k) from (h̃_k, l_k)

Every D minimises softplus(−D(real)) + softplus(D(fake)) and every G minimises softplus(−D(fake)) (the
non-saturating loss). As in the paper each level trains independently, every step, on the real pyramid of the
step's batch (G_k's condition is the real l_k, not a generated one), with its own Adam (or RMSprop, SGD) pair whose
learning rates are optim.lr_g and optim.lr_d times lapgan.lr_scale[k], live. Sampling chains the levels:

  I₀ = G₀(z₀),   I_k = clamp(up(I_{k−1}) + G_k(z_k, up(I_{k−1})), −1, 1)

G₀ and D₀ are fully connected, as the paper's coarsest level; the finer G_k are three 3×3 convolutions (batch
norm, ReLU, linear residual out) over l_k with z_k as an extra noise plane of the level's size (the paper's
"fourth colour plane"); the finer D_k are strided 4×4 convolutions over (h, l) stacked as channels (the paper adds
l to h before D's first convolution, so its D sees the image l + h; the first convolution here can form that sum).
The paper picks real or generated h for each D example with probability ½; here each step shows D_k a real and a
generated batch. The paper's down/up are a Gaussian blur and decimation and its expansion; the box filter and
bilinear enlargement here are the cheap analogues.

Stages (previews, `sample --stages`): I₀, then for each finer level its residual h̃_k (with
lapgan.show_residuals) and the image I_k; the last stage is the final image. One step draws, from the run's
generator in this order: a data batch, z₀ (N × lapgan.noise_dim, normal), then each finer level's noise plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.base import grad_norm, make_optimizer
from engine.algorithms.staged import StagedAlgorithm
from engine.events import Declaration
from engine.models import _dcgan_init
from engine.settings import LOW_DIM_DATASETS, ConfigError, _f

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
D_COLOUR, G_COLOUR = "#1f77b4", "#ff7f0e"


@dataclass
class LapganSettings:
    levels: int = _f(3, "pyramid levels; the coarsest is the image halved levels − 1 times and must be a whole number "
                        "of at least 4 pixels (28×28: 3 levels of 7, 14 and 28)", min=1, max=6)
    lr_scale: list = _f([1.0, 1.0, 1.0], "multipliers of optim.lr_g and optim.lr_d for each level, coarsest first (a "
                                         "level without one takes 1; extra ones are unused)", live=True)
    noise_dim: int = _f(100, "size of the coarsest level's noise z₀ (a finer level gets a noise plane the size of "
                             "its image)", min=1, max=1024)
    coarse_width: int = _f(512, "hidden units of the coarsest level's fully connected G₀ and D₀", min=8, max=8192)
    g_channels: int = _f(16, "feature maps of the finer levels' convolutional generators", min=4, max=512)
    d_channels: int = _f(32, "feature maps of the first layer of the finer levels' discriminators", min=4, max=512)
    show_residuals: bool = _f(True, "show each finer level's residual h̃ between the images in the stage rows")


# -- the pyramid -------------------------------------------------------------------------------------------------
def down(x: torch.Tensor) -> torch.Tensor:
    """Half the side: the mean of each 2×2 block."""
    return F.avg_pool2d(x, 2)


def up(x: torch.Tensor) -> torch.Tensor:
    """Twice the side: bilinear enlargement (pixel centres aligned, as torch's align_corners=False)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[I₀ (coarsest), ..., I_{L−1} = x]."""
    out = [x]
    for _ in range(levels - 1):
        out.insert(0, down(out[0]))
    return out


def level_sides(size: int, levels: int) -> list[int]:
    return [size >> (levels - 1 - k) for k in range(levels)]


def coarsest_side(size: int, levels: int) -> float:
    return size / 2 ** (levels - 1)


def images_only(config, name: str) -> None:
    d = config.data
    if d.dataset in LOW_DIM_DATASETS:
        raise ConfigError(f"algorithm = {name!r} makes images, but data.dataset = {d.dataset!r}; use fashion_mnist, "
                          f"mnist, cifar10 or folder.")


# -- networks -------------------------------------------------------------------------------------------------------
def conv_trunk(c_in: int, side: int, width: int, norm: bool = True) -> tuple[nn.Sequential, int]:
    """Strided 4×4 convolutions with LeakyReLU (batch norm after all but the first, with `norm`), at least two,
    halving the side while it is over 7 and doubling the width up to 8×; returns (trunk ending in Flatten, features)."""
    layers, channels, convs = [], c_in, 0
    while convs < 2 or side > 7:
        out = width * 2 ** min(convs, 3)
        layers.append(nn.Conv2d(channels, out, 4, 2, 1, bias=not (norm and convs)))
        if norm and convs:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.LeakyReLU(0.2))
        channels, side, convs = out, (side + 2 - 4) // 2 + 1, convs + 1
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * side * side


class ConvDiscriminator(nn.Module):
    """A DCGAN-style discriminator: conv_trunk and a linear logit."""

    def __init__(self, c_in: int, side: int, width: int):
        super().__init__()
        self.trunk, features = conv_trunk(c_in, side, width)
        self.head = nn.Linear(features, 1)
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)


class CoarseGenerator(nn.Module):
    """G₀: z → two hidden layers (batch norm, ReLU) → the coarsest image, tanh."""

    def __init__(self, noise_dim: int, shape: tuple, width: int):
        super().__init__()
        self.shape = tuple(shape)
        self.body = nn.Sequential(nn.Linear(noise_dim, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Linear(width, self.shape[0] * self.shape[1] * self.shape[2]), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(len(z), *self.shape)


class CoarseDiscriminator(nn.Module):
    """D₀: the flattened coarsest image → two hidden LeakyReLU layers → a logit."""

    def __init__(self, shape: tuple, width: int):
        super().__init__()
        size = shape[0] * shape[1] * shape[2]
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(size, width), nn.LeakyReLU(0.2), nn.Linear(width, width),
                                  nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        """The logit of x (`low`, None at level 0, is there so every level's D is called alike)."""
        return self.body(x).squeeze(1)


class ResidualGenerator(nn.Module):
    """G_k: (l, a noise plane) → three 3×3 convolutions → the residual h̃ (linear: residuals have either sign)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels + 1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, channels, 3, 1, 1))
        self.apply(_dcgan_init)

    def forward(self, low: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([low, noise], 1))


class PairDiscriminator(ConvDiscriminator):
    """D_k: a (residual, low-pass image) pair, stacked as channels."""

    def __init__(self, channels: int, side: int, width: int):
        super().__init__(2 * channels, side, width)

    def forward(self, h: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(torch.cat([h, low], 1))


def optimise(opts: list, loss: torch.Tensor, norms: dict | None = None, last: dict | None = None) -> None:
    """zero_grad, backward, (the gradient norms of `norms`: key -> module, into `last`), step."""
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for key, module in (norms or {}).items():
        last[key] = grad_norm(module)
    for opt in opts:
        opt.step()


class LapganAlgorithm(StagedAlgorithm):
    name = "lapgan"
    section = "lapgan"
    settings = LapganSettings
    base_sections = ("data", "optim", "train", "tricks")
    sampling_nets = ("generator",)  # all levels' generators, one ModuleList (one EMA copy)

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.lapgan
        channels, size = dataset.shape[0], dataset.shape[-1]
        self.levels = s.levels
        self.sides = level_sides(size, s.levels)
        self.opt_roles = {f"{role}{k}": role for k in range(s.levels) for role in ("g", "d")}
        if nets is None or "generator" in nets:
            coarse = CoarseGenerator(s.noise_dim, (channels, self.sides[0], self.sides[0]), s.coarse_width)
            finer = [ResidualGenerator(channels, s.g_channels) for _ in self.sides[1:]]
            self.nets["generator"] = nn.ModuleList([coarse, *finer]).to(device)
        if nets is None or "discriminator" in nets:
            coarse = CoarseDiscriminator((channels, self.sides[0], self.sides[0]), s.coarse_width)
            finer = [PairDiscriminator(channels, side, s.d_channels) for side in self.sides[1:]]
            self.nets["discriminator"] = nn.ModuleList([coarse, *finer]).to(device)

    # -- what the config, the studio and the CLI know beforehand ------------------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        images_only(config, cls.name)
        s, size = config.lapgan, config.data.image_size
        coarsest = coarsest_side(size, s.levels)
        if coarsest < 4 or not coarsest.is_integer():
            allowed = [n for n in range(1, 7) if coarsest_side(size, n) >= 4 and coarsest_side(size, n).is_integer()]
            raise ConfigError(f"lapgan.levels = {s.levels} does not fit data.image_size = {size}: the coarsest level "
                              f"would be {coarsest:g} pixels wide, but it must be a whole number of at least 4; use "
                              f"{', '.join(map(str, allowed[:-1]))} or {allowed[-1]}.")
        bad = [v for v in s.lr_scale if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1000]
        if bad:
            raise ConfigError(f"lapgan.lr_scale = {s.lr_scale!r} is not allowed: it must be a list of numbers > 0 and "
                              f"<= 1000, one per level from the coarsest.")

    @classmethod
    def declare(cls, config) -> Declaration:
        sides = level_sides(config.data.image_size, config.lapgan.levels)
        plots = tuple((f"Level {k}: {side}×{side}", ((f"d_loss_{k}", f"D{k} loss", D_COLOUR),
                                                       (f"g_loss_{k}", f"G{k} loss", G_COLOUR)))
                      for k, side in enumerate(sides))
        norms = tuple(item for k in range(len(sides)) for item in (
            (f"grad_norm_d{k}", f"|∇D{k}|", COLOURS[2 * k % 8]),
            (f"grad_norm_g{k}", f"|∇G{k}|", COLOURS[2 * k % 8 + 1])))
        losses = {f"{r}_loss_{k}": f"{r.upper()}{k}'s loss" for k in range(len(sides)) for r in ("d", "g")}
        progress = tuple((f"{r.upper()}{k}", f"{r}_loss_{k}", ".3f") for k in range(len(sides)) for r in ("d", "g"))
        return Declaration(steerable=True, plots=plots + (("Gradient norms", norms),), settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()), previews=("images",), progress=progress, losses=losses)

    # -- optimisers: one pair per level, the level's lr_scale applied ----------------------------------------------
    def scale(self, k: int) -> float:
        scales = self.config.lapgan.lr_scale
        return float(scales[k]) if k < len(scales) else 1.0

    def build_optimizers(self) -> None:
        o = self.config.optim
        for k in range(self.levels):
            self.opts[f"g{k}"] = make_optimizer(o.optimizer_g, self.nets["generator"][k].parameters(),
                                                o.lr_g * self.scale(k), tuple(o.betas_g))
            self.opts[f"d{k}"] = make_optimizer(o.optimizer_d, self.nets["discriminator"][k].parameters(),
                                                o.lr_d * self.scale(k), tuple(o.betas_d))

    def settings_changed(self) -> None:
        super().settings_changed()
        o = self.config.optim
        for k in range(self.levels):
            for role, lr in (("g", o.lr_g), ("d", o.lr_d)):
                for group in self.opts[f"{role}{k}"].param_groups if f"{role}{k}" in self.opts else ():
                    group["lr"] = lr * self.scale(k)

    # -- inputs and outputs ----------------------------------------------------------------------------------------
    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        """z0: N × noise_dim; z1 .. : N × 1 × side × side noise planes of the finer levels; all N(0, 1)."""
        inputs = {"z0": torch.randn(n, self.config.lapgan.noise_dim, generator=rng, device=rng.device)}
        for k, side in enumerate(self.sides[1:], 1):
            inputs[f"z{k}"] = torch.randn(n, 1, side, side, generator=rng, device=rng.device)
        return inputs

    def draw(self, inputs: dict, nets: dict) -> tuple[torch.Tensor, list]:
        G = nets["generator"]
        image = G[0](inputs["z0"])
        stages = [("I0", image)]
        for k in range(1, self.levels):
            low = up(image)
            residual = G[k](low, inputs[f"z{k}"])
            image = (low + residual).clamp(-1, 1)
            if self.config.lapgan.show_residuals:
                stages.append((f"h{k}", residual.clamp(-1, 1)))
            stages.append((f"I{k}", image))
        return image, stages

    # -- one step -------------------------------------------------------------------------------------------------
    def train_step(self, step: int, report: bool) -> dict:
        c = self.config
        G, D = self.nets["generator"], self.nets["discriminator"]
        norms = report and c.tricks.grad_norms
        x, _ = self.dataset.sample(c.data.batch_size, self.rng)
        z = self.random_inputs(len(x), self.rng)
        real_pyramid = pyramid(x, self.levels)
        lows = [None] + [up(image) for image in real_pyramid[:-1]]  # l_k = up(I_{k−1}), from the real pyramid
        reals = [real_pyramid[0]] + [real_pyramid[k] - lows[k] for k in range(1, self.levels)]  # I₀, then h_k
        fakes = [G[0](z["z0"])] + [G[k](lows[k], z[f"z{k}"]) for k in range(1, self.levels)]
        last = {}

        # every D_k on its level's real and G_k's fake (G's output held fixed)
        d_losses = [F.softplus(-D[k](reals[k], lows[k])).mean() + F.softplus(D[k](fakes[k].detach(), lows[k])).mean()
                    for k in range(self.levels)]
        optimise([self.opts[f"d{k}"] for k in range(self.levels)], sum(d_losses),
                 {f"grad_norm_d{k}": D[k] for k in range(self.levels)} if norms else None, last)

        # every G_k against its updated D_k (D's weights need no gradient here)
        D.requires_grad_(False)
        try:
            g_losses = [F.softplus(-D[k](fakes[k], lows[k])).mean() for k in range(self.levels)]
        finally:
            D.requires_grad_(True)
        optimise([self.opts[f"g{k}"] for k in range(self.levels)], sum(g_losses),
                 {f"grad_norm_g{k}": G[k] for k in range(self.levels)} if norms else None, last)
        for k in range(self.levels):
            last[f"d_loss_{k}"], last[f"g_loss_{k}"] = d_losses[k].detach(), g_losses[k].detach()
        return last


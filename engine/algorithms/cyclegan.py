"""Translation learnt from unpaired sets: CycleGAN (Zhu et al. 2017) and DistanceGAN (Benaim and Wolf 2017).

CycleGAN: two generators G: A → B and F: B → A, two PatchGAN discriminators D_B and D_A, least-squares GAN loss ℓ
(cyclegan.gan_loss). With a, b drawn independently from the two training sets:

  G, F minimise  ℓ(D_B(G(a)), real) + ℓ(D_A(F(b)), real)
                 + λ_cyc (|F(G(a)) − a|₁ + |G(F(b)) − b|₁)
                 + λ_cyc · λ_id (|G(b) − b|₁ + |F(a) − a|₁)              (identity; λ_id = 0.5 in the paper)
  D_B minimises  ½ [ℓ(D_B(b), real) + ℓ(D_B(pool_B(G(a))), fake)], D_A likewise with pool_A(F(b)).

The pools hold the last pool_size generated images of each domain (engine.algorithms.translation.ImagePool); they
are saved in checkpoints so a resumed run continues bit for bit. One step: a, b, then G and F's step, then the
pools' draws and the two D steps.

DistanceGAN (one-sided): G: A → B and D_B only; G keeps pairwise distances. With μ, σ the mean and standard
deviation of the L1 distance (per pixel) between random pairs of training images of each domain (estimated once,
from distancegan.distance_samples images of each, drawn with the run's seed):

  G minimises ℓ(D_B(G(a)), real) + λ_d · mean over pairs i < j of the batch of
              | (|a_i − a_j|₁ − μ_A) / σ_A − (|G(a_i) − G(a_j)|₁ − μ_B) / σ_B |
  D_B minimises ½ [ℓ(D_B(b), real) + ℓ(D_B(G(a)), fake)].
One step: a, b, then D_B's step, then G's against the updated D_B.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.algorithms.translation import ImagePool, TranslationAlgorithm, TranslationSettings, gan_loss
from engine.img2img.nets import PatchDiscriminator, ResnetGenerator
from engine.settings import _f

GAN_LOSSES = ("lsgan", "vanilla")


@dataclass
class CycleGanSettings(TranslationSettings):
    task: str = _f("edges_unpaired", "built-in task: items and edge maps of other items (unpaired), or a paired task "
                                     "learnt without its pairs", choices=("edges_unpaired", "edges"))
    gan_loss: str = _f("lsgan", "GAN loss: least squares (the paper) or cross-entropy", choices=GAN_LOSSES)
    cycle_weight: float = _f(10.0, "λ_cyc: weight of the cycle-consistency L1 terms", min=0.0, max=1000.0, live=True,
                             alias="cycle_weight")
    identity_weight: float = _f(0.5, "λ_id: weight of the identity terms, times λ_cyc", min=0.0, max=100.0, live=True,
                                alias="identity_weight")
    pool_size: int = _f(50, "generated images kept in each pool for the discriminators (0: none)", min=0, max=1000)
    g_filters: int = _f(16, "filters of each generator's first layer (the paper: 64)", min=4, max=512)
    g_blocks: int = _f(4, "residual blocks of each generator (the paper: 6 at 128 px, 9 at 256)", min=1, max=32)
    d_filters: int = _f(32, "filters of each PatchGAN's first layer (the paper: 64)", min=4, max=512)
    d_layers: int = _f(1, "stride-2 layers of each PatchGAN: patches of 16 px (1), 34 (2) or 70 (3)", min=1, max=5)


@dataclass
class DistanceGanSettings(TranslationSettings):
    task: str = _f("edges_unpaired", "built-in task: items and edge maps of other items (unpaired), or a paired task "
                                     "learnt without its pairs", choices=("edges_unpaired", "edges"))
    gan_loss: str = _f("lsgan", "GAN loss: least squares or cross-entropy", choices=GAN_LOSSES)
    distance_weight: float = _f(1.0, "λ_d: weight of the distance-keeping term", min=0.0, max=1000.0, live=True,
                                alias="distance_weight")
    distance_samples: int = _f(1000, "images of each domain that estimate the distances' mean and deviation",
                               min=4, max=100000)
    g_filters: int = _f(16, "filters of the generator's first layer", min=4, max=512)
    g_blocks: int = _f(4, "residual blocks of the generator", min=1, max=32)
    d_filters: int = _f(32, "filters of the PatchGAN's first layer", min=4, max=512)
    d_layers: int = _f(1, "stride-2 layers of the PatchGAN: patches of 16 px (1), 34 (2) or 70 (3)", min=1, max=5)


CYCLE_PLOTS = (("Generators", (("g_gan", "GAN terms", "#ff7f0e"), ("cycle", "cycle L1", "#2ca02c"),
                               ("identity", "identity L1", "#9467bd"))),
               ("Discriminators", (("d_a_loss", "D_A loss", "#1f77b4"), ("d_b_loss", "D_B loss", "#17becf"))),
               ("Gradient norms", (("grad_norm_d", "|∇D_A, D_B|", "#1f77b4"), ("grad_norm_g", "|∇G, F|", "#ff7f0e"))))
DISTANCE_PLOTS = (("Losses", (("d_loss", "D_B loss", "#1f77b4"), ("g_gan", "G's GAN term", "#ff7f0e"),
                              ("distance", "distance term", "#2ca02c"))),
                  ("Gradient norms", (("grad_norm_d", "|∇D_B|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))))


class CycleGanAlgorithm(TranslationAlgorithm):
    name = "cyclegan"
    section = "cyclegan"
    settings = CycleGanSettings
    sampling_nets = ("g_ab", "g_ba")
    opt_roles = {"g_ab": "g", "g_ba": "g", "d_a": "d", "d_b": "d"}
    tasks = ("edges_unpaired", "edges")

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = getattr(config, self.section)
        c_a, c_b = dataset.input_shape[0], dataset.shape[0]
        wanted = lambda name: nets is None or name in nets
        for name, c_in, c_out in (("g_ab", c_a, c_b), ("g_ba", c_b, c_a)):
            if wanted(name) and name in self.sampling_nets:
                self.nets[name] = ResnetGenerator(c_in, c_out, s.g_filters, s.g_blocks).to(device)
        for name, c in (("d_a", c_a), ("d_b", c_b)):
            if nets is None and name in self.opt_roles:
                self.nets[name] = PatchDiscriminator(c, s.d_filters, s.d_layers, norm="instance").to(device)
        self.pools = {"a": ImagePool(getattr(s, "pool_size", 0)), "b": ImagePool(getattr(s, "pool_size", 0))}

    @classmethod
    def declare(cls, config):
        return cls.declaration(config, CYCLE_PLOTS, {"g_loss": "G and F's whole loss"},
                               (("D_A", "d_a_loss", ".3f"), ("D_B", "d_b_loss", ".3f"), ("cycle", "cycle", ".4f")),
                               {"d_a_loss": "D_A's loss", "d_b_loss": "D_B's loss", "g_loss": "G and F's loss"})

    @classmethod
    def class_directions(cls) -> tuple:
        return (("AtoB", "_ab"), ("BtoA", "_ba"))

    def translate(self, x: torch.Tensor, direction: str, nets: dict) -> torch.Tensor:
        return nets["g_ab" if direction == "AtoB" else "g_ba"](x)

    def train_step(self, step: int, report: bool) -> dict:
        s, n = self.config.cyclegan, self.config.data.batch_size
        G, F_ = self.nets["g_ab"], self.nets["g_ba"]
        D_A, D_B = self.nets["d_a"], self.nets["d_b"]
        norms = report and self.config.tricks.grad_norms
        a, b = self.dataset.sample_a(n, self.rng), self.dataset.sample_b(n, self.rng)
        last = {}
        fake_b, fake_a = G(a), F_(b)
        for d in (D_A, D_B):
            d.requires_grad_(False)
        g_gan = gan_loss(D_B(fake_b), True, s.gan_loss) + gan_loss(D_A(fake_a), True, s.gan_loss)
        cycle = (F_(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
        g_loss = g_gan + s.cycle_weight * cycle
        if s.identity_weight > 0:
            identity = (G(b) - b).abs().mean() + (F_(a) - a).abs().mean()
            g_loss = g_loss + s.cycle_weight * s.identity_weight * identity
            last["identity"] = identity.detach()
        self.optimise_many(("g_ab", "g_ba"), g_loss, norms, last, "grad_norm_g")
        for d in (D_A, D_B):
            d.requires_grad_(True)
        pooled_b = self.pools["b"].query(fake_b.detach(), self.rng)
        pooled_a = self.pools["a"].query(fake_a.detach(), self.rng)
        d_b_loss = 0.5 * (gan_loss(D_B(b), True, s.gan_loss) + gan_loss(D_B(pooled_b), False, s.gan_loss))
        d_a_loss = 0.5 * (gan_loss(D_A(a), True, s.gan_loss) + gan_loss(D_A(pooled_a), False, s.gan_loss))
        self.optimise_many(("d_a", "d_b"), d_a_loss + d_b_loss, norms, last, "grad_norm_d")
        last.update(g_loss=g_loss.detach(), g_gan=g_gan.detach(), cycle=cycle.detach(), d_a_loss=d_a_loss.detach(),
                    d_b_loss=d_b_loss.detach())
        return last

    def state(self) -> dict:
        return {"pools": {name: pool.state() for name, pool in self.pools.items()}}

    def load_state(self, state: dict) -> None:
        for name, images in (state.get("pools") or {}).items():
            if name in self.pools:
                self.pools[name].load(images, self.device)


class DistanceGanAlgorithm(CycleGanAlgorithm):
    name = "distancegan"
    section = "distancegan"
    settings = DistanceGanSettings
    sampling_nets = ("g_ab",)
    opt_roles = {"g_ab": "g", "d_b": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        self.moments = None  # (μ_A, σ_A, μ_B, σ_B), estimated at the first step

    @classmethod
    def declare(cls, config):
        return cls.declaration(config, DISTANCE_PLOTS, {"g_loss": "G's whole loss"},
                               (("D", "d_loss", ".3f"), ("distance", "distance", ".4f")),
                               {"d_loss": "D_B's loss", "g_loss": "G's loss"})

    @classmethod
    def class_directions(cls) -> tuple:
        return (("AtoB", ""),)

    @staticmethod
    def pair_distances(x: torch.Tensor) -> torch.Tensor:
        """The L1 distance per pixel of every pair i < j of the batch."""
        flat = x.flatten(1)
        d = torch.cdist(flat, flat, p=1) / flat.shape[1]
        i, j = torch.triu_indices(len(x), len(x), 1, device=x.device)
        return d[i, j]

    def estimate_moments(self) -> tuple:
        s = self.config.distancegan
        rng = torch.Generator(device=self.rng.device).manual_seed(self.config.train.seed + 21)
        out = []
        for draw in (self.dataset.sample_a, self.dataset.sample_b):
            d = torch.cat([self.pair_distances(part) for part in draw(s.distance_samples, rng).split(250)])
            out += [float(d.mean()), float(d.std().clamp_min(1e-6))]
        return tuple(out)

    def train_step(self, step: int, report: bool) -> dict:
        s, n = self.config.distancegan, self.config.data.batch_size
        if self.moments is None:
            self.moments = self.estimate_moments()
        mu_a, sd_a, mu_b, sd_b = self.moments
        G, D = self.nets["g_ab"], self.nets["d_b"]
        norms = report and self.config.tricks.grad_norms
        a, b = self.dataset.sample_a(n, self.rng), self.dataset.sample_b(n, self.rng)
        last = {}
        fake = G(a)
        d_loss = 0.5 * (gan_loss(D(b), True, s.gan_loss) + gan_loss(D(fake.detach()), False, s.gan_loss))
        self.optimise("d_b", d_loss, norms, last, "grad_norm_d")
        g_gan = gan_loss(D(fake), True, s.gan_loss)
        distance = ((self.pair_distances(a) - mu_a) / sd_a - (self.pair_distances(fake) - mu_b) / sd_b).abs().mean()
        g_loss = g_gan + s.distance_weight * distance
        self.optimise("g_ab", g_loss, norms, last, "grad_norm_g")
        last.update(d_loss=d_loss.detach(), g_gan=g_gan.detach(), distance=distance.detach(), g_loss=g_loss.detach())
        return last

    def state(self) -> dict:
        return {"moments": list(self.moments) if self.moments is not None else None}

    def load_state(self, state: dict) -> None:
        moments = state.get("moments")
        self.moments = tuple(moments) if moments is not None else None

"""DTN, the Domain Transfer Network (Taigman, Polyak and Wolf 2017): unsupervised cross-domain generation that
keeps a fixed function f constant across the mapping.

G = g ∘ f: f is fixed (here the shipped Fashion-MNIST evaluator's 128 features, trained on items, the source
domain S = A); g, a decoder, is learnt. D is a ternary classifier: 1 = G of a source image, 2 = G of a target
image, 3 = a real target image (T = B). With CE the cross-entropy of D's three logits and x_s, x_t drawn
independently from the two training sets:

  D minimises  CE(D(G(x_s)), 1) + CE(D(G(x_t)), 2) + CE(D(x_t), 3)
  g minimises  CE(D(G(x_s)), 3) + CE(D(G(x_t)), 3)                          (L_GANG)
               + α · |f(x_s) − f(G(x_s))|²                                 (L_CONST, f-constancy, mean squares)
               + β · |x_t − G(x_t)|²                                        (L_TID, identity on T, mean squares)
               + γ · TV(G(x_s))                                             (the paper's L_TV, B = 1; 0 by default)

f reads grey 28 x 28 images, so images of other sizes are resized for it (with antialiasing) and DTN needs grey
images. One step: x_s, x_t, then D's step, then g's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.algorithms.translation import TranslationAlgorithm, TranslationSettings
from engine.img2img.metrics import to_evaluator
from engine.img2img.nets import ClassDiscriminator, FeatureDecoder
from engine.settings import ConfigError, _f

FEATURES = 128  # the evaluator's feature size
PLOTS = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_gan", "L_GANG", "#ff7f0e"),
                     ("const", "L_CONST (f-constancy)", "#2ca02c"), ("tid", "L_TID (identity on T)", "#9467bd"))),
         ("D's classes", (("d_source", "D says G(source) is G(source)", "#1f77b4"),
                          ("d_real", "D says real is real", "#2ca02c"))),
         ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇g|", "#ff7f0e"))))


@dataclass
class DtnSettings(TranslationSettings):
    task: str = _f("edges_unpaired", "built-in task: items (source) and edge maps of other items (target)",
                   choices=("edges_unpaired", "edges"))
    const_weight: float = _f(15.0, "α: weight of the f-constancy term L_CONST", min=0.0, max=1e4, live=True,
                             alias="const_weight")
    tid_weight: float = _f(15.0, "β: weight of the identity term on the target domain L_TID", min=0.0, max=1e4,
                           live=True, alias="tid_weight")
    tv_weight: float = _f(0.0, "γ: weight of the total-variation term L_TV", min=0.0, max=1e3, live=True)
    g_filters: int = _f(32, "filters of the decoder g's last hidden layer (doubled per layer towards the start)",
                        min=4, max=512)
    d_filters: int = _f(32, "filters of D's first layer", min=4, max=512)


class DtnAlgorithm(TranslationAlgorithm):
    name = "dtn"
    section = "dtn"
    settings = DtnSettings
    sampling_nets = ("decoder",)
    opt_roles = {"decoder": "g", "discriminator": "d"}
    tasks = ("edges_unpaired", "edges")

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.dtn
        c, size = dataset.shape[0], dataset.shape[-1]
        if nets is None or "decoder" in nets:
            self.nets["decoder"] = FeatureDecoder(FEATURES, c, size, s.g_filters).to(device)
        if nets is None:
            self.nets["discriminator"] = ClassDiscriminator(c, size, 3, s.d_filters).to(device)
        self._f = {}  # f on each device it is asked on: the live scores translate on the CPU, training on a GPU

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.data.channels != 1:
            raise ConfigError("algorithm = 'dtn' keeps the evaluator's features constant, and the evaluator reads grey "
                              "images, but data.channels = 3; use data.channels = 1.")

    @classmethod
    def declare(cls, config):
        return cls.declaration(config, PLOTS, {"g_loss": "g's whole loss", "tv": "L_TV"},
                               (("D", "d_loss", ".3f"), ("const", "const", ".4f"), ("tid", "tid", ".4f")),
                               {"d_loss": "D's loss", "g_loss": "g's loss"})

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed f: the evaluator's 128 features (never trained; not saved with the run)."""
        if x.device not in self._f:
            from engine.metrics.evaluator import load_evaluator
            self._f[x.device] = copy.deepcopy(load_evaluator().body).to(x.device).requires_grad_(False).eval()
        return self._f[x.device](to_evaluator(x))

    def translate(self, x: torch.Tensor, direction: str, nets: dict) -> torch.Tensor:
        return nets["decoder"](self.f(x))

    def train_step(self, step: int, report: bool) -> dict:
        s, n = self.config.dtn, self.config.data.batch_size
        g, D = self.nets["decoder"], self.nets["discriminator"]
        norms = report and self.config.tricks.grad_norms
        x_s, x_t = self.dataset.sample_a(n, self.rng), self.dataset.sample_b(n, self.rng)
        last = {}
        f_s = self.f(x_s)
        from_s, from_t = g(f_s), g(self.f(x_t))
        labels = [torch.full((n,), k, dtype=torch.long, device=x_s.device) for k in range(3)]
        d_s, d_t, d_real = D(from_s.detach()), D(from_t.detach()), D(x_t)
        d_loss = F.cross_entropy(d_s, labels[0]) + F.cross_entropy(d_t, labels[1]) + F.cross_entropy(d_real, labels[2])
        self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")
        g_gan = F.cross_entropy(D(from_s), labels[2]) + F.cross_entropy(D(from_t), labels[2])
        const = F.mse_loss(self.f(from_s), f_s)
        tid = F.mse_loss(from_t, x_t)
        g_loss = g_gan + s.const_weight * const + s.tid_weight * tid
        if s.tv_weight > 0:
            tv = ((from_s[..., 1:, :-1] - from_s[..., :-1, :-1]) ** 2
                  + (from_s[..., :-1, 1:] - from_s[..., :-1, :-1]) ** 2 + 1e-8).sqrt().mean()
            g_loss = g_loss + s.tv_weight * tv
            last["tv"] = tv.detach()
        self.optimise("decoder", g_loss, norms, last, "grad_norm_g")
        last.update(d_loss=d_loss.detach(), g_gan=g_gan.detach(), const=const.detach(), tid=tid.detach(),
                    g_loss=g_loss.detach())
        if report:
            last.update(d_source=F.softmax(d_s, 1)[:, 0].mean().detach(), d_real=F.softmax(d_real, 1)[:, 2].mean().detach())
        return last

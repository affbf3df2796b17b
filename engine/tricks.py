"""Training tricks, each a small function (or one small class) a family calls from its step.

Network tricks (spectral norm, minibatch discrimination, virtual batch norm) are applied when the
networks are built (engine.models); these act on losses, inputs and weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def instance_noise_sigma(tricks, step: int) -> float:
    """σ of the Gaussian noise on D's inputs at `step`: constant, or falling linearly to 0."""
    if tricks.instance_noise <= 0:
        return 0.0
    if tricks.instance_noise_anneal_steps <= 0:
        return tricks.instance_noise
    return tricks.instance_noise * max(0.0, 1.0 - step / tricks.instance_noise_anneal_steps)


def add_instance_noise(x: Tensor, sigma: float, rng: torch.Generator) -> Tensor:
    if sigma <= 0:
        return x
    return x + sigma * torch.randn(x.shape, generator=rng, device=x.device)


def gradient_penalty(discriminator, real: Tensor, fake: Tensor, labels, rng: torch.Generator) -> Tensor:
    """WGAN-GP: (‖∇D(x̂)‖ − 1)² on random interpolates x̂ of real and fake samples."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=rng, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = discriminator(mixed, labels).logit
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(discriminator, real: Tensor, labels) -> Tensor:
    """R1 (Mescheder et al. 2018): ‖∇D(x)‖² on real samples, a zero-centred penalty; D's loss adds γ/2 of it."""
    real = real.detach().requires_grad_(True)
    out = discriminator(real, labels).logit
    (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


@torch.no_grad()
def clip_weights(module: torch.nn.Module, bound: float) -> None:
    """WGAN: clamp every weight to [−c, c]."""
    for p in module.parameters():
        p.clamp_(-bound, bound)


def pull_away(features: Tensor) -> Tensor:
    """EBGAN's pull-away term: mean squared cosine similarity between different samples' codes."""
    n = features.shape[0]
    if n < 2:
        return features.new_zeros(())
    s = F.normalize(features.flatten(1), dim=1)
    cos = s @ s.t()
    return (cos.pow(2).sum() - n) / (n * (n - 1))


def feature_matching(target_features: Tensor, fake_features: Tensor) -> Tensor:
    """Salimans et al. 2016: ‖E f(x) − E f(G(z))‖², averaged over the features."""
    return ((target_features.float().mean(0) - fake_features.float().mean(0)) ** 2).mean()


def info_parts(q: Tensor, categorical: list, cat_index: Tensor | None,
               continuous: Tensor | None, learned_variance: bool = False) -> tuple[Tensor, Tensor]:
    """InfoGAN's −L_I in its two parts: the summed cross-entropy of the categorical codes (0 when Q recovers
    them; log K for a K-way code it cannot read), and the Gaussian NLL of the continuous codes without its
    constant. With σ = 1, as the authors' code has it, that is ½ Σ (c − μ)², 0 when Q recovers them. With a
    learned variance it goes negative as σ shrinks, and 1/σ² (up to e⁶ here) scales the codes' gradient."""
    categorical_part = q.new_zeros(())
    offset = 0
    for j, c in enumerate(categorical):
        categorical_part = categorical_part + F.cross_entropy(q[:, offset:offset + c], cat_index[:, j])
        offset += c
    continuous_part = q.new_zeros(())
    if continuous is not None:
        n = continuous.shape[1]
        squared = (continuous - q[:, offset:offset + n]) ** 2
        if learned_variance:
            logvar = q[:, offset + n:offset + 2 * n].clamp(-6.0, 6.0)
            continuous_part = 0.5 * (squared * torch.exp(-logvar) + logvar).sum(1).mean()
        else:
            continuous_part = 0.5 * squared.sum(1).mean()
    return categorical_part, continuous_part


class HistoricalAverage:
    """Salimans et al. 2016: λ ‖θ − (1/t) Σ θ_i‖² for each module, with the running means kept."""

    def __init__(self, modules: dict):
        self.modules = modules
        self.average = {name: [p.detach().clone() for p in m.parameters()] for name, m in modules.items()}
        self.count = {name: 1 for name in modules}

    def penalty(self, name: str) -> Tensor:
        return sum(((p - a) ** 2).sum() for p, a in zip(self.modules[name].parameters(), self.average[name]))

    @torch.no_grad()
    def update(self, name: str) -> None:
        self.count[name] += 1
        torch._foreach_lerp_(self.average[name], [p.detach() for p in self.modules[name].parameters()],
                             1.0 / self.count[name])

    def state(self) -> dict:
        return {"history": self.average, "history_count": dict(self.count)}

    def load_state(self, state: dict, device) -> None:
        if state.get("history") is not None:
            self.average = {name: [t.to(device) for t in state["history"][name]] for name in self.modules}
            self.count = dict(state["history_count"])

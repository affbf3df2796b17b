"""Adversarial losses by name: each is a small (d_loss, g_loss) pair.

d_loss(real, fake, real_target) and g_loss(fake) take D's raw outputs (logits for the
sigmoid losses, critic values for the Wasserstein ones). real_target is 1 − s under
one-sided label smoothing; losses without targets ignore it. A new loss is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class Loss:
    name: str
    d_loss: Callable[[Tensor, Tensor, float], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    sigmoid_output: bool = False  # D's output is a logit; report D(x) as a probability
    wasserstein: bool = False  # report mean D(x) − mean D(G(z)) as the distance estimate
    clips_weights: bool = False  # WGAN: clamp D's weights to [−c, c] after each D step
    gradient_penalty: bool = False  # WGAN-GP: λ (‖∇D(x̂)‖ − 1)² on interpolates


def _bce_real(real: Tensor, target: float) -> Tensor:
    if target == 1.0:
        return F.softplus(-real).mean()
    return (target * F.softplus(-real) + (1.0 - target) * F.softplus(real)).mean()


def _gan_d(real: Tensor, fake: Tensor, target: float) -> Tensor:
    return _bce_real(real, target) + F.softplus(fake).mean()


LOSSES: dict[str, Loss] = {}


def register(loss: Loss) -> Loss:
    LOSSES[loss.name] = loss
    return loss


# Goodfellow et al. 2014: G minimises log(1 − D(G(z))), which saturates when D wins.
register(Loss("minimax", _gan_d, lambda fake: -F.softplus(fake).mean(), sigmoid_output=True))
# The same game with G maximising log D(G(z)) instead: strong gradients early on.
register(Loss("non_saturating", _gan_d, lambda fake: F.softplus(-fake).mean(), sigmoid_output=True))
# Arjovsky et al. 2017, with weight clipping (Algorithm 1: RMSProp, c = 0.01, n_critic = 5).
register(Loss("wgan", lambda real, fake, t: fake.mean() - real.mean(), lambda fake: -fake.mean(),
              wasserstein=True, clips_weights=True))
# Gulrajani et al. 2017: the same critic loss plus the gradient penalty added by the trainer.
register(Loss("wgan_gp", lambda real, fake, t: fake.mean() - real.mean(), lambda fake: -fake.mean(),
              wasserstein=True, gradient_penalty=True))
# Mao et al. 2017 (a = 0, b = c = 1).
register(Loss("least_squares",
              lambda real, fake, t: 0.5 * ((real - t) ** 2).mean() + 0.5 * (fake ** 2).mean(),
              lambda fake: 0.5 * ((fake - 1.0) ** 2).mean()))
# Hinge loss (Lim & Ye 2017; Miyato et al. 2018).
register(Loss("hinge", lambda real, fake, t: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
              lambda fake: -fake.mean()))


def get_loss(name: str) -> Loss:
    return LOSSES[name]


def gradient_penalty(discriminator, real: Tensor, fake: Tensor, labels, generator: torch.Generator) -> Tensor:
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=generator, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = discriminator(mixed, labels).logit
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()

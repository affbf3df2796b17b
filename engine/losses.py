"""Adversarial losses by name: each is a small (d_loss, g_loss) pair.

d_loss(real, fake, real_target, ctx) and g_loss(fake, ctx) take D's raw outputs (logits
for the sigmoid losses, critic values for the Wasserstein ones, energies for the
energy-based ones). real_target is 1 − s under one-sided label smoothing; losses without
targets ignore it. ctx (a LossContext) carries what a few losses need beyond D's outputs:
the input batches (loss-sensitive margin), the loss settings, persistent state (BEGAN's
k_t) and a dict where a loss leaves its own live quantities. A new loss is one entry.
They are the GAN family's (engine.algorithms.gan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass
class LossContext:
    settings: object = None  # the run's LossConfig (margin, gamma, lambda, ...)
    real_x: Tensor | None = None
    fake_x: Tensor | None = None
    state: dict = field(default_factory=dict)  # kept across steps and in checkpoints
    report: dict = field(default_factory=dict)  # live quantities for the metrics stream


@dataclass(frozen=True)
class Loss:
    name: str
    d_loss: Callable[..., Tensor]
    g_loss: Callable[..., Tensor]
    sigmoid_output: bool = False  # D's output is a logit; report D(x) as a probability
    wasserstein: bool = False  # report mean D(x) − mean D(G(z)) as the distance estimate
    clips_weights: bool = False  # WGAN: clamp D's weights to [−c, c] after each D step
    gradient_penalty: bool = False  # WGAN-GP: λ (‖∇D(x̂)‖ − 1)² on interpolates
    uses_target: bool = False  # honours one-sided label smoothing
    energy: str = ""  # "mse" or "l1": D is an autoencoder and its output is the reconstruction error
    real_is_low: bool = False  # D's output is an energy or a loss: low on real data, high on fakes
    # G is built like the autoencoder's decoder (no batch norm, ELU, a linear output), as BEGAN's is
    decoder_generator: bool = False
    # called after each generator step with D's outputs on the last real batch and on G's batch
    after_step: Callable[[LossContext, Tensor, Tensor], None] | None = None


def _bce_real(real: Tensor, target: float) -> Tensor:
    if target == 1.0:
        return F.softplus(-real).mean()
    return (target * F.softplus(-real) + (1.0 - target) * F.softplus(real)).mean()


def _gan_d(real: Tensor, fake: Tensor, target: float, ctx=None) -> Tensor:
    return _bce_real(real, target) + F.softplus(fake).mean()


def _critic_d(real: Tensor, fake: Tensor, target: float, ctx=None) -> Tensor:
    return fake.mean() - real.mean()


def _critic_g(fake: Tensor, ctx=None) -> Tensor:
    return -fake.mean()


LOSSES: dict[str, Loss] = {}


def register(loss: Loss) -> Loss:
    LOSSES[loss.name] = loss
    return loss


# Goodfellow et al. 2014: G minimises log(1 − D(G(z))), which saturates when D wins.
register(Loss("minimax", _gan_d, lambda fake, ctx=None: -F.softplus(fake).mean(), sigmoid_output=True,
              uses_target=True))
# The same game with G maximising log D(G(z)) instead: strong gradients early on.
register(Loss("non_saturating", _gan_d, lambda fake, ctx=None: F.softplus(-fake).mean(), sigmoid_output=True,
              uses_target=True))
# Arjovsky et al. 2017, with weight clipping (Algorithm 1: RMSProp, c = 0.01, n_critic = 5).
register(Loss("wgan", _critic_d, _critic_g, wasserstein=True, clips_weights=True))
# Gulrajani et al. 2017: the same critic loss plus the gradient penalty added by the trainer.
register(Loss("wgan_gp", _critic_d, _critic_g, wasserstein=True, gradient_penalty=True))
# Mao et al. 2017 (a = 0, b = c = 1).
register(Loss("least_squares",
              lambda real, fake, t, ctx=None: 0.5 * ((real - t) ** 2).mean() + 0.5 * (fake ** 2).mean(),
              lambda fake, ctx=None: 0.5 * ((fake - 1.0) ** 2).mean(), uses_target=True))
# Hinge loss (Lim & Ye 2017; Miyato et al. 2018).
register(Loss("hinge", lambda real, fake, t, ctx=None: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
              _critic_g))


# -- energy-based: D is an autoencoder, D(x) = its reconstruction error ------------------------

def _ebgan_d(real: Tensor, fake: Tensor, target: float, ctx: LossContext) -> Tensor:
    """Zhao et al. 2017: L_D = D(x) + max(0, m − D(G(z)))."""
    margin = ctx.settings.margin
    hinge = F.relu(margin - fake)
    ctx.report["energy_real"] = real.mean().detach()
    ctx.report["energy_fake"] = fake.mean().detach()
    ctx.report["margin_active"] = (fake < margin).float().mean().detach()
    return real.mean() + hinge.mean()


def _ebgan_g(fake: Tensor, ctx: LossContext) -> Tensor:
    """G lowers the energy of its samples (EBGAN and BEGAN alike)."""
    return fake.mean()


register(Loss("ebgan", _ebgan_d, _ebgan_g, energy="mse", real_is_low=True))


def _began_d(real: Tensor, fake: Tensor, target: float, ctx: LossContext) -> Tensor:
    """Berthelot et al. 2017: L_D = L(x) − k_t L(G(z_D)); k_t is updated after the G step."""
    return real.mean() - ctx.state.get("k", 0.0) * fake.mean()


def _began_update(ctx: LossContext, real: Tensor, fake_g: Tensor) -> None:
    """k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z_G))), 0, 1); M = L(x) + |γ L(x) − L(G(z_G))|."""
    s = ctx.settings
    real, fake = float(real.mean()), float(fake_g.mean())
    balance = s.began_gamma * real - fake
    ctx.state["k"] = min(1.0, max(0.0, ctx.state.get("k", 0.0) + s.began_lambda_k * balance))
    ctx.report.update(began_k=ctx.state["k"], convergence=real + abs(balance), energy_real=real, energy_fake=fake)


register(Loss("began", _began_d, _ebgan_g, energy="l1", real_is_low=True, after_step=_began_update,
              decoder_generator=True))


# -- loss-sensitive GAN (Qi 2017) ------------------------------------------------------------

def sample_distance(a: Tensor, b: Tensor) -> Tensor:
    """Δ(x, G(z)): the mean absolute difference per pair (an ℓ1 distance divided by the dimension)."""
    return (a - b).abs().flatten(1).mean(1)


def _loss_sensitive_d(real: Tensor, fake: Tensor, target: float, ctx: LossContext) -> Tensor:
    """E L(x) + λ E (Δ(x, G(z)) + L(x) − L(G(z)))₊: fakes must cost at least Δ more than the real pair.

    L_θ is a loss, so it is kept non-negative: L = softplus(D's output). Unbounded below, the first
    term alone would let D lower L everywhere."""
    s = ctx.settings
    real, fake = F.softplus(real), F.softplus(fake)
    delta = s.ls_delta_scale * sample_distance(ctx.real_x, ctx.fake_x)
    violation = F.relu(delta + real - fake)
    ctx.report["ls_margin"] = delta.mean().detach()
    ctx.report["ls_violated"] = (violation > 0).float().mean().detach()
    return s.ls_real_weight * real.mean() + s.ls_lambda * violation.mean()


register(Loss("loss_sensitive", _loss_sensitive_d, lambda fake, ctx=None: F.softplus(fake).mean(), real_is_low=True))


def get_loss(name: str) -> Loss:
    return LOSSES[name]

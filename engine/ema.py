"""EMA copies of the sampling networks: what the window, the explorer, exports and the live metrics draw from.

The decay ramps up as (1 + t) / (10 + t) to the configured one (reached near t = 9 / (1 − decay)): a fixed
0.999 from step 1 kept 37 % of the random start after 1,000 steps, so the preview lied. Buffers (batch-norm
statistics) are G's. Statistics of the copy's own, measured on fixed inputs when it samples, brought
dcgan_fashion's preview at 1,000 steps from Fréchet 182.8 to 175 (G: 167.8) but LSGAN's and WGAN-GP's at
300 steps from under 394 to 423 and 399, so they are not used.
"""

from __future__ import annotations

import copy

import torch


def make_copies(nets: dict, names, decay: float) -> dict:
    return {name: copy.deepcopy(nets[name]).requires_grad_(False) for name in names} if decay > 0 else {}


@torch.no_grad()
def update(copies: dict, nets: dict, decay: float, step: int) -> None:
    """One EMA step of every copy's parameters toward its network's; buffers are copied from the network."""
    decay = min(decay, (1.0 + step) / (10.0 + step))
    for name, ema in copies.items():
        net = nets[name]
        torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)
        for ema_buffer, buffer in zip(ema.buffers(), net.buffers()):
            ema_buffer.copy_(buffer)

"""Built-in low-dimensional data: painter curves, 2-D mixtures, a spiral.

Every sampler draws from the torch.Generator it is given, so a run's data is
reproducible from its seed and checkpointed RNG state.
"""

from __future__ import annotations

import math

import torch

PAINTER_POINTS = 15
RING_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.02
GRID_SIDE = 5
GRID_SPACING = 2.0
GRID_STD = 0.05


def painter_x(device="cpu") -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, PAINTER_POINTS, device=device)


def ring_centres(device="cpu") -> torch.Tensor:
    angles = torch.arange(RING_MODES, device=device, dtype=torch.float32) * (2 * math.pi / RING_MODES)
    return torch.stack([RING_RADIUS * torch.cos(angles), RING_RADIUS * torch.sin(angles)], dim=1)


def grid_centres(device="cpu") -> torch.Tensor:
    coords = (torch.arange(GRID_SIDE, device=device, dtype=torch.float32) - (GRID_SIDE - 1) / 2) * GRID_SPACING
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


class PainterCurves:
    """y = a·x² + (a − 1) on 15 points of [−1, 1], a ~ U[1, 2] (the classic 'painter' toy)."""
    kind = "curves"
    shape = (PAINTER_POINTS,)
    num_classes = 0
    extent = (-1.0, 1.0, -1.0, 3.5)

    def __init__(self, device="cpu"):
        self.to(device)

    def to(self, device):
        self.device = torch.device(device)
        self.x = painter_x(self.device)
        return self

    def sample(self, n: int, generator: torch.Generator):
        a = 1.0 + torch.rand(n, 1, generator=generator, device=self.device)
        return a * self.x.pow(2) + (a - 1.0), None


class GaussianMixture2D:
    kind = "points"
    shape = (2,)

    def __init__(self, centres: torch.Tensor, std: float, extent: tuple, device="cpu"):
        self._centres_cpu = centres
        self.std = std
        self.extent = extent
        self.num_classes = len(centres)
        self.to(device)

    def to(self, device):
        self.device = torch.device(device)
        self.centres = self._centres_cpu.to(self.device)
        return self

    def sample(self, n: int, generator: torch.Generator):
        labels = torch.randint(0, len(self.centres), (n,), generator=generator, device=self.device)
        noise = torch.randn(n, 2, generator=generator, device=self.device) * self.std
        return self.centres[labels] + noise, labels


def ring8(device="cpu") -> GaussianMixture2D:
    r = RING_RADIUS + 1.0
    return GaussianMixture2D(ring_centres(), RING_STD, (-r, r, -r, r), device)


def grid25(device="cpu") -> GaussianMixture2D:
    r = GRID_SPACING * (GRID_SIDE - 1) / 2 + 1.5
    return GaussianMixture2D(grid_centres(), GRID_STD, (-r, r, -r, r), device)


class Spiral:
    """A two-turn spiral with a little Gaussian noise across it."""
    kind = "points"
    shape = (2,)
    num_classes = 0
    extent = (-3.0, 3.0, -3.0, 3.0)

    def __init__(self, device="cpu"):
        self.to(device)

    def to(self, device):
        self.device = torch.device(device)
        return self

    def sample(self, n: int, generator: torch.Generator):
        t = torch.sqrt(torch.rand(n, generator=generator, device=self.device)) * (4 * math.pi)
        r = t / (2 * math.pi)
        pts = torch.stack([r * torch.cos(t), r * torch.sin(t)], dim=1)
        return pts + 0.05 * torch.randn(n, 2, generator=generator, device=self.device), None

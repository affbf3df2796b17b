"""Scores of translated images against their true targets, and the live probe that measures them while training.

Images come in [−1, 1] and are scored in [0, 1]:
  - L1: mean absolute difference;
  - PSNR: 10 log10(1 / MSE) per image (data range 1), averaged over images (capped at 100 dB for equal images);
  - SSIM (Wang et al. 2004): an 11 x 11 Gaussian window (σ 1.5, shrunk to the image when smaller), C1 = 0.01²,
    C2 = 0.03², the mean of the SSIM map over valid positions and channels, averaged over images;
  - sharpness: the mean absolute Laplacian (3 x 3, 4-neighbour) of the images; reported beside the targets'
    (a blurred output has less than its targets);
  - Fréchet distance of the outputs to the targets in the shipped evaluator's feature space, for one-channel
    outputs (the evaluator reads 28 x 28 grey images: both sides are resized so with antialiasing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.algorithms.base import SamplingNetsProbe


def unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1) / 2


def l1(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((unit(x) - unit(y)).abs().mean())


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = (unit(x) - unit(y)).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=100.0).mean())


def _gaussian(size: int, sigma: float) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = unit(x), unit(y)
    c = x.shape[1]
    size = min(11, x.shape[-1], x.shape[-2])
    g = _gaussian(size, 1.5 * size / 11)
    window = (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()

    def blur(t):
        return F.conv2d(t, window, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.flatten(1).mean(1).mean())


def sharpness(x: torch.Tensor) -> float:
    x = unit(x)
    c = x.shape[1]
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(c, 1, 3, 3).contiguous()
    return float(F.conv2d(x, k, groups=c).abs().mean())


def to_evaluator(x: torch.Tensor) -> torch.Tensor:
    """One-channel images in [−1, 1] at any size -> 28 x 28, as the evaluator reads them."""
    x = x.float()
    if x.shape[-1] != 28 or x.shape[-2] != 28:
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1, 1)


def frechet(outputs: torch.Tensor, targets: torch.Tensor) -> float | None:
    """Fréchet distance in the evaluator's feature space, or None where it does not apply (colour images, or no
    evaluator)."""
    if outputs.shape[1] != 1 or len(outputs) < 2:
        return None
    from engine.metrics.evaluator import EvaluatorError, embed, load_evaluator
    from engine.metrics.images import frechet_distance
    try:
        model = load_evaluator()
    except EvaluatorError:
        return None
    fo, _ = embed(model, to_evaluator(outputs.cpu()))
    ft, _ = embed(model, to_evaluator(targets.cpu()))
    return float(frechet_distance(ft.numpy(), fo.numpy()))


def scores(outputs: torch.Tensor, targets: torch.Tensor | None, reference: torch.Tensor | None = None) -> dict:
    """Every score of outputs against targets (None: no ground truth, only the Fréchet distance to `reference`,
    images of the output domain)."""
    out = {}
    if targets is not None:
        out.update(l1=l1(outputs, targets), psnr=psnr(outputs, targets), ssim=ssim(outputs, targets))
    fd = frechet(outputs, targets if targets is not None else reference) if (
        targets is not None or reference is not None) else None
    if fd is not None:
        out["frechet_distance"] = fd
    out["sharpness"] = sharpness(outputs)
    if targets is not None:
        out["target_sharpness"] = sharpness(targets)
    return out


class TranslationQuality(SamplingNetsProbe):
    """Live scores on a fixed held-out set: the sampling networks are copied on the training thread, the
    translations and scores made on the metrics thread. Keys: each direction's scores with its suffix
    (pix2pix, SRGAN: none; CycleGAN: _ab and _ba), and the cycle reconstruction error where there are two ways."""

    def __init__(self, algorithm, n: int):
        self.algorithm = algorithm
        self.held = {k: v.cpu() for k, v in algorithm.dataset.held_out(n).items()}

    @torch.no_grad()
    def compute(self, nets: dict) -> dict:
        held, values = self.held, {}
        paired = "b" in held

        def run(x, direction):
            return torch.cat([self.algorithm.translate(part, direction, nets) for part in x.split(250)])

        for direction, suffix in self.algorithm.directions():
            if direction == "AtoB":
                x, truth, reference = held["a"], held.get("b"), held["b_only"]
            else:
                x = held["b"] if paired else held["b_only"]
                truth, reference = (held["a"] if paired else None), held["a"]
            out = run(x, direction)
            values.update({f"{k}{suffix}": v for k, v in scores(out, truth, reference).items()})
            if self.algorithm.two_way():
                values[f"cycle_l1{suffix}"] = l1(run(out, "BtoA" if direction == "AtoB" else "AtoB"), x)
        return values

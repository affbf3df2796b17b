"""Quality of low-dimensional generators: 2-D Gaussian mixtures and painter curves."""

from __future__ import annotations

import numpy as np


def mixture_quality(samples: np.ndarray, centres: np.ndarray, std: float, min_per_mode: int = 1) -> dict:
    """Mode coverage of 2-D samples, following the protocol of VEEGAN (Srivastava et al. 2017)
    and PacGAN (Lin et al. 2018).

    A sample is high quality when it lies within 3 standard deviations (3·std, the mixture's
    own per-component deviation) of the centre nearest to it. A mode is captured when at least
    `min_per_mode` high-quality samples have it as their nearest centre (VEEGAN counts one;
    pass a larger number for a stricter count). Both papers draw 2,500 samples.

    Returns modes_captured, high_quality (a share in [0, 1]) and the per-mode counts.
    """
    samples = np.asarray(samples, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    dists = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)
    nearest = dists.argmin(axis=1)
    good = dists[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    return {
        "modes_captured": int((counts >= min_per_mode).sum()),
        "modes_total": int(len(centres)),
        "high_quality": float(good.mean()) if len(samples) else 0.0,
        "per_mode": counts,
    }


def fit_painter_a(curves: np.ndarray, xs: np.ndarray | None = None) -> np.ndarray:
    """Least-squares a for y = a·x² + (a − 1) = a·(x² + 1) − 1, per curve."""
    curves = np.asarray(curves, dtype=np.float64)
    xs = np.linspace(-1.0, 1.0, curves.shape[1]) if xs is None else np.asarray(xs, dtype=np.float64)
    basis = xs ** 2 + 1.0
    return ((curves + 1.0) @ basis) / (basis @ basis)


def painter_quality(curves: np.ndarray, seed: int = 0) -> dict:
    """Share of curves whose fitted a lies in [1, 2], the 1-D Wasserstein distance between the
    fitted a's and a ~ U[1, 2], and the RMS error of the fit (how parabola-like the curves are)."""
    curves = np.asarray(curves, dtype=np.float64)
    a = fit_painter_a(curves)
    xs = np.linspace(-1.0, 1.0, curves.shape[1])
    residual = curves - (a[:, None] * (xs ** 2 + 1.0) - 1.0)
    reference = np.sort(np.random.default_rng(seed).uniform(1.0, 2.0, size=len(a)))
    return {
        "valid_share": float(((a >= 1.0) & (a <= 2.0)).mean()),
        "a_distance": float(np.abs(np.sort(a) - reference).mean()),
        "fit_rmse": float(np.sqrt((residual ** 2).mean())),
    }

"""Image quality in the evaluator's feature space (see engine.metrics.evaluator).

- frechet_distance: the Fréchet distance between Gaussians fitted to real and generated
  features (the FID formula, in the evaluator's 128-d space, so not Inception FID).
- precision_recall: Kynkäänniemi et al. 2019: each set's manifold is the union of balls
  reaching every feature vector's k-th nearest neighbour; precision is the share of generated
  samples inside the real manifold, recall the share of real samples inside the generated one.
- class_histogram: the evaluator's predicted classes of generated samples: coverage (classes
  receiving at least a tenth of a uniform share) and KL(histogram || uniform), a
  mode-collapse alarm (0 for a perfectly even spread, log 10 ≈ 2.3 when everything is one class).
"""

from __future__ import annotations

import numpy as np
import torch

COLLAPSE_KL = 0.5


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    values, vectors = np.linalg.eigh(cov_r)
    root_r = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_r @ cov_f @ root_r
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r) + np.trace(cov_f) - 2 * trace_root)


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    real_t, fake_t = torch.as_tensor(real, dtype=torch.float32), torch.as_tensor(fake, dtype=torch.float32)
    radius_r, radius_f = _kth_radius(real_t, k), _kth_radius(fake_t, k)
    cross = torch.cdist(fake_t, real_t)  # fake x real
    precision = (cross <= radius_r[None, :]).any(1).float().mean().item()
    recall = (cross.T <= radius_f[None, :]).any(1).float().mean().item()
    return precision, recall


def class_histogram(logits: np.ndarray, classes: int = 10) -> dict:
    predicted = np.asarray(logits).argmax(1)
    hist = np.bincount(predicted, minlength=classes) / max(1, len(predicted))
    nonzero = hist > 0
    kl = float((hist[nonzero] * np.log(hist[nonzero] * classes)).sum())
    return {
        "class_coverage": float((hist >= 0.1 / classes).sum() / classes),
        "class_kl": kl,
        "collapse_alarm": float(kl > COLLAPSE_KL),
    }


def image_quality(real_images: torch.Tensor, fake_images: torch.Tensor, real_features=None) -> dict:
    """All image metrics for two batches of 1 x 28 x 28 images in [−1, 1] (pass the real batch's
    evaluator features, from `embed`, to skip embedding it again)."""
    from engine.metrics.evaluator import embed, load_evaluator
    model = load_evaluator()
    real_f = real_features if real_features is not None else embed(model, real_images.cpu())[0]
    fake_f, fake_logits = embed(model, fake_images.cpu())
    precision, recall = precision_recall(real_f.numpy(), fake_f.numpy())
    return {"frechet_distance": frechet_distance(real_f.numpy(), fake_f.numpy()),
            "precision": precision, "recall": recall, **class_histogram(fake_logits.numpy())}

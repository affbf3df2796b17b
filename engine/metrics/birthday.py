"""The birthday-paradox support test (Arora and Zhang, "Do GANs learn the distribution?").

If a distribution puts its mass on m roughly equally likely points, a batch of s draws holds two equal ones with
probability about 1 − exp(−s²/2m): one half near s ≈ 1.2 √m. So the smallest batch size s at which repeats show
up in at least half the batches says the generator's support is about s². This module draws batches, finds their
closest pairs (in the shipped evaluator's feature space for 28x28 one-channel images, and always in pixels), and
calls a pair a duplicate by a threshold measured on REAL data.

The duplicate rule: in each space, τ = FRACTION × the QUANTILE-quantile of the nearest-neighbour distances among
up to REFERENCE real images (held-out split where the data set has one), i.e. half the 1st percentile. A pair of
samples is a duplicate when its Euclidean distance in that space is below τ. Measured on the Fashion-MNIST test set
(5000 images): τ ≈ 1.14 in features (typical nearest neighbour 5.6, typical pair 32) and ≈ 2.0 in pixels (typical
nearest neighbour 8.2, typical pair 23). Of all 50 million pairs of the 10000 test images only two fall under τ,
and both are near-copies the data set itself holds (indices 2115/4926 and 802/9921), so a batch of 400 real images
reports a duplicate with probability about 0.3 %. Copies of one image with small noise sit far below τ.
Distances are those of images in [−1, 1] (pixels) and of the evaluator's 128 features.

The estimate is the paper's s². For m equally likely images a half chance comes at s² = 2 ln 2 · m ≈ 1.4 m, and the
√2 ladder of sizes adds up to 2x more, so s² tends to read 1.4 to 3 times m (tests hold it within 4x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

QUANTILE = 0.01
FRACTION = 0.5
REFERENCE = 5000  # real images the thresholds are measured on (fewer for large images: see reference_count)
SPACE_NAMES = {"feature": "evaluator features", "pixel": "pixels"}
Progress = Callable[[str, float], None]


@dataclass
class Pair:
    i: int  # indices into the batch
    j: int
    distance: float
    space: str  # "feature" or "pixel"
    duplicate: bool


@dataclass
class Calibration:
    thresholds: dict  # space -> τ
    quantiles: dict  # space -> the QUANTILE-quantile of real nearest-neighbour distances
    reference: int  # real images measured

    def describe(self) -> str:
        parts = ", ".join(f"{SPACE_NAMES[s]} {t:.3g}" for s, t in self.thresholds.items())
        return (f"duplicate below {parts} (half the 1st percentile of nearest-neighbour distances among "
                f"{self.reference} real images)")


@dataclass
class SupportEstimate:
    sizes: list  # the batch sizes tried, in order
    rates: list  # the share of batches with a duplicate at each size
    trials: int
    smallest: int | None  # the smallest size with duplicates in at least half the batches, or None
    estimate: int | None  # smallest²

    def sentence(self) -> str:
        if self.smallest is None:
            top = self.sizes[-1] if self.sizes else 0
            return (f"No size up to s={top} gave duplicates in half of {self.trials} batches: the support is "
                    f"larger than about {top * top:,} (try a larger s).")
        return (f"Duplicates in at least half of {self.trials} batches from s={self.smallest}: support ≈ "
                f"s² = {self.estimate:,}.")


@dataclass
class BirthdayResult:
    s: int
    pairs: list  # [Pair], closest first within each space
    counts: dict  # space -> pairs of the batch under its threshold
    calibration: Calibration
    images: torch.Tensor | None = None  # the batch (N x C x H x W in [−1, 1]) the pairs index into
    support: SupportEstimate | None = None
    notes: list = field(default_factory=list)

    @property
    def duplicates(self) -> bool:
        return any(self.counts.values())

    def verdict(self) -> str:
        if not self.duplicates:
            return f"No duplicates among {self.s} samples."
        found = ", ".join(f"{n} pair{'s' if n != 1 else ''} in {SPACE_NAMES[s]}" for s, n in self.counts.items() if n)
        return f"Duplicates among {self.s} samples: {found}."

    def lines(self) -> list[str]:
        out = [*self.notes, f"Rule: {self.calibration.describe()}.", "Closest pairs:"]
        out += [f"  {SPACE_NAMES[p.space]:18s} #{p.i:<5d} #{p.j:<5d} {p.distance:8.3f}"
                f"{'  duplicate' if p.duplicate else ''}" for p in self.pairs]
        out.append(self.verdict())
        if self.support is not None:
            out.append(self.support.sentence())
        return out


# -- distances -------------------------------------------------------------------------------------------------
def _squared_distances(z: torch.Tensor, sq: torch.Tensor, start: int, chunk: int) -> torch.Tensor:
    rows = z[start:start + chunk]
    return (sq[start:start + chunk, None] + sq[None] - 2 * rows @ z.T).clamp_min_(0)


def nearest_distances(z: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """Each row's distance to its nearest other row, in chunks of rows (memory: chunk x N floats)."""
    z = z.flatten(1).float()
    z = z - z.mean(0)  # smaller norms: less cancellation in |a|² + |b|² − 2ab
    sq = (z * z).sum(1)
    out = torch.empty(len(z))
    for start in range(0, len(z), chunk):
        d2 = _squared_distances(z, sq, start, chunk)
        d2[torch.arange(len(d2)), torch.arange(start, start + len(d2))] = float("inf")
        out[start:start + len(d2)] = d2.min(1).values.sqrt()
    return out


def closest_pairs(z: torch.Tensor, k: int = 8, threshold: float | None = None,
                  chunk: int = 500) -> tuple[list[tuple[int, int, float]], int]:
    """The k closest pairs (i < j) of the rows of z, closest first, with exact distances, and how many pairs in
    all are closer than `threshold`. Chunked: memory chunk x N floats, so s of several thousand is fine."""
    z = z.flatten(1).float()
    z = z - z.mean(0)
    n = len(z)
    sq = (z * z).sum(1)
    columns = torch.arange(n)
    cand_d, below = torch.empty(0), 0
    cand_i = cand_j = torch.empty(0, dtype=torch.long)
    for start in range(0, n, chunk):
        d2 = _squared_distances(z, sq, start, chunk)
        rows = torch.arange(start, start + len(d2))
        d2.masked_fill_(columns[None] <= rows[:, None], float("inf"))  # each pair once, never a row with itself
        if threshold is not None:
            below += int((d2 < threshold * threshold).sum())
        take = min(4 * k, d2.numel())
        values, flat = d2.flatten().topk(take, largest=False)
        keep = values.isfinite()
        cand_d = torch.cat([cand_d, values[keep]])
        cand_i = torch.cat([cand_i, rows[flat[keep] // n]])
        cand_j = torch.cat([cand_j, flat[keep] % n])
        if len(cand_d) > 4 * k:
            order = cand_d.argsort()[:4 * k]
            cand_d, cand_i, cand_j = cand_d[order], cand_i[order], cand_j[order]
    exact = (z[cand_i] - z[cand_j]).norm(dim=1)  # the candidates again, without the cancellation
    order = exact.argsort()[:k]
    pairs = [(int(cand_i[o]), int(cand_j[o]), float(exact[o])) for o in order]
    if threshold is not None:  # the exact distances have the last word on the closest pairs
        below = max(below, sum(d < threshold for _, _, d in pairs))
    return pairs, below


# -- spaces and calibration ------------------------------------------------------------------------------------
def has_features(shape) -> bool:
    """The evaluator reads 28x28 one-channel images; every other image size is compared in pixels only."""
    return tuple(shape) == (1, 28, 28)


def embeddings(images: torch.Tensor, evaluator=None) -> dict:
    """The spaces a batch is compared in: {"feature": N x 128 (when an evaluator is given), "pixel": N x D}."""
    from engine.metrics.evaluator import embed
    images = images.detach().float().cpu()
    spaces = {}
    if evaluator is not None and has_features(images.shape[1:]):
        spaces["feature"] = embed(evaluator, images)[0]
    spaces["pixel"] = images.flatten(1)
    return spaces


def reference_count(shape, available: int, budget: float = 2e10) -> int:
    """How many real images to measure: REFERENCE, fewer where n² x D would take more than a few seconds."""
    dims = int(np.prod(shape))
    return int(min(available, REFERENCE, max(500, math.sqrt(budget / dims))))


def calibrate(real: torch.Tensor, evaluator=None, reference: int | None = None, seed: int = 0) -> Calibration:
    """The thresholds, measured on real images (N x C x H x W in [−1, 1], or uint8)."""
    if real.dtype == torch.uint8:
        real = real.float().div(127.5).sub(1.0)
    n = reference or reference_count(real.shape[1:], len(real))
    if len(real) < 2:
        raise ValueError("the birthday test needs at least two real images to set its threshold")
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
    thresholds, quantiles = {}, {}
    for space, z in embeddings(real[pick.to(real.device)], evaluator).items():
        q = float(torch.quantile(nearest_distances(z), QUANTILE))
        quantiles[space], thresholds[space] = q, FRACTION * q
    return Calibration(thresholds, quantiles, len(pick))


# -- the test --------------------------------------------------------------------------------------------------
def find_duplicates(images: torch.Tensor, calibration: Calibration, evaluator=None, k: int = 8) -> BirthdayResult:
    """The k closest pairs of a batch in each space of the calibration, and which are duplicates."""
    pairs, counts = [], {}
    for space, z in embeddings(images, evaluator).items():
        if space not in calibration.thresholds:
            continue
        tau = calibration.thresholds[space]
        found, counts[space] = closest_pairs(z, k, tau)
        pairs += [Pair(i, j, d, space, d < tau) for i, j, d in found]
    return BirthdayResult(len(images), pairs, counts, calibration, images.detach().cpu())


def size_ladder(start: int, stop: int) -> list[int]:
    """Batch sizes from start to stop growing by √2 (a doubling ladder can overshoot the estimate by 4x)."""
    sizes, s = [], float(start)
    while round(s) < stop:
        sizes.append(int(round(s)))
        s *= math.sqrt(2)
    return sizes + [int(stop)]


def support_estimate(draw: Callable[[int, int], torch.Tensor], sizes, calibration: Calibration, evaluator=None,
                     trials: int = 5, progress: Progress | None = None, cancel=None) -> SupportEstimate:
    """Tries the sizes in increasing order, `trials` batches each (draw(s, trial) gives a batch); the smallest size
    with a duplicate in at least half of its batches gives the estimate s². Stops at that size."""
    sizes, tried, rates = sorted(set(int(s) for s in sizes)), [], []
    need = math.ceil(trials / 2)
    for n, s in enumerate(sizes):
        hits = 0
        for t in range(trials):
            if cancel is not None and cancel():
                raise InterruptedError("cancelled")
            if progress:
                progress(f"Support scan: s={s}, batch {t + 1} of {trials}", (n + t / trials) / len(sizes))
            result = find_duplicates(draw(s, t), calibration, evaluator, k=1)
            hits += result.duplicates
            if hits >= need or hits + trials - t - 1 < need:  # decided either way
                break
        tried.append(s)
        rates.append(hits / (t + 1))
        if hits >= need:
            return SupportEstimate(tried, rates, trials, s, s * s)
    return SupportEstimate(tried, rates, trials, None, None)


# -- pictures --------------------------------------------------------------------------------------------------
def pair_rows(result: BirthdayResult, scale: int = 3) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(picture i, picture j, label) per pair, the pictures H x W x 3 uint8 scaled up."""
    from engine.images import to_uint8_images
    pics = to_uint8_images(result.images)
    if pics.shape[3] == 1:
        pics = np.repeat(pics, 3, axis=3)
    pics = pics.repeat(scale, 1).repeat(scale, 2)
    return [(pics[p.i], pics[p.j], f"{SPACE_NAMES[p.space]}: {p.distance:.3f}"
             f"{'  DUPLICATE' if p.duplicate else ''}  (#{p.i}, #{p.j})") for p in result.pairs]


def pairs_picture(result: BirthdayResult, scale: int = 3) -> np.ndarray:
    """The closest pairs side by side, one pair a row, with its space and distance written beside it."""
    from PIL import Image, ImageDraw
    rows = pair_rows(result, scale)
    h, w = rows[0][0].shape[:2]
    gap, text_w = 6, 330
    canvas = Image.new("RGB", (2 * w + 3 * gap + text_w, len(rows) * (h + gap) + gap + 18), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, 3), result.verdict(), fill=(0, 0, 0))
    for r, (a, b, label) in enumerate(rows):
        y = 18 + gap + r * (h + gap)
        canvas.paste(Image.fromarray(a), (gap, y))
        canvas.paste(Image.fromarray(b), (2 * gap + w, y))
        colour = (200, 30, 30) if "DUPLICATE" in label else (0, 0, 0)
        draw.text((3 * gap + 2 * w, y + h // 2 - 6), label, fill=colour)
    return np.asarray(canvas)


# -- a checkpoint ----------------------------------------------------------------------------------------------
_calibrations: dict = {}


class CheckpointTest:
    """The birthday test on a checkpoint: its sampler, its real data's thresholds, batches by seed."""

    def __init__(self, checkpoint, device: str = "cpu", progress: Progress | None = None):
        from engine.config import ConfigError
        from engine.sampler import load_sampler
        say = progress or (lambda text, fraction: None)
        say("Loading the checkpoint…", 0.0)
        self.sampler = load_sampler(checkpoint, device=device)
        self.step = self.sampler.step
        config, kind = self.sampler.config, getattr(self.sampler.dataset, "kind", "")
        if kind != "images":
            what = {"points": "2-D points", "curves": "curves", "text": "sequences",
                    "pairs": "translations of given images, not samples"}.get(kind, kind or "no images")
            raise ConfigError(f"The birthday test compares images, and this checkpoint's model "
                              f"({config.data.dataset}) makes {what}; train an image preset to use it.")
        self.notes: list[str] = []
        self.evaluator = None
        if has_features(self.sampler.dataset.shape):
            from engine.metrics.evaluator import EvaluatorError, load_evaluator
            try:
                self.evaluator = load_evaluator()
            except EvaluatorError as exc:
                self.notes.append(f"Pixels only: {exc}")
        else:
            self.notes.append(f"Pixels only: the evaluator reads 28x28 grey images, these are "
                              f"{'x'.join(map(str, self.sampler.dataset.shape))}.")
        say("Measuring the real data's nearest-neighbour distances…", 0.05)
        self.calibration = self._calibration()

    def _calibration(self) -> Calibration:
        from engine.config import LABELLED_IMAGE_DATASETS
        from engine.data import make_dataset, make_test_set
        d = self.sampler.config.data
        key = (d.dataset, d.path, tuple(self.sampler.dataset.shape), self.evaluator is not None)
        if key not in _calibrations:
            held_out = d.dataset in LABELLED_IMAGE_DATASETS
            real = (make_test_set if held_out else make_dataset)(self.sampler.config)
            _calibrations[key] = calibrate(real.images.cpu(), self.evaluator)
        return _calibrations[key]

    def draw(self, n: int, seed: int) -> torch.Tensor:
        from engine.latent import latent_for
        outputs = self.sampler.generate(latent_for(self.sampler, n, seed).as_dict())
        return outputs.float().cpu()

    def run(self, s: int, seed: int = 0, scan: bool = False, trials: int = 5, k: int = 8,
            progress: Progress | None = None, cancel=None) -> BirthdayResult:
        """s samples from `seed` and their closest pairs; scan: also the support estimate over sizes up to s."""
        if s < 2:
            raise ValueError(f"s = {s} is too small: the test needs at least 2 samples")
        say = progress or (lambda text, fraction: None)
        say(f"Drawing {s} samples and finding their closest pairs…", 0.1)
        result = find_duplicates(self.draw(s, seed), self.calibration, self.evaluator, k)
        result.notes = list(self.notes)
        if scan:
            sizes = size_ladder(min(50, s), s)
            scaled = (lambda text, f: say(text, 0.2 + 0.8 * f))
            result.support = support_estimate(lambda n, t: self.draw(n, seed + 1000 * (t + 1) + n), sizes,
                                              self.calibration, self.evaluator, trials, scaled, cancel)
        say("Done.", 1.0)
        return result


def save_pairs(result: BirthdayResult, path: Path) -> Path:
    from engine.images import save_png
    return save_png(Path(path), pairs_picture(result))

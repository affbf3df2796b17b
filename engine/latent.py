"""Points in a generator's latent space: z from a seed, InfoGAN codes, class labels.

The CLI's `sample` and the studio's latent explorer both build their inputs here, so the same
seed and codes give the same picture in both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.config import ConfigError
from engine.images import make_grid, render_curves, render_points, to_uint8_images


def parse_assignments(items: list[str] | None, flag: str) -> dict[int, float]:
    """'c1=0.7' -> {1: 0.7}; the letter is optional ('1=0.7')."""
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        index_text = name.strip().lstrip("c")
        try:
            out[int(index_text)] = float(value)
        except ValueError:
            raise ConfigError(f"{flag} {item!r} is not code=value; write it like {flag} c0=3.") from None
    return out


def latent_for(trainer, n: int, seed: int, continuous: dict | None = None, categorical: dict | None = None,
               label: int | None = None):
    """The latent batch `sample` and the latent explorer both use: z from the seed, codes pinned."""
    import torch.nn.functional as F

    from engine.trainer import Latent

    m = trainer.config.model
    rng = torch.Generator().manual_seed(seed)
    base = trainer._sample_latent(n, rng)
    continuous = continuous or {}
    categorical = categorical or {}
    for index in continuous:
        if not 0 <= index < m.info_continuous:
            raise ConfigError(f"--code c{index} does not exist; this model has {m.info_continuous} continuous codes.")
    for index, value in categorical.items():
        if not 0 <= index < len(m.info_categorical):
            raise ConfigError(f"--cat c{index} does not exist; this model has {len(m.info_categorical)} "
                              f"categorical codes.")
        if not (value.is_integer() and 0 <= value < m.info_categorical[index]):
            raise ConfigError(f"--cat c{index}={value:g} is out of range; values are 0 to "
                              f"{m.info_categorical[index] - 1}.")
    cat_index = base.cat_index
    if cat_index is not None:
        for index, value in categorical.items():
            cat_index[:, index] = int(value)
    cont = base.continuous
    if cont is not None:
        for index, value in continuous.items():
            cont[:, index] = value
    parts = []
    if cat_index is not None:
        parts += [F.one_hot(cat_index[:, j], c).float() for j, c in enumerate(m.info_categorical)]
    if cont is not None:
        parts.append(cont)
    labels = base.labels
    if label is not None:
        if not trainer.g_conditioned:
            raise ConfigError("--label needs a conditional or AC-GAN model; this one takes no labels.")
        if not 0 <= label < trainer.num_classes:
            raise ConfigError(f"--label {label} is out of range; labels are 0 to {trainer.num_classes - 1}.")
        labels = torch.full((n,), label, dtype=torch.long)
    return Latent(base.z, torch.cat(parts, 1) if parts else None, cat_index, cont, labels).to(trainer.device)


def render_picture(kind: str, samples: np.ndarray, real: np.ndarray | None = None, extent=None) -> np.ndarray:
    """One picture of a batch: a grid of images (N x H x W x C uint8), a scatter of 2-D points over
    the real ones, or painter curves inside their valid band."""
    if kind == "images":
        return make_grid(samples)
    if kind == "points":
        return render_points(samples, real, extent)
    return render_curves(samples, np.linspace(-1, 1, samples.shape[1]))


def as_arrays(kind: str, fake: torch.Tensor) -> np.ndarray:
    return to_uint8_images(fake) if kind == "images" else fake.float().cpu().numpy()


def render_samples(trainer, fake: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
    """(one picture of all samples, a picture per sample)."""
    kind = trainer.dataset.kind
    samples = as_arrays(kind, fake)
    extent = getattr(trainer.dataset, "extent", None)
    whole = render_picture(kind, samples, trainer.fixed_real, extent)
    if kind == "points":
        return whole, [whole]
    return whole, [render_picture(kind, samples[i:i + 1], trainer.fixed_real, extent) for i in range(len(samples))]


@dataclass
class LatentPoint:
    """What the explorer shows: a z seed, pinned codes, a class label; saved as a bookmark."""
    seed: int = 0
    continuous: dict = field(default_factory=dict)  # code index -> value
    categorical: dict = field(default_factory=dict)  # code index -> value
    label: int | None = None
    name: str = ""

    def latent(self, trainer, n: int = 1):
        return latent_for(trainer, n, self.seed, {int(k): float(v) for k, v in self.continuous.items()},
                          {int(k): float(v) for k, v in self.categorical.items()}, self.label)

    def cli_args(self) -> list[str]:
        args = ["--n", "1", "--seed", str(self.seed)]
        for index, value in sorted(self.continuous.items()):
            args += ["--code", f"c{index}={value:g}"]
        for index, value in sorted(self.categorical.items()):
            args += ["--cat", f"c{index}={int(value)}"]
        if self.label is not None:
            args += ["--label", str(self.label)]
        return args

    @classmethod
    def from_dict(cls, data: dict) -> "LatentPoint":
        return cls(int(data.get("seed", 0)), {int(k): float(v) for k, v in data.get("continuous", {}).items()},
                   {int(k): int(v) for k, v in data.get("categorical", {}).items()}, data.get("label"),
                   str(data.get("name", "")))


def default_point(trainer, seed: int = 0) -> LatentPoint:
    m = trainer.config.model
    return LatentPoint(seed, {i: 0.0 for i in range(m.info_continuous)},
                       {i: 0 for i in range(len(m.info_categorical))},
                       0 if trainer.g_conditioned else None)


def render_point(trainer, point: LatentPoint) -> np.ndarray:
    return render_samples(trainer, trainer.generate(point.latent(trainer)))[0]


def traversal_sheet(trainer, point: LatentPoint, code: int, columns: int = 10, low: float = -2.0,
                    high: float = 2.0) -> np.ndarray:
    """Rows: the first categorical code's values (or the classes); columns: continuous code `code`
    swept from low to high; z and every other code fixed (as in the InfoGAN paper's figures)."""
    m = trainer.config.model
    if m.info_categorical:
        rows = [("categorical", r) for r in range(m.info_categorical[0])]
    elif trainer.g_conditioned:
        rows = [("label", r) for r in range(trainer.num_classes)]
    else:
        rows = [(None, 0)]
    values = np.linspace(low, high, columns) if m.info_continuous else [None]
    tiles = []
    for kind, row in rows:
        for value in values:
            p = LatentPoint(point.seed, dict(point.continuous), dict(point.categorical), point.label)
            if kind == "categorical":
                p.categorical[0] = row
            elif kind == "label":
                p.label = row
            if value is not None:
                p.continuous[code] = float(value)
            tiles.append(p)
    latents = [p.latent(trainer) for p in tiles]
    batch = _stack(latents)
    images = to_uint8_images(trainer.generate(batch)) if trainer.dataset.kind == "images" else None
    if images is None:
        raise ConfigError("A traversal sheet needs an image model.")
    return make_grid(images, columns=len(values))


def interpolate(trainer, a: LatentPoint, b: LatentPoint, frames: int = 24) -> list[np.ndarray]:
    """Pictures along the straight line from a to b (z, codes and one-hot categories blended)."""
    from engine.trainer import Latent
    la, lb = a.latent(trainer), b.latent(trainer)
    out = []
    for t in np.linspace(0.0, 1.0, frames):
        mix = lambda x, y: None if x is None else (1 - t) * x + t * y
        labels = la.labels if t < 0.5 else lb.labels
        latent = Latent(mix(la.z, lb.z), mix(la.codes, lb.codes), None, None, labels)
        out.append(render_samples(trainer, trainer.generate(latent))[0])
    return out


def _stack(latents):
    from engine.trainer import Latent
    cat = lambda name: None if getattr(latents[0], name) is None else torch.cat([getattr(l, name) for l in latents])
    return Latent(**{name: cat(name) for name in Latent.FIELDS})


def load_bookmarks(run_dir: Path) -> list[LatentPoint]:
    path = Path(run_dir) / "bookmarks.json"
    if not path.is_file():
        return []
    try:
        return [LatentPoint.from_dict(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError, AttributeError):
        return []


def save_bookmarks(run_dir: Path, points: list[LatentPoint]) -> Path:
    from engine.checkpoint import atomic_write
    data = json.dumps([asdict(p) for p in points], indent=1).encode()
    return atomic_write(Path(run_dir) / "bookmarks.json", lambda handle: handle.write(data))

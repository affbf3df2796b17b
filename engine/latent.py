"""Points in a generator's latent space: z from a seed, InfoGAN codes, class labels.

The GAN family draws its inputs here; the CLI's `sample`, the exports and the studio's latent
explorer build theirs here too, from a sampler (engine.sampler), so the same seed and codes give
the same picture everywhere.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.device import inputs_to
from engine.images import make_grid, to_uint8_images
from engine.paths import unused_path
from engine.models import draw_noise
from engine.settings import ConfigError


class Latent:
    """What G is fed: noise z, InfoGAN codes (one-hot categories, continuous values), labels."""

    FIELDS = ("z", "codes", "cat_index", "continuous", "labels")

    def __init__(self, z, codes=None, cat_index=None, continuous=None, labels=None):
        self.z, self.codes, self.cat_index, self.continuous, self.labels = z, codes, cat_index, continuous, labels

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def to(self, device) -> "Latent":
        """The same latent with every tensor on `device`."""
        return Latent(**{name: None if value is None else value.to(device) for name, value in self.as_dict().items()})


def draw_latent(m, n: int, rng: torch.Generator, num_classes: int = 0, fixed: bool = False) -> Latent:
    """n latents for model settings m on rng's device; fixed: the sample grid's, whose rows walk through the
    first categorical code's values and the classes."""
    device = rng.device
    z = draw_noise(n, m.noise_dim, m.noise_distribution, rng)
    codes = cat_index = continuous = labels = None
    parts = []
    if m.info_categorical:
        if fixed:
            cat_index = torch.stack([torch.arange(n, device=device) % c for c in m.info_categorical], 1)
        else:
            cat_index = torch.stack([torch.randint(0, c, (n,), generator=rng, device=device)
                                     for c in m.info_categorical], 1)
        parts += [F.one_hot(cat_index[:, j], c).float() for j, c in enumerate(m.info_categorical)]
    if m.info_continuous:
        continuous = torch.rand(n, m.info_continuous, generator=rng, device=device) * 2 - 1
        parts.append(continuous)
    if parts:
        codes = torch.cat(parts, 1)
    if num_classes:
        labels = (torch.arange(n, device=device) % num_classes if fixed
                  else torch.randint(0, num_classes, (n,), generator=rng, device=device))
    return Latent(z, codes, cat_index, continuous, labels)


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


class Given:
    """A family's own inputs (a dict of tensors), where the GAN family's Latent would stand."""

    def __init__(self, inputs: dict):
        self.inputs = inputs

    def as_dict(self) -> dict:
        return self.inputs


def latent_for(sampler, n: int, seed: int, continuous: dict | None = None, categorical: dict | None = None,
               label: int | None = None) -> Latent:
    """The latent batch `sample`, the exports and the latent explorer use: z from the seed, codes pinned."""
    algorithm = sampler.algorithm
    m = sampler.config.model
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
    conditioned = getattr(algorithm, "g_conditioned", False)
    if label is not None:
        if not conditioned:
            raise ConfigError("--label needs a conditional or AC-GAN model; this one takes no labels.")
        if not 0 <= label < algorithm.num_classes:
            raise ConfigError(f"--label {label} is out of range; labels are 0 to {algorithm.num_classes - 1}.")
    rng = torch.Generator().manual_seed(seed)
    if not hasattr(algorithm, "latent"):  # a family without codes or labels: its own inputs, from the seed
        return Given(inputs_to(algorithm.random_inputs(n, rng), sampler.device))
    base = algorithm.latent(n, rng)
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
        labels = torch.full((n,), label, dtype=torch.long)
    return Latent(base.z, torch.cat(parts, 1) if parts else None, cat_index, cont, labels).to(sampler.device)


@dataclass
class LatentPoint:
    """What the explorer shows: a z seed, pinned codes, a class label; saved as a bookmark."""
    seed: int = 0
    continuous: dict = field(default_factory=dict)  # code index -> value
    categorical: dict = field(default_factory=dict)  # code index -> value
    label: int | None = None
    name: str = ""
    text: str = ""  # a description, for a text-conditioned model (StackGAN)
    stage: str = ""  # a staged model's stage to show ("" the images, ALL_STAGES every stage side by side)

    def latent(self, sampler, n: int = 1):
        if self.text:
            return text_latent(sampler, self.text, n, self.seed)
        return latent_for(sampler, n, self.seed, {int(k): float(v) for k, v in self.continuous.items()},
                          {int(k): float(v) for k, v in self.categorical.items()}, self.label)

    def cli_args(self) -> list[str]:
        args = ["--n", "1", "--seed", str(self.seed)]
        for index, value in sorted(self.continuous.items()):
            args += ["--code", f"c{index}={value:g}"]
        for index, value in sorted(self.categorical.items()):
            args += ["--cat", f"c{index}={int(value)}"]
        if self.label is not None and not self.text:
            args += ["--label", str(self.label)]
        if self.text:
            args += ["--text", self.text]
        if self.stage == ALL_STAGES:
            args += ["--stages"]
        elif self.stage:
            args += ["--stage", self.stage]
        return args

    @classmethod
    def from_dict(cls, data: dict) -> "LatentPoint":
        """A bookmark read back; ValueError for one that is not valid (a seed outside 0 .. EXPLORER_SEED_MAX,
        codes that are not finite numbers, a label that is not a whole number)."""
        if not isinstance(data, dict):
            raise ValueError(f"a bookmark is a JSON object, not {type(data).__name__}")
        continuous, categorical = data.get("continuous", {}), data.get("categorical", {})
        if not isinstance(continuous, dict) or not isinstance(categorical, dict):
            raise ValueError("a bookmark's codes are JSON objects")
        label, name = data.get("label"), data.get("name", "")
        if not isinstance(name, (str, int, float)) or isinstance(name, bool):
            raise ValueError("a bookmark's name is text")
        text, stage = data.get("text", ""), data.get("stage", "")
        if not isinstance(text, str) or not isinstance(stage, str):
            raise ValueError("a bookmark's description and stage are text")
        return cls(_whole(data.get("seed", 0), "seed"),
                   {_whole(k, "code"): _finite(v) for k, v in continuous.items()},
                   {_whole(k, "code"): _whole(v, "category") for k, v in categorical.items()},
                   None if label is None else _whole(label, "label"), str(name), text, stage)


ALL_STAGES = "all stages"


def text_latent(sampler, text: str, n: int, seed: int) -> "Given":
    """n inputs of a text-conditioned model for one description, z from the seed; a ConfigError (one sentence)
    for a model that takes no text, or a description it cannot read."""
    algorithm = sampler.algorithm
    if not getattr(algorithm, "text_conditioned", False):
        raise ConfigError("--text needs a text-conditioned model (StackGAN); this one takes no description.")
    rng = torch.Generator().manual_seed(seed)
    return Given(inputs_to(algorithm.inputs_for_text(text, n, rng), sampler.device))


def stage_picture(sampler, outputs: torch.Tensor, stage: str) -> np.ndarray:
    """One stage of a staged model's last draw (ALL_STAGES: every stage of each sample, side by side); a
    ConfigError naming the stages there are for a stage the model does not have."""
    from engine.algorithms.staged import shown
    algorithm = sampler.algorithm
    stages = dict(getattr(algorithm, "last_stages", ()) or ())
    if not stages:
        raise ConfigError("--stage and --stages need a model that draws in stages (LAPGAN, StackGAN, Composite GAN, "
                          "GRAN); this one draws its images at once.")
    if stage == ALL_STAGES:
        return algorithm.stage_sheet(outputs)
    if stage not in stages:
        raise ConfigError(f"--stage {stage!r} is not a stage of this model; its stages are "
                          f"{', '.join(repr(name) for name in stages)}.")
    return make_grid(to_uint8_images(shown(stages[stage], outputs)))


EXPLORER_SEED_MAX = 2 ** 31 - 1  # the explorer's seed box; torch.Generator.manual_seed itself takes 0 .. 2**64 - 1


def _whole(value, what: str) -> int:
    """A whole number in 0 .. EXPLORER_SEED_MAX (an int, an integral float or its text), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} {value!r} is not a whole number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"{what} {value!r} is not a whole number")
    number = int(value)
    if not 0 <= number <= EXPLORER_SEED_MAX:
        raise ValueError(f"{what} {number} is outside 0 .. {EXPLORER_SEED_MAX}")
    return number


def _finite(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"code value {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"code value {value!r} is not finite")
    return number


def default_point(sampler, seed: int = 0) -> LatentPoint:
    m = sampler.config.model
    return LatentPoint(seed, {i: 0.0 for i in range(m.info_continuous)},
                       {i: 0 for i in range(len(m.info_categorical))},
                       0 if getattr(sampler.algorithm, "g_conditioned", False) else None)


def render_point(sampler, point: LatentPoint) -> np.ndarray:
    outputs = sampler.generate(point.latent(sampler).as_dict())
    if point.stage:
        return stage_picture(sampler, outputs, point.stage)
    return sampler.pictures(outputs)[0]


def traversal_sheet(sampler, point: LatentPoint, code: int, columns: int = 10, low: float = -2.0,
                    high: float = 2.0) -> np.ndarray:
    """Rows: the first categorical code's values (or the classes); columns: continuous code `code`
    swept from low to high; z and every other code fixed (as in the InfoGAN paper's figures)."""
    m = sampler.config.model
    if m.info_categorical:
        rows = [("categorical", r) for r in range(m.info_categorical[0])]
    elif getattr(sampler.algorithm, "g_conditioned", False):
        rows = [("label", r) for r in range(sampler.algorithm.num_classes)]
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
    latents = [p.latent(sampler) for p in tiles]
    batch = _stack(latents)
    images = to_uint8_images(sampler.generate(batch.as_dict())) if sampler.preview.kind == "images" else None
    if images is None:
        raise ConfigError("A traversal sheet needs an image model.")
    return make_grid(images, columns=len(values))


def interpolate(sampler, a: LatentPoint, b: LatentPoint, frames: int = 24) -> list[np.ndarray]:
    """Pictures along the straight line from a to b (z, codes and one-hot categories blended)."""
    la, lb = a.latent(sampler), b.latent(sampler)
    out = []
    for t in np.linspace(0.0, 1.0, frames):
        mix = lambda x, y: None if x is None else (1 - t) * x + t * y
        labels = la.labels if t < 0.5 else lb.labels
        latent = Latent(mix(la.z, lb.z), mix(la.codes, lb.codes), None, None, labels)
        out.append(sampler.pictures(sampler.generate(latent.as_dict()))[0])
    return out


def _stack(latents):
    cat = lambda name: None if getattr(latents[0], name) is None else torch.cat([getattr(l, name) for l in latents])
    return Latent(**{name: cat(name) for name in Latent.FIELDS})


class BookmarksError(ConfigError):
    """A bookmarks file that cannot be kept safe; the message is one sentence naming the file."""


BAD_BOOKMARK = (ValueError, TypeError, AttributeError, OverflowError, RecursionError)


def _read_bookmarks(path: Path) -> tuple[list[LatentPoint], int]:
    """The valid bookmarks in path and how many entries were not; ValueError for a file that is not
    a JSON list (bad JSON, nested too deep, bad UTF-8), OSError for one that cannot be read."""
    try:
        # an integer literal too long to be a seed becomes inf, so its entry is skipped, not the whole file
        items = json.loads(path.read_text(encoding="utf-8"),
                           parse_int=lambda text: int(text) if len(text) <= 40 else math.inf)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(items, list):
        raise ValueError("not a list")
    points, bad = [], 0
    for item in items:
        try:
            points.append(LatentPoint.from_dict(item))
        except BAD_BOOKMARK:
            bad += 1
    return points, bad


def _move_aside(path: Path) -> Path:
    """Rename path to path.corrupt-<time> (never over another file); BookmarksError if it cannot be."""
    backup = unused_path(path.parent, f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.rename(path, backup)
    except OSError as exc:
        raise BookmarksError(f"{path} is not a valid bookmarks file and could not be moved aside "
                             f"({exc.strerror or exc}); move it away by hand before saving bookmarks.") from None
    return backup


def load_bookmarks(run_dir: Path, warn: Callable[[str], None] | None = None) -> list[LatentPoint]:
    """The run's bookmarks. A file that is not valid bookmarks is moved aside to
    bookmarks.json.corrupt-<time> before anything can overwrite it; entries that are not valid (a seed
    such as 1e400, codes that are not numbers) are skipped, the original file moved aside and the valid
    ones written back. `warn` (else warnings.warn) hears of either, in one sentence."""
    path = Path(run_dir) / "bookmarks.json"
    if not path.is_file():
        return []
    tell = warn or (lambda text: warnings.warn(text, RuntimeWarning, stacklevel=3))
    try:
        points, bad = _read_bookmarks(path)
    except OSError as exc:
        tell(f"{path} could not be read ({exc.strerror or exc}); no bookmarks were loaded.")
        return []
    except ValueError:
        try:
            backup = _move_aside(path)
        except BookmarksError as exc:
            tell(str(exc))
            return []
        tell(f"{path} is not a valid bookmarks file; it was moved to {backup.name} and no bookmarks were loaded.")
        return []
    if bad:
        try:
            backup = _move_aside(path)
            if points:
                save_bookmarks(run_dir, points)
        except (BookmarksError, OSError) as exc:
            tell(f"Skipped {bad} bookmarks in {path} that are not valid, and the file could not be "
                 f"rewritten ({getattr(exc, 'strerror', None) or exc}).")
            return points
        tell(f"Skipped {bad} bookmarks in {path} that are not valid (a seed outside 0 to {EXPLORER_SEED_MAX} or "
             f"codes that are not numbers); the original file was kept as {backup.name}.")
    return points


def save_bookmarks(run_dir: Path, points: list[LatentPoint]) -> Path:
    """Write the bookmarks atomically; an existing file that is not valid bookmarks is moved aside first
    (BookmarksError if it cannot be), never overwritten."""
    from engine.checkpoint import atomic_write
    path = Path(run_dir) / "bookmarks.json"
    if path.exists():
        try:
            valid = path.is_file() and _read_bookmarks(path)[1] == 0
        except (OSError, ValueError):
            valid = False
        if not valid:
            _move_aside(path)
    data = json.dumps([asdict(p) for p in points], indent=1).encode()
    return atomic_write(path, lambda handle: handle.write(data))

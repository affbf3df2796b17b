"""What every image-to-image family shares: its data (engine.img2img.data), held-out inputs in place of noise,
previews of rows (input | output | target, or A → B → A and B → A → B), live scores on the held-out set,
`translate`, the GAN losses and the image pool. pix2pix, CycleGAN, DistanceGAN, DTN and SRGAN subclass it.

The sampling inputs are held-out images: {"a": inputs, "b": their true targets (when there are some),
"b_only": held-out images of domain B}. `generate` returns the preview's panels, N x K x C x H x W (inputs
smaller than the outputs, such as the low-resolution task's, are enlarged by pixel repetition), so the sample
grid, `gan-studio sample` and the exports draw the same rows; `translate(x, direction, nets)` is the mapping
itself (`gan-studio translate`, the translate panel, the scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.algorithms.base import Algorithm, grad_norm
from engine.events import Declaration
from engine.images import make_grid, to_uint8_images
from engine.img2img import data as pairs
from engine.settings import LABELLED_IMAGE_DATASETS, ConfigError, _f

IMAGE_DATASETS = LABELLED_IMAGE_DATASETS + ("folder",)
ROWS_PER_COLUMN = 8


def _builtin(c) -> bool:
    return c.data.dataset != "folder"


def _folder(c) -> bool:
    return c.data.dataset == "folder"


@dataclass
class TranslationSettings:
    task: str = _f("edges", "built-in task made from the data set: edges → item, 4× low resolution → item, or "
                            "items and edge maps of other items (unpaired)", choices=pairs.TASKS, when=_builtin)
    held_out: float = _f(0.1, "share of a folder's pairs (of each domain, unpaired) held out for previews and scores",
                         gt=0.0, max=0.5, when=_folder)


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """D's (and G's, with real=True) loss on logits: "vanilla" cross-entropy or "lsgan" least squares to 1 / 0."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


class ImagePool:
    """CycleGAN's history of generated images (Shrivastava et al.): until it holds `size` images, each new one
    is stored and given back; then each is, with probability 1/2, swapped for a stored one (given back instead)."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        draws = torch.rand(len(batch), generator=rng, device=rng.device).tolist()
        picks = torch.randint(0, self.size, (len(batch),), generator=rng, device=rng.device).tolist()
        for image, draw, pick in zip(batch.detach(), draws, picks):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif draw < 0.5:
                out.append(self.images[pick].clone())
                self.images[pick] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> torch.Tensor | None:
        return torch.stack(self.images).cpu() if self.images else None

    def load(self, images: torch.Tensor | None, device) -> None:
        self.images = [] if images is None else [image.to(device) for image in images]


def enlarge(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """x shown at like's size (pixel repetition, so a low-resolution input looks as coarse as it is)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


def label_strip(width: int, labels: list, tile: int, padding: int = 2, height: int = 14) -> np.ndarray:
    """A dark strip with a label over each of a row's tiles."""
    from PIL import Image, ImageDraw
    strip = Image.new("RGB", (width, height), (40, 40, 40))
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(labels):
        draw.text((padding + i * (tile + padding) + 1, 1), text, fill=(230, 230, 230))
    return np.asarray(strip)


class TranslationAlgorithm(Algorithm):
    base_sections = ("data", "optim", "train", "tricks")
    needs_pairs = False  # pix2pix and SRGAN learn from aligned pairs
    tasks = pairs.TASKS  # the built-in tasks it can learn
    input_scale = 1  # how many times smaller than a folder's B pictures its inputs are made (SRGAN: 4)
    PANELS: tuple = ("input", "output", "target")

    # -- class-level ---------------------------------------------------------------------------------
    @classmethod
    def family_settings(cls, config):
        return getattr(config, cls.section)

    @classmethod
    def check_config(cls, config) -> None:
        s, d = cls.family_settings(config), config.data
        if d.dataset not in IMAGE_DATASETS:
            raise ConfigError(f"algorithm = {cls.name!r} translates images, but data.dataset = {d.dataset!r}; use "
                              f"{', '.join(IMAGE_DATASETS[:-1])} (a built-in task) or folder (your own A/ and B/).")
        if d.dataset != "folder" and s.task not in cls.tasks:
            raise ConfigError(f"{cls.section}.task = {s.task!r} is not a task {cls.name} can learn; use "
                              f"{' or '.join(repr(t) for t in cls.tasks)}.")
        if d.image_size & (d.image_size - 1):
            raise ConfigError(f"data.image_size = {d.image_size} is not a power of two, which {cls.name}'s networks "
                              f"need; use 32 or 64.")

    @classmethod
    def make_data(cls, config, progress=None, warn=None, cancel=None):
        s = cls.family_settings(config)
        if config.data.dataset == "folder":
            return pairs.folder_task(config, cls.needs_pairs, s.held_out, progress, warn, cls.input_scale)
        return pairs.builtin_task(config, s.task, progress=progress, cancel=cancel)

    @classmethod
    def sampling_data(cls, config, data: dict):
        return pairs.HeldOutLater(config, data)

    @classmethod
    def declaration(cls, config, plots: tuple, terms: dict, progress: tuple, losses: dict) -> Declaration:
        return Declaration(plots=plots, terms=terms, settings=("lr_g", "lr_d"), controls=tuple(config.live_keys()),
                           previews=("pairs",), progress=progress, losses=losses,
                           translation=tuple(d for d, _ in cls.class_directions()),
                           quality_pairs=cls.quality_pairs())

    @classmethod
    def quality_pairs(cls) -> dict:
        """Each direction's sharpness drawn beside its targets'; CycleGAN's two directions beside each other."""
        pairs_ = {}
        for _, suffix in cls.class_directions():
            pairs_[f"sharpness{suffix}"] = ("outputs", f"target_sharpness{suffix}", "targets")
        if len(cls.class_directions()) == 2:
            for name in ("l1", "psnr", "ssim", "frechet_distance", "cycle_l1"):
                pairs_[f"{name}_ab"] = ("A → B", f"{name}_ba", "B → A")
        return pairs_

    @classmethod
    def class_directions(cls) -> tuple:
        """(direction, suffix of its quality keys) for each way the family translates."""
        return (("AtoB", ""),)

    def directions(self) -> tuple:
        return self.class_directions()

    def two_way(self) -> bool:
        return len(self.directions()) == 2

    # -- inputs and outputs ----------------------------------------------------------------------------
    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.dataset.held_out(n, rng)

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.dataset.held_out(min(n, 16))

    def translate(self, x: torch.Tensor, direction: str, nets: dict) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        a = inputs["a"]
        if self.two_way():
            b = inputs["b"] if "b" in inputs else inputs["b_only"]
            ab = self.translate(a, "AtoB", nets)
            ba = self.translate(b, "BtoA", nets)
            panels = [a, ab, self.translate(ab, "BtoA", nets), b, ba, self.translate(ba, "AtoB", nets)]
        else:
            out = self.translate(a, "AtoB", nets)
            panels = [enlarge(a, out), out] + ([inputs["b"]] if "b" in inputs else [])
        return torch.stack(panels, 1)

    def panel_names(self, k: int) -> list:
        if k == 6:
            return ["A", "A->B", "->A", "B", "B->A", "->B"]
        return list(self.PANELS[:k])

    def _row_pictures(self, outputs: torch.Tensor) -> list:
        n, k = outputs.shape[:2]
        tiles = to_uint8_images(outputs.flatten(0, 1)).reshape(n, k, *outputs.shape[-2:], -1)
        return [make_grid(tiles[i], columns=k) for i in range(n)]

    def _sheet(self, outputs: torch.Tensor) -> np.ndarray:
        """Rows of panels, ROWS_PER_COLUMN rows to a block, blocks side by side, each under its panels' names."""
        n, k = outputs.shape[:2]
        rows = self._row_pictures(outputs)
        parts = []
        for start in range(0, n, ROWS_PER_COLUMN):
            column = rows[start:start + ROWS_PER_COLUMN]
            column += [np.full_like(rows[0], 40)] * (min(n, ROWS_PER_COLUMN) - len(column))
            block = np.concatenate(column, 0)
            strip = label_strip(block.shape[1], self.panel_names(k), outputs.shape[-1])
            parts += [np.concatenate([strip, block], 0), np.full((strip.shape[0] + block.shape[0], 6, 3), 40, np.uint8)]
        return np.concatenate(parts[:-1], 1)

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        images = to_uint8_images(outputs[:, 1])
        return {"kind": "pairs", "picture": self._sheet(outputs), "images": images,
                "title": " | ".join(self.panel_names(outputs.shape[1]))}

    def pictures(self, preview, outputs: torch.Tensor) -> tuple:
        return self._sheet(outputs), self._row_pictures(outputs)

    def quality_probes(self) -> list:
        from engine.img2img.metrics import TranslationQuality
        if not hasattr(self.dataset, "held_out") or isinstance(self.dataset, pairs.HeldOutLater):
            return []
        return [TranslationQuality(self, self.config.train.metrics_samples)]

    # -- training helpers ------------------------------------------------------------------------------
    def optimise_many(self, names: tuple, loss: torch.Tensor, norms: bool, last: dict, key: str) -> None:
        """One loss, several networks each with its own optimizer (CycleGAN's two generators, two Ds)."""
        for name in names:
            self.opts[name].zero_grad(set_to_none=True)
        loss.backward()
        if norms:
            last[key] = torch.linalg.vector_norm(torch.stack([grad_norm(self.nets[n]) for n in names]))
        for name in names:
            self.opts[name].step()

"""Translating a person's own pictures with an image-to-image checkpoint (pix2pix, CycleGAN, DistanceGAN, DTN,
SRGAN): `gan-studio translate CKPT IN OUT` and the studio's translate panel (studio.translate).

IN is one picture or a folder, walked as a training folder is (engine.data.images: hidden names left out, links
leading outside it not followed). Each readable picture is read at the size and channels of the input domain of
the direction (centre-cropped to a square), translated in batches, and written as OUT/<its folder under IN>/<stem>.png;
one picture with OUT ending in .png is written to that file. Files that are not readable images are skipped and
counted in one warning sentence.

prepare=True takes each picture as an ordinary item, what a built-in task makes its inputs from, and translates
the task's fixed transform of it (engine.img2img.data.task_input): its edge map ("edges": the input of A → B;
"edges_unpaired": the input of B → A, whose domain B is edge maps) or its 4× low-resolution version ("lowres").
A model trained on folder data has no such transform.

A Translator holds only the sampling networks (in eval mode); it is built from a checkpoint, from the weights a
running trainer sends (events.GeneratorWeights), or from an engine.sampler.Sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from engine import algorithms
from engine.checkpoint import load_checkpoint
from engine.config import ConfigError
from engine.data.images import OUTSIDE, TOO_LARGE, UNREADABLE, DataError, _folder_files, read_image, skip_warning
from engine.images import save_png, to_uint8_images
from engine.img2img.data import task_input

BATCH = 32  # pictures translated at once
TRANSFORMS = {"edges": "edge map", "lowres": "low resolution", "edges_unpaired": "edge map"}
TRANSFORM_TIPS = {"edge map": "its edge map (white edges on black)",
                  "low resolution": "its 4× low-resolution version (area averaging)"}


def translating_families() -> list[str]:
    return [name for name in algorithms.names() if hasattr(algorithms.get(name), "translate")]


class Translator:
    """An image-to-image model's sampling networks: uint8 pictures of one domain in, the other domain's out."""

    def __init__(self, algorithm, nets: dict, step: int = 0, checkpoint: Path | None = None):
        self.algorithm = algorithm
        self.config = algorithm.config
        self.family = self.config.algorithm
        self.dataset = algorithm.dataset
        self.nets = nets
        self.device = torch.device(algorithm.device)
        self.step = int(step)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.directions = tuple(d for d, _ in algorithm.directions())
        self.task = getattr(self.dataset, "task", "") or ""

    # -- shapes and the task's transform -----------------------------------------------------------------------
    def input_shape(self, direction: str) -> tuple:
        """(C, H, W) of what `direction` takes: domain A for AtoB, domain B for BtoA."""
        return tuple(self.dataset.input_shape if direction == "AtoB" else self.dataset.shape)

    @property
    def transform(self) -> str:
        """What prepare makes of a picture ("edge map", "low resolution"), "" for a model of folder data."""
        return TRANSFORMS.get(self.task, "")

    @property
    def prepare_direction(self) -> str:
        """The direction whose inputs the task's transform makes: its output is domain A for "edges" and
        "lowres" (items are B), domain B for "edges_unpaired" (items are A); "" without a task."""
        if not self.transform:
            return ""
        return "BtoA" if self.task == "edges_unpaired" else "AtoB"

    def read_shape(self, direction: str, prepare: bool) -> tuple:
        """(C, H, W) a picture is read at: the direction's input, or with prepare the items' domain."""
        if prepare:
            return self.input_shape("AtoB" if direction == "BtoA" else "BtoA")
        return self.input_shape(direction)

    def prepare_problem(self, direction: str) -> str:
        """Why prepare cannot serve `direction` (one sentence), or ""."""
        where = f"this {self.family} model"
        if not self.transform:
            return (f"--prepare makes the input from a picture with a built-in task's transform, but {where} was "
                    f"trained on folder data, which has none; give pictures of its input domain as they are.")
        wanted = self.prepare_direction
        if direction == wanted:
            return ""
        if wanted in self.directions:
            return (f"--prepare makes an {self.transform}, the input of {wanted} in {where}, not of {direction}; "
                    f"use --direction {wanted} --prepare, or {direction} without --prepare.")
        return (f"--prepare makes an {self.transform}, the input of {wanted}, which {where} does not translate; "
                f"its {direction} inputs are items already, so translate the pictures as they are.")

    def check(self, direction: str, prepare: bool) -> None:
        if direction not in self.directions:
            raise ConfigError(f"--direction {direction}: this {self.family} model translates "
                              f"{' and '.join(self.directions)}{' only' if len(self.directions) == 1 else ''}.")
        problem = self.prepare_problem(direction) if prepare else ""
        if problem:
            raise ConfigError(problem)

    # -- translating -----------------------------------------------------------------------------------------
    def prepared(self, items: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W items -> the task's inputs made of them (uint8)."""
        return task_input(self.task, items)

    @torch.no_grad()
    def translate(self, pictures: torch.Tensor, direction: str) -> np.ndarray:
        """uint8 N x C x H x W pictures of the direction's input domain -> uint8 N x H x W x C translations."""
        outputs = []
        for chunk in pictures.split(BATCH):
            x = chunk.to(self.device).float().div(127.5).sub(1.0)
            outputs.append(to_uint8_images(self.algorithm.translate(x, direction, self.nets)))
        return np.concatenate(outputs)


def _refuse_unless_translating(family: str, what: str) -> None:
    """ConfigError unless the family translates (an unknown family is left to the sampler to refuse)."""
    if family in algorithms.names() and not hasattr(algorithms.get(family), "translate"):
        raise ConfigError(f"{what} is a {family} model, which makes samples rather than translating pictures; "
                          f"translate needs an image-to-image checkpoint ({', '.join(translating_families())}).")


def load_translator(source, device: str = "cpu") -> Translator:
    """A Translator from a checkpoint (a path or a loaded state), an events.GeneratorWeights, or a Sampler;
    ConfigError (one sentence) for a model that does not translate images, CheckpointError for a bad file.
    The model is refused before its networks are built."""
    from engine import events as ev
    from engine.sampler import Sampler, load_sampler, sampler_from_weights
    path = None
    if isinstance(source, Sampler):
        sampler = source
        _refuse_unless_translating(sampler.config.algorithm, "This checkpoint")
    elif isinstance(source, ev.GeneratorWeights):
        _refuse_unless_translating(source.config.get("algorithm", "gan"), "This run")
        sampler = sampler_from_weights(source, device)
    else:
        path = None if isinstance(source, dict) else Path(source)
        state = source if path is None else load_checkpoint(path)
        _refuse_unless_translating(state["config"].get("algorithm", "gan"), path.name if path else "This checkpoint")
        sampler = load_sampler(state, device=device)
    return Translator(sampler.algorithm, sampler.sampling_nets(), sampler.step, path)


# -- files ---------------------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """The pictures to translate: `files` (in order), `root` (the folder IN, or None for one file), the links
    under it leading outside it (never followed)."""
    files: list
    root: Path | None
    outside: list = field(default_factory=list)

    def relative(self, file: Path) -> Path:
        return Path(file.name) if self.root is None else file.relative_to(self.root)


def find_inputs(source, out=None) -> Inputs:
    """IN as a list of files; files under OUT (earlier translations) are left out. ConfigError when IN is missing
    or holds no file."""
    source = Path(source).expanduser()
    if not source.exists():
        raise ConfigError(f"{source} does not exist; give a picture or a folder of pictures to translate.")
    if source.is_file():
        return Inputs([source], None)
    files, outside = _folder_files(source)
    if out is not None:
        out = Path(out).expanduser().resolve()
        files = [f for f in files if not f.resolve().is_relative_to(out)]
    if not files and not outside:
        raise ConfigError(f"{source} holds no pictures; choose a folder of PNG or JPEG files.")
    return Inputs(files, source, outside)


def read_pictures(files, shape: tuple) -> Iterator[tuple]:
    """(file, uint8 C x H x W array) for each readable file, (file, reason) for the others."""
    channels, size = shape[0], shape[-1]
    for file in files:
        yield file, read_image(file, size, channels)


@dataclass
class Survey:
    """A look at IN before translating it (the translate panel): its first readable picture, how many there
    are, how many files are skipped and the warning saying why. key: (IN, the shape read at)."""
    key: tuple
    first_file: Path
    first: np.ndarray  # uint8 C x H x W
    count: int
    skipped: int
    warning: str
    folder: bool


def survey(source, shape: tuple) -> Survey:
    """Read every file of IN at shape (C, H, W) to count the readable pictures; DataError when there is none."""
    inputs = find_inputs(source)
    skipped: dict = {UNREADABLE: [], TOO_LARGE: [], OUTSIDE: [p.name for p in inputs.outside]}
    first, count = None, 0
    for file, array in read_pictures(inputs.files, shape):
        if isinstance(array, str):
            skipped[array].append(file.name)
        else:
            count, first = count + 1, first or (file, array)
    total = sum(len(names) for names in skipped.values())
    if first is None:
        raise DataError(f"{source} holds no picture that can be read; choose PNG or JPEG files.")
    warning = skip_warning(skipped, count + total, source) if total else ""
    return Survey((Path(source), tuple(shape)), first[0], first[1], count, total, warning, inputs.root is not None)


def side_by_side(tiles: list, gap: int = 4) -> np.ndarray:
    """H x W x C uint8 tiles, each enlarged by pixel repetition to the tallest one's height, in a row on a dark
    ground, as RGB (the translate panel shows picture | prepared input | translation so)."""
    height = max(t.shape[0] for t in tiles)
    parts = []
    for tile in tiles:
        factor = max(1, height // tile.shape[0])
        big = np.repeat(np.repeat(tile, factor, 0), factor, 1)
        big = np.repeat(big, 3, 2) if big.shape[2] == 1 else big
        canvas = np.full((height, big.shape[1], 3), 40, np.uint8)
        canvas[:big.shape[0]] = big[:height]
        parts += [canvas, np.full((height, gap, 3), 40, np.uint8)]
    return np.concatenate(parts[:-1], 1)


@dataclass
class Translation:
    """One picture translated: as read, the task's transform of it (prepare), the translation; H x W x C uint8."""
    file: Path
    picture: np.ndarray
    prepared: np.ndarray | None
    output: np.ndarray


def translate_arrays(translator: Translator, arrays: list, direction: str, prepare: bool) -> tuple:
    """uint8 C x H x W arrays -> (prepared N x H x W x C uint8 or None, translations N x H x W x C uint8)."""
    items = torch.from_numpy(np.stack(arrays))
    inputs = translator.prepared(items) if prepare else items
    prepared = inputs.permute(0, 2, 3, 1).numpy() if prepare else None
    return prepared, translator.translate(inputs, direction)


def translations(translator: Translator, inputs: Inputs, direction: str, prepare: bool,
                 skipped: dict | None = None) -> Iterator[Translation]:
    """Each readable picture of `inputs` translated, BATCH at a time; skipped files are added to `skipped`
    (reason -> names) when given."""
    translator.check(direction, prepare)
    shape = translator.read_shape(direction, prepare)
    batch: list = []

    def flush():
        prepared, outputs = translate_arrays(translator, [a for _, a in batch], direction, prepare)
        for i, (file, array) in enumerate(batch):
            yield Translation(file, array.transpose(1, 2, 0), None if prepared is None else prepared[i], outputs[i])
        batch.clear()

    for file, array in read_pictures(inputs.files, shape):
        if isinstance(array, str):
            if skipped is not None:
                skipped.setdefault(array, []).append(file.name)
            continue
        batch.append((file, array))
        if len(batch) == BATCH:
            yield from flush()
    if batch:
        yield from flush()


def png_picture(image: np.ndarray) -> np.ndarray:
    """H x W x C uint8 as save_png takes it: grey as H x W."""
    return image[..., 0] if image.shape[-1] == 1 else image


@dataclass
class Written:
    """What translate_path wrote: the files, where, how many files were skipped and the warning saying why."""
    files: list
    where: Path
    skipped: int = 0
    warning: str = ""
    first: Translation | None = None


def _destination(inputs: Inputs, source: Path, out: Path) -> tuple:
    """(folder written into, or the one PNG file when IN is one picture and OUT ends in .png)."""
    if inputs.root is None:
        single = out.suffix.lower() == ".png" and not out.is_dir()
        if not single and out.is_file():
            raise ConfigError(f"{out} is a file that is not a .png; give a folder, or a .png file to write.")
        target = out if single else out / f"{source.stem}.png"
        if target.resolve() == source.resolve():
            raise ConfigError(f"{target} is the picture being translated; choose another place to write.")
        return (out.parent, out) if single else (out, None)
    if out.is_file():
        raise ConfigError(f"{out} is a file; OUT must be a folder when IN is a folder ({source}).")
    return out, None


def translate_path(translator: Translator, source, out, direction: str = "AtoB", prepare: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> Written:
    """Translate IN (a picture or a folder) into OUT: one <stem>.png per picture, keeping IN's sub-folders
    (a second picture of the same stem in one folder keeps its suffix: photo.jpg.png), or the file OUT for one
    picture when OUT ends in .png. progress(done, total) after each batch."""
    source, out = Path(source).expanduser(), Path(out).expanduser()
    translator.check(direction, prepare)
    if source.is_dir() and out.resolve() == source.resolve():
        raise ConfigError(f"OUT is IN itself ({out}), so the translations could overwrite the pictures; "
                          f"choose another folder.")
    inputs = find_inputs(source, out)
    folder, single = _destination(inputs, source, out)
    skipped: dict = {UNREADABLE: [], TOO_LARGE: [], OUTSIDE: [p.name for p in inputs.outside]}
    written, taken, first = [], set(), None
    for t in translations(translator, inputs, direction, prepare, skipped):
        first = t if first is None else first
        if single is not None:
            path = single
        else:
            rel = inputs.relative(t.file)
            path = folder / rel.with_suffix(".png")
            if path in taken:
                path = folder / rel.parent / f"{rel.name}.png"
        taken.add(path)
        written.append(save_png(path, png_picture(t.output)))
        if progress and len(written) % BATCH == 0:
            progress(len(written), len(inputs.files))
    count = sum(len(names) for names in skipped.values())
    if not written:
        if inputs.root is None:
            why = "it is too large" if skipped[TOO_LARGE] else "it is not a readable image"
            raise DataError(f"{source} cannot be translated: {why}; choose a PNG or JPEG file.")
        raise DataError(f"{source} holds no readable picture ({count} files were not images, were too large or "
                        f"linked outside it); choose a folder of PNG or JPEG files.")
    total = len(inputs.files) + len(inputs.outside)
    warning = skip_warning(skipped, total, source) if count else ""
    return Written(written, single or folder, count, warning, first)

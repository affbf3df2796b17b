"""Image-to-image data: domain A (inputs) and domain B (targets), with a held-out set for previews and scores.

Built-in tasks, made deterministically from a labelled image set (Fashion-MNIST by default) on load:
  - "edges":  A = the fixed edge detector below applied to an item, B = the item (paired; pix2pix's
    "edges2shoes" for this data set);
  - "lowres": A = the item down-sampled 4x by area averaging, B = the item (paired; super-resolution);
  - "edges_unpaired": A = items of the first half of the training split, B = the edge maps of the items of
    the second half, so no pair is ever seen in training (CycleGAN, DistanceGAN, DTN). The test split keeps
    its true pairs (item, edges of that item) for scoring.
The held-out set is always the test split of the data set, so training never sees it.

The edge detector: the item in [0, 1], the Sobel gradient magnitude (zero padding), divided by its largest value
in the image, thresholded at EDGE_THRESHOLD: white (255) on an edge, black (0) elsewhere.

A person's own data (data.dataset = "folder"): engine.img2img.folders reads A/ and B/ (paired by file name, or
not) or side-by-side "A|B" pictures; the last `held_out` share of the pairs (of each domain when unpaired) is
held out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.data.images import DataError

TASKS = ("edges", "lowres", "edges_unpaired")
SCALE = 4  # the low-resolution task's down-sampling factor
EDGE_THRESHOLD = 0.2
TASK_NAMES = {"edges": "edges → item", "lowres": "4× low resolution → item", "edges_unpaired": "items ↔ edges"}


def edge_map(items: torch.Tensor) -> torch.Tensor:
    """uint8 N x C x H x W items -> uint8 N x C x H x W edge maps (white edges on black), deterministic."""
    x = items.float().div(255.0)
    grey = x.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    out = []
    for chunk in grey.split(4096):
        gx = F.conv2d(chunk, kx, padding=1)
        gy = F.conv2d(chunk, kx.transpose(2, 3), padding=1)
        mag = torch.sqrt(gx * gx + gy * gy)
        top = mag.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        out.append(((mag / top) > EDGE_THRESHOLD).to(torch.uint8) * 255)
    return torch.cat(out).expand(-1, items.shape[1], -1, -1).contiguous()


def low_resolution(items: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    """uint8 N x C x H x W -> uint8 N x C x H/scale x W/scale by area averaging (each output pixel the mean
    of a scale x scale block)."""
    return torch.cat([F.avg_pool2d(chunk.float(), scale).round().clamp(0, 255).to(torch.uint8)
                      for chunk in items.split(4096)])


def task_input(task: str, items: torch.Tensor) -> torch.Tensor:
    """What a built-in task makes of domain-B images as inputs (the translate panel's "make the input")."""
    return low_resolution(items) if task == "lowres" else edge_map(items)


def scaled(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1.0)


class PairData:
    """Training images of both domains (uint8, on a device) and a held-out set; `paired`: a[i] goes with b[i].

    held_a / held_b are the held-out inputs and their true targets (held_b is None when no targets exist:
    unpaired folders, whose held-out B images are kept apart in held_b_only)."""

    kind = "pairs"
    class_names = ()
    num_classes = 0

    def __init__(self, a, b, paired: bool, held_a, held_b, name: str, task: str = "", held_b_only=None):
        if not len(a) or not len(b):
            raise DataError(f"{name} has no training images in domain {'A' if not len(a) else 'B'}; add images.")
        self.a, self.b, self.paired = a, b, paired
        self.held_a, self.held_b = held_a, held_b
        self.held_b_only = held_b if held_b_only is None else held_b_only
        self.name, self.task = name, task
        self.shape = tuple(b.shape[1:])  # what A -> B makes
        self.input_shape = tuple(a.shape[1:])
        self.device = a.device

    def __len__(self):
        return len(self.a)

    @property
    def has_targets(self) -> bool:
        return self.held_b is not None

    def to(self, device):
        self.device = torch.device(device)
        for name in ("a", "b", "held_a", "held_b", "held_b_only"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(self.device))
        return self

    def checkpoint_fields(self) -> dict:
        return {"input_shape": list(self.input_shape), "task": self.task, "paired": self.paired}

    def _pick(self, count: int, n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randint(0, count, (n,), generator=rng, device=rng.device).to(self.device)

    def sample_pairs(self, n: int, rng: torch.Generator):
        """n aligned training pairs (A, B) in [−1, 1]."""
        idx = self._pick(len(self.a), n, rng)
        return scaled(self.a[idx]), scaled(self.b[idx])

    def sample_a(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return scaled(self.a[self._pick(len(self.a), n, rng)])

    def sample_b(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return scaled(self.b[self._pick(len(self.b), n, rng)])

    def sample(self, n: int, rng: torch.Generator):
        """Domain B images (what the models make), for code that asks any data set for real samples."""
        return self.sample_b(n, rng), None

    def held_out(self, n: int, rng: torch.Generator | None = None) -> dict:
        """n held-out inputs with their targets (and held-out B images for B -> A): the first n, or n drawn
        from rng. Keys a, b (targets; absent without targets), b_only."""
        count = len(self.held_a)
        idx = (torch.arange(min(n, count)) if rng is None else
               torch.randint(0, count, (n,), generator=rng, device=rng.device)).to(self.device)
        out = {"a": scaled(self.held_a[idx])}
        if self.held_b is not None:
            out["b"] = scaled(self.held_b[idx])
        others = self.held_b_only
        pick = idx if self.held_b is not None else idx % len(others)
        out["b_only"] = scaled(others[pick])
        return out


def split_held_out(images: torch.Tensor, share: float) -> tuple:
    """(training part, held-out part): the last `share` of the images (at least one, when there are two)."""
    held = max(1, math.floor(len(images) * share)) if len(images) > 1 else 0
    return images[:len(images) - held], images[len(images) - held:]


def builtin_task(config, task: str, train: bool = True, progress=None, cancel=None) -> PairData:
    """A built-in task from the config's labelled image set (train=False: the held-out split only, for sampling)."""
    from engine.data import make_dataset
    if config.data.image_size % SCALE:
        raise DataError(f"data.image_size = {config.data.image_size} is not a multiple of {SCALE}; "
                        f"the low-resolution task needs one.")
    test = make_dataset(config, progress=progress, train=False, cancel=cancel).images.cpu()
    held_items = test
    name = f"{config.data.dataset}:{task}"
    if task == "lowres":
        held_a, held_b = low_resolution(held_items), held_items
    elif task == "edges":
        held_a, held_b = edge_map(held_items), held_items
    else:  # unpaired: A = items, B = edges
        held_a, held_b = held_items, edge_map(held_items)
    if not train:
        return PairData(held_a[:1], held_b[:1], task != "edges_unpaired", held_a, held_b, name, task)
    items = make_dataset(config, progress=progress, cancel=cancel).images.cpu()
    if task == "lowres":
        return PairData(low_resolution(items), items, True, held_a, held_b, name, task)
    if task == "edges":
        return PairData(edge_map(items), items, True, held_a, held_b, name, task)
    half = len(items) // 2
    return PairData(items[:half], edge_map(items[half:]), False, held_a, held_b, name, task)


def folder_task(config, paired: bool, held_out: float, progress=None, warn=None, input_scale: int = 1) -> PairData:
    """A person's own A/B data (engine.img2img.folders), with the last `held_out` share held out. input_scale > 1
    (SRGAN): the A pictures, read at data.image_size like B's, are area-averaged that many times smaller."""
    from engine.img2img.folders import load_pair_folder
    d = config.data
    found = load_pair_folder(d.path, d.image_size, d.channels, paired, progress, warn)
    found_a = low_resolution(found.a, input_scale) if input_scale > 1 else found.a
    name = f"folder:{found.layout}"
    if found.paired:
        n = len(found.a)
        if n < 2:
            raise DataError(f"{d.path} holds {n} pair; image-to-image training needs at least 2 (one is held out).")
        a, held_a = split_held_out(found_a, held_out)
        b, held_b = split_held_out(found.b, held_out)
        return PairData(a, b, paired, held_a, held_b, name)
    if len(found.a) < 2 or len(found.b) < 2:
        raise DataError(f"{d.path} needs at least 2 images in each of A/ and B/ (one of each is held out).")
    a, held_a = split_held_out(found_a, held_out)
    b, held_b_only = split_held_out(found.b, held_out)
    return PairData(a, b, False, held_a, None, name, held_b_only=held_b_only)


class HeldOutLater:
    """Stands in for the data when a checkpoint is only sampled: the shapes now, the held-out set (for
    `gan-studio sample` and the exports) loaded on first use; translating needs none of it."""

    kind = "pairs"
    class_names = ()
    num_classes = 0

    def __init__(self, config, data: dict):
        self.config = config
        self.shape = tuple(data.get("shape", ()))
        self.input_shape = tuple(data.get("input_shape") or self.shape)
        self.task = data.get("task", "")
        self.paired = bool(data.get("paired", True))
        self.device = torch.device("cpu")
        self._held = None

    def to(self, device):
        self.device = torch.device(device)
        return self

    checkpoint_fields = PairData.checkpoint_fields  # the same fields, read from the checkpoint's data entry

    @property
    def has_targets(self) -> bool:
        return self._data().has_targets

    def _data(self) -> PairData:
        if self._held is None:
            c = self.config
            try:
                if c.data.dataset == "folder":
                    settings = next(iter(c.family.values()), None)
                    scale = self.shape[-1] // self.input_shape[-1] if self.shape and self.input_shape else 1
                    self._held = folder_task(c, self.paired, getattr(settings, "held_out", 0.1), input_scale=scale)
                else:
                    self._held = builtin_task(c, self.task, train=False)
            except (DataError, OSError) as exc:
                raise DataError(f"The held-out images of this checkpoint cannot be read ({exc}); translate images "
                                f"of your own with `gan-studio translate CKPT IN OUT`.") from None
            self._held.to(self.device)
        return self._held

    def held_out(self, n: int, rng: torch.Generator | None = None) -> dict:
        return self._data().held_out(n, rng)

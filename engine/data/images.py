"""Image data sets: Fashion-MNIST and MNIST (IDX files), CIFAR-10 (binary batches), any folder.

All of them end as one uint8 tensor N x C x H x W at the model's size and channels,
held in memory (on the training device) and sampled by index.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import warnings
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.download import CancelFn, DownloadError, download, file_md5
from engine.paths import cache_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Published checksums of the original distributions.
SOURCES = {
    "fashion_mnist": {
        "base": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
    "mnist": {
        "base": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "cifar10": {
        "base": "https://www.cs.toronto.edu/~kriz/",
        "md5": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
    },
}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

ProgressFn = Callable[[str, int, int], None]
WarnFn = Callable[[str], None]


class DataError(RuntimeError):
    """Data that cannot be used; the message is one sentence saying what to do."""


class ImageTensorDataset:
    kind = "images"

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, name: str, class_names=()):
        assert images.dtype == torch.uint8 and images.dim() == 4
        self.images = images
        self.labels = labels
        self.name = name
        self.class_names = tuple(class_names)
        self.num_classes = int(labels.max().item()) + 1 if labels is not None and len(labels) else 0
        self.shape = tuple(images.shape[1:])
        self.device = images.device
        self.shard_index: torch.Tensor | None = None  # training on several processes: this one's images

    def __len__(self):
        return len(self.images)

    def to(self, device):
        self.device = torch.device(device)
        self.images = self.images.to(self.device)
        if self.labels is not None:
            self.labels = self.labels.to(self.device)
        if getattr(self, "labelled_index", None) is not None:
            self.labelled_index = self.labelled_index.to(self.device)
        if self.shard_index is not None:
            self.shard_index = self.shard_index.to(self.device)
        return self

    def scaled(self, idx: torch.Tensor) -> torch.Tensor:
        """The images at idx as floats in [−1, 1], the range G's tanh produces."""
        return self.images[idx].float().div_(127.5).sub_(1.0)

    def sample(self, n: int, generator: torch.Generator):
        if self.shard_index is None:
            idx = torch.randint(0, len(self.images), (n,), generator=generator, device=self.device)
        else:
            idx = self.shard_index[torch.randint(0, len(self.shard_index), (n,), generator=generator,
                                                 device=self.device)]
        return self.scaled(idx), (self.labels[idx] if self.labels is not None else None)

    def shard(self, rank: int, world: int) -> None:
        """Training on `world` processes: this one draws from every world-th image only (engine.distributed)."""
        self.shard_index = torch.arange(rank, len(self.images), world, device=self.device)

    def keep_labels(self, count: int, seed: int) -> None:
        """Semi-supervised training: keep `count` labelled examples, as even over the classes as
        the data allow, chosen by seed; `sample_labelled` draws from them only."""
        if self.labels is None:
            raise DataError(f"{self.name} has no labels, so it cannot be used for semi-supervised training.")
        rng = np.random.default_rng(seed)
        labels = self.labels.cpu().numpy()
        per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(self.num_classes)]
        chosen, round_ = [], 0
        while len(chosen) < count and any(round_ < len(p) for p in per_class):
            chosen += [int(p[round_]) for p in per_class if round_ < len(p)][: count - len(chosen)]
            round_ += 1
        self.labelled_index = torch.tensor(sorted(chosen), dtype=torch.long, device=self.device)

    def sample_labelled(self, n: int, generator: torch.Generator):
        pick = torch.randint(0, len(self.labelled_index), (n,), generator=generator, device=self.device)
        idx = self.labelled_index[pick]
        return self.scaled(idx), self.labels[idx]


def fit_images(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 N x C x H x W -> uint8 N x channels x size x size (resize, channel convert)."""
    if images.shape[1] != channels:
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            images = images.expand(-1, 3, -1, -1).contiguous()
    if images.shape[-1] != size or images.shape[-2] != size:
        out = []
        for chunk in images.split(4096):
            out.append(F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                                     align_corners=False).round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(out)
    return images


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} could not be read ({exc}); delete it so it can be fetched again.") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DataError(f"{path} is not an IDX file of bytes; delete it so it can be fetched again.")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated; delete it so it can be fetched again.")
    return body.reshape(dims)


def _find_idx_dir(name: str, explicit: str, allow_download: bool, progress: ProgressFn | None,
                  cancel: CancelFn | None = None) -> Path:
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if name == "fashion_mnist":
        candidates.append(DEBIAN_FASHION_MNIST)
    target = cache_dir() / name
    candidates.append(target)
    for folder in candidates:
        if all((folder / f).is_file() for f in IDX_FILES[:2]):
            return folder
    if not allow_download:
        raise DataError(f"{name} is not on disk (looked in {', '.join(str(c) for c in candidates)}); "
                        f"set data.download = true or copy the IDX files there.")
    fetch_files(name, target, progress, cancel=cancel)
    return target


def fetch_files(name: str, target: Path, progress: ProgressFn | None = None, base: str | None = None,
                cancel: CancelFn | None = None) -> None:
    """Download the files of a data set into target, each verified by checksum; `cancel` (see
    engine.data.download.download) stops it between chunks with DownloadError."""
    source = SOURCES[name]
    base = base or source["base"]
    for filename, md5 in source["md5"].items():
        dest = target / filename
        if dest.is_file() and file_md5(dest) == md5:
            continue
        report = (lambda done, total, f=filename: progress(f"Downloading {f}", done, total)) if progress else None
        download(base + filename, dest, md5, report, cancel=cancel)


def load_idx_dataset(name: str, path: str = "", allow_download: bool = True,
                     progress: ProgressFn | None = None, train: bool = True,
                     cancel: CancelFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    folder = _find_idx_dir(name, path, allow_download, progress, cancel)
    images_file, labels_file = (IDX_FILES[0], IDX_FILES[1]) if train else (IDX_FILES[2], IDX_FILES[3])
    images = read_idx(folder / images_file)
    labels = read_idx(folder / labels_file)
    if len(images) != len(labels):
        raise DataError(f"{folder} holds {len(images)} images but {len(labels)} labels; delete the files "
                        f"so they can be fetched again.")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_cifar10(path: str = "", allow_download: bool = True, progress: ProgressFn | None = None,
                 train: bool = True, cancel: CancelFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR-10's binary distribution (never the pickled one)."""
    folder = Path(path) if path else cache_dir() / "cifar10"
    archive = folder / "cifar-10-binary.tar.gz"
    if not archive.is_file():
        if not allow_download:
            raise DataError(f"CIFAR-10 is not on disk ({archive}); set data.download = true or copy it there.")
        fetch_files("cifar10", folder, progress, cancel=cancel)
    wanted = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
    chunks = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if base in wanted and member.isfile():
                    chunks[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive} could not be read ({exc}); delete it so it can be fetched again.") from None
    if set(chunks) != set(wanted):
        raise DataError(f"{archive} lacks {sorted(set(wanted) - set(chunks))}; delete it so it can be fetched again.")
    raw = np.frombuffer(b"".join(chunks[w] for w in wanted), dtype=np.uint8)
    if raw.size % 3073:
        raise DataError(f"{archive} holds truncated batches; delete it so it can be fetched again.")
    records = raw.reshape(-1, 3073)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    images = torch.from_numpy(records[:, 1:].copy()).view(-1, 3, 32, 32)
    return images, labels


MAX_IMAGE_PIXELS = 50_000_000  # a folder image declaring more is skipped before it is decoded


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a loop of links
        return False


def _folder_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The files under root (hidden names left out, linked folders not entered) and the links under it
    that lead outside it (never followed)."""
    base = root.resolve()
    files, outside = [], []
    for folder, dirs, names in os.walk(root):  # os.walk does not enter linked folders
        here = Path(folder)
        for is_file_name, name in [(False, d) for d in dirs] + [(True, n) for n in names]:
            entry = here / name
            if name.startswith("."):
                continue
            if entry.is_symlink() and not _inside(entry, base):
                outside.append(entry)
            elif is_file_name and entry.is_file():
                files.append(entry)
    return sorted(files), sorted(outside)


def _eight_bit(img):
    """16- and 32-bit grey (modes I;16*, I, F) scaled to 8-bit L, which convert() would clip to white;
    other images unchanged."""
    from PIL import Image
    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img
    arr = np.asarray(img).astype(np.float64)
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode.startswith("I;16") or (img.mode == "I" and low >= 0 and high <= 65535):
        arr = arr / 257.0
    elif img.mode == "F" and low >= 0 and high <= 1:
        arr = arr * 255.0
    else:  # another range: stretch it to 0 .. 255
        arr = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


UNREADABLE, TOO_LARGE, OUTSIDE = "unreadable", "too large", "outside"  # why a file was skipped
T = TypeVar("T")


def skip_phrase(reason: str) -> str:
    """The words a warning uses for a reason to skip a file (other reasons are their own words)."""
    return {UNREADABLE: "not readable images", TOO_LARGE: f"over {MAX_IMAGE_PIXELS // 1_000_000} megapixels",
            OUTSIDE: "links leading outside the folder, not followed"}.get(reason, reason)


def skip_warning(skipped: dict[str, list[str]], total: int, where) -> str:
    """One sentence counting the files skipped (names by reason, in the order to tell them) of total in where."""
    names = [name for group in skipped.values() for name in group]
    reasons = ", ".join(f"{len(group)} {skip_phrase(reason)}" for reason, group in skipped.items() if group)
    shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
    return f"Skipped {len(names)} of {total} files in {where}: {reasons} ({shown})."


def fit_square(img, size: int, channels: int) -> np.ndarray:
    """An open PIL image as uint8 channels x size x size: grey (L) or RGB, centre-cropped to a square,
    resized with bicubic."""
    from PIL import Image
    w, h = img.size
    img = _eight_bit(img).convert("L" if channels == 1 else "RGB")
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def open_image(file: Path, use: Callable[..., T]) -> T | str:
    """use(image) on the image in file, or why it was skipped: TOO_LARGE when its header declares more
    than MAX_IMAGE_PIXELS (never decoded), UNREADABLE when it cannot be read."""
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                w, h = img.size
                if w * h > MAX_IMAGE_PIXELS:
                    return TOO_LARGE
                return use(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return TOO_LARGE
    except (UnidentifiedImageError, OSError, ValueError, MemoryError):
        return UNREADABLE


def read_image(file: Path, size: int, channels: int) -> np.ndarray | str:
    """The image in file as uint8 channels x size x size (fit_square), or why it was skipped (open_image)."""
    return open_image(file, lambda img: fit_square(img, size, channels))


def load_folder(path: str, size: int, channels: int, progress: ProgressFn | None = None,
                warn: WarnFn | None = None) -> torch.Tensor:
    """Every readable image under path, centre-cropped and resized; unreadable files, images over
    MAX_IMAGE_PIXELS (judged from the header, never decoded) and links leading outside the folder are
    skipped and counted."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; choose a folder that holds images.")
    files, outside = _folder_files(root)
    total = len(files) + len(outside)
    if not total:
        raise DataError(f"{root} is empty; choose a folder that holds images.")
    arrays, skipped = [], {UNREADABLE: [], TOO_LARGE: [], OUTSIDE: [p.name for p in outside]}
    for i, file in enumerate(files):
        arr = read_image(file, size, channels)
        if isinstance(arr, str):
            skipped[arr].append(file.name)
            continue
        arrays.append(arr)
        if progress and (i % 200 == 0 or i == len(files) - 1):
            progress(f"Reading images in {root.name}", i + 1, len(files))
    if not arrays:
        raise DataError(f"{root} holds no readable image ({total} files were not images, were over "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels or linked outside it); "
                        f"choose a folder of PNG or JPEG files.")
    if warn and any(skipped.values()):
        warn(skip_warning(skipped, total, root))
    return torch.from_numpy(np.stack(arrays))

"""Data sets by name: make_dataset(config) returns an object with kind, shape,
num_classes, to(device) and sample(n, generator) -> (x, labels or None)."""

from __future__ import annotations

from engine.config import LABELLED_IMAGE_DATASETS, LABELLED_IMAGE_NAMES, Config
from engine.data import synthetic
from engine.data.download import DownloadError
from engine.data.images import (FASHION_CLASSES, DataError, ImageTensorDataset, fit_images, load_cifar10,
                                load_folder, load_idx_dataset)

__all__ = ["make_dataset", "make_test_set", "DataError", "DownloadError"]


def make_test_set(config: Config, device="cpu"):
    """The held-out split of a labelled image data set (the semi-supervised classifier is scored on it)."""
    if config.data.dataset not in LABELLED_IMAGE_DATASETS:
        raise DataError(f"data.dataset = {config.data.dataset!r} has no test split; use "
                        f"{LABELLED_IMAGE_NAMES}.")
    return make_dataset(config, device=device, train=False)


def make_dataset(config: Config, progress=None, warn=None, device="cpu", train=True, cancel=None):
    """The data set a config names; train=False gives the held-out split of a labelled image set.
    cancel: a callable or threading.Event asked between download chunks; once set, a download stops
    with DownloadError ("... cancelled") and leaves no partial file."""
    d = config.data
    name = d.dataset
    if name == "painter":
        return synthetic.PainterCurves(device)
    if name == "ring8":
        return synthetic.ring8(device)
    if name == "grid25":
        return synthetic.grid25(device)
    if name == "spiral":
        return synthetic.Spiral(device)
    if name in ("fashion_mnist", "mnist"):
        images, labels = load_idx_dataset(name, d.path, d.download, progress, train=train, cancel=cancel)
        classes = FASHION_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    elif name == "cifar10":
        images, labels = load_cifar10(d.path, d.download, progress, train=train, cancel=cancel)
        classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    elif name == "folder":
        images = load_folder(d.path, d.image_size, d.channels, progress, warn)
        labels, classes = None, ()
    else:  # the config schema refuses other names
        raise DataError(f"Unknown data set {name!r}.")
    images = fit_images(images, d.image_size, d.channels)
    return ImageTensorDataset(images, labels, name, classes).to(device)

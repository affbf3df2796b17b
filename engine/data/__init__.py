"""Data sets by name: make_dataset(config) returns an object with kind, shape,
num_classes, to(device) and sample(n, generator) -> (x, labels or None)."""

from __future__ import annotations

from engine.config import Config
from engine.data import synthetic
from engine.data.download import DownloadError
from engine.data.images import (FASHION_CLASSES, DataError, ImageTensorDataset, fit_images, load_cifar10,
                                load_folder, load_idx_dataset)

__all__ = ["make_dataset", "make_test_set", "DataError", "DownloadError"]


def make_test_set(config: Config, device="cpu"):
    """The held-out split of a labelled image data set (the semi-supervised classifier is scored on it)."""
    d = config.data
    if d.dataset in ("fashion_mnist", "mnist"):
        images, labels = load_idx_dataset(d.dataset, d.path, d.download, train=False)
    elif d.dataset == "cifar10":
        images, labels = load_cifar10(d.path, d.download, train=False)
    else:
        raise DataError(f"data.dataset = {d.dataset!r} has no test split; use fashion_mnist, mnist or cifar10.")
    return ImageTensorDataset(fit_images(images, d.image_size, d.channels), labels, d.dataset).to(device)


def make_dataset(config: Config, progress=None, warn=None, device="cpu"):
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
        images, labels = load_idx_dataset(name, d.path, d.download, progress)
        classes = FASHION_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    elif name == "cifar10":
        images, labels = load_cifar10(d.path, d.download, progress)
        classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    elif name == "folder":
        images = load_folder(d.path, d.image_size, d.channels, progress, warn)
        labels, classes = None, ()
    else:  # the config schema refuses other names
        raise DataError(f"Unknown data set {name!r}.")
    images = fit_images(images, d.image_size, d.channels)
    return ImageTensorDataset(images, labels, name, classes).to(device)

"""The engine's side of contract 1: everything it tells the world is one of these.

Events hold plain CPU data only (floats, numpy arrays, paths); tensors never leave
the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class Started(Event):
    step: int
    device: str
    run_dir: Path | None
    config: dict


@dataclass(frozen=True)
class Metrics(Event):
    """Scalars at a step; group 'train' comes every report, 'quality' from the metrics thread."""
    step: int
    values: dict
    group: str = "train"


@dataclass(frozen=True)
class Samples(Event):
    """A snapshot of what G makes from the fixed noise.

    kind is 'images' (images: N x H x W x C uint8 grid tiles), 'points' (points: N x 2
    with real points and D's field over the plane) or 'curves' (points: N x 15).
    """
    step: int
    kind: str
    images: np.ndarray | None = None
    grid: np.ndarray | None = None
    points: np.ndarray | None = None
    real: np.ndarray | None = None
    field: np.ndarray | None = None
    extent: tuple | None = None
    path: Path | None = None


@dataclass(frozen=True)
class GeneratorWeights(Event):
    """A CPU copy of the sampling generator (the EMA copy when there is one), for the latent
    explorer; sent on sample steps while someone watches (commands.WatchGenerator)."""
    step: int
    config: dict
    data_shape: tuple
    num_classes: int
    weights: dict  # name -> numpy array


@dataclass(frozen=True)
class Checkpointed(Event):
    step: int
    path: Path


@dataclass(frozen=True)
class Paused(Event):
    step: int
    reason: str = ""


@dataclass(frozen=True)
class Resumed(Event):
    step: int


@dataclass(frozen=True)
class ParamChanged(Event):
    step: int
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class CommandRejected(Event):
    why: str


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the contract's name
    text: str


@dataclass(frozen=True)
class Progress(Event):
    """Progress of something slow that is not training (a download, loading a folder)."""
    task: str
    done: int
    total: int


@dataclass(frozen=True)
class RolledBack(Event):
    step: int
    path: Path


@dataclass(frozen=True)
class Finished(Event):
    step: int
    reason: str = "done"


@dataclass(frozen=True)
class Failed(Event):
    message: str
    traceback: str = ""
    step: int = 0

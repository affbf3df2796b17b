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
class Declaration:
    """What an algorithm tells the studio and the CLI to draw; plain data, the same for every family.

    plots: (title, ((series name, label, colour), ...)) per curve plot; anything else a step reports
    (and not in `settings`) goes to the "Model terms" plot, labelled from `terms`.
    settings: reported values that are settings (lr, k), not curves of the model.
    controls: dotted config keys that may change while this run trains.
    previews: what Samples carry ("images", "points", "curves", ...); every Samples has a picture.
    steerable: the latent explorer applies (codes or labels to steer).
    progress: (label, name, format) for the CLI's progress line, shown when reported.
    losses: name -> how a NaN warning names it; these are checked every step.
    quality_pairs: quality name -> (its label, companion name, companion label), drawn together.
    translation: the directions an image-to-image model translates ("AtoB", "BtoA"); the translate panel applies.
    """
    plots: tuple = ()
    terms: dict = field(default_factory=dict)
    settings: tuple = ()
    controls: tuple = ()
    previews: tuple = ("images",)
    steerable: bool = False
    progress: tuple = ()
    losses: dict = field(default_factory=dict)
    quality_pairs: dict = field(default_factory=dict)
    translation: tuple = ()


@dataclass(frozen=True)
class Started(Event):
    step: int
    device: str
    run_dir: Path | None
    config: dict
    declaration: Declaration = field(default_factory=Declaration)
    phase: str = ""


@dataclass(frozen=True)
class Metrics(Event):
    """Scalars at a step; group 'train' comes every report, 'quality' from the metrics thread."""
    step: int
    values: dict
    group: str = "train"
    phase: str = ""


@dataclass(frozen=True)
class Samples(Event):
    """A snapshot of what the sampling networks make from the fixed inputs.

    picture (H x W x 3 uint8) is always there. kind says what else is: 'images' (images: N x H x W x C
    uint8 tiles), 'points' (points: N x 2 with real points and, for a GAN, D's field over the plane),
    'curves' (points: N x 15) or 'text' (text: one line per sample; tokens: each sample's tokens, with
    shades: a value in [0, 1] per token, D's reward, where there is one).
    """
    step: int
    kind: str
    picture: np.ndarray | None = None
    images: np.ndarray | None = None
    points: np.ndarray | None = None
    real: np.ndarray | None = None
    field: np.ndarray | None = None
    extent: tuple | None = None
    text: tuple | None = None
    tokens: tuple | None = None
    shades: tuple | None = None
    joiner: str = " "  # between tokens when text is shown ('' for characters)
    audio: np.ndarray | None = None
    rate: int = 0
    title: str = ""
    path: Path | None = None
    phase: str = ""


@dataclass(frozen=True)
class GeneratorWeights(Event):
    """A CPU copy of the sampling networks (their EMA copies where there are some), for the latent
    explorer; sent on sample steps while someone watches (commands.WatchGenerator)."""
    step: int
    config: dict
    data_shape: tuple
    num_classes: int
    weights: dict  # net name -> {parameter name -> numpy array}
    data_fields: dict = field(default_factory=dict)  # what the data keeps beside its shape (a vocabulary)


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
class PhaseChanged(Event):
    """The algorithm entered another phase of training (SeqGAN: MLE pre-training → D pre-training → adversarial)."""
    step: int
    old: str
    new: str


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

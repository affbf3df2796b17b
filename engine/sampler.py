"""Sampling without a trainer: the sampling networks of a checkpoint (or of the weights a running
trainer sends the latent explorer), and nothing else: no optimizers, no data set beyond the shapes,
and no change to the process's global random state. `gan-studio sample`, `eval`, the exports and
the latent explorer all draw through a Sampler.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine import algorithms
from engine import events as ev
from engine.algorithms.base import build
from engine.checkpoint import CheckpointError, check_data_matches, load_checkpoint, restore_into
from engine.config import LOW_DIM_DATASETS, Config
from engine.previews import DataPreview


class ShapeOnly:
    """Stands in for an image data set when only the networks' shapes are needed."""
    kind = "images"
    class_names = ()

    def __init__(self, shape, num_classes: int):
        self.shape = tuple(shape)
        self.num_classes = num_classes

    def to(self, device):
        return self


class Sampler:
    """A family's sampling networks (or all its networks, nets="all"), in eval mode, with their previews."""

    def __init__(self, config: Config, dataset, device="cpu", nets=None):
        family = algorithms.get(config.algorithm)
        self.config = config
        self.dataset = dataset
        self.device = torch.device(device)
        self.sampling_names = tuple(family.sampling_nets)
        wanted = None if nets == "all" else self.sampling_names
        self.algorithm = build(config, dataset, self.device, torch.Generator(), wanted)
        for net in self.algorithm.nets.values():
            net.eval().requires_grad_(False)
        self.preview = DataPreview(dataset, config.train.seed, config.train.sample_count, self.device)
        self.step = 0  # the training step its weights come from

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def sampling_nets(self) -> dict:
        """The networks samples come from (as engine.loop.Trainer.sampling_nets answers for a running trainer)."""
        return {name: self.algorithm.nets[name] for name in self.sampling_names}

    @torch.no_grad()
    def generate(self, inputs: dict) -> torch.Tensor:
        return self.algorithm.generate(inputs, self.sampling_nets())

    def pictures(self, outputs: torch.Tensor) -> tuple:
        return self.algorithm.pictures(self.preview, outputs)

    def load(self, state: dict) -> None:
        """Weights from a checkpoint state; the sampling networks take their EMA copies where there are some."""
        restore_into(state, self.algorithm.nets, prefer_ema=self.sampling_names)


def _sampling_config(config_dict: dict, device: str) -> Config:
    """A run's config for drawing samples only: on the given device, float32, no quality metrics."""
    config = Config.from_saved(config_dict)
    config.train.device = device
    config.train.mixed_precision = False
    config.train.metrics_every = 0
    return config


def _data_for(config: Config, data: dict, with_data: bool):
    """The data set a sampler needs: the cheap built-in toys themselves, an image set's shape only (or
    what the family keeps in the checkpoint's data entry, such as a vocabulary)."""
    family = algorithms.get(config.algorithm)
    if with_data:
        dataset = family.make_data(config)
        check_data_matches(data, dataset)
        return dataset
    stand_in = family.sampling_data(config, data)
    if stand_in is not None:
        return stand_in
    if config.data.dataset in LOW_DIM_DATASETS:
        return family.make_data(config)
    return ShapeOnly(data.get("shape", ()), data.get("num_classes", 0))


def load_sampler(path: str | Path | dict, device: str = "cpu", nets=None, with_data: bool = False) -> Sampler:
    """A sampler from a checkpoint (a path or a loaded state). nets="all" and with_data=True build every
    network and the real data set as well (for `eval`)."""
    state = load_checkpoint(path) if not isinstance(path, dict) else path
    config = _sampling_config(state["config"], device)
    data = state.get("data") or {}
    dataset = _data_for(config, data, with_data)
    if tuple(dataset.shape) != tuple(data.get("shape", ())):
        raise CheckpointError(f"The checkpoint was trained on data shaped {tuple(data.get('shape', ()))}, "
                              f"not {tuple(dataset.shape)}; use the data set it was trained on.")
    sampler = Sampler(config, dataset.to(device), device, nets)
    sampler.load(state)
    sampler.step = sampler.algorithm.step = int(state.get("step", 0))
    return sampler


def sampler_from_weights(event: ev.GeneratorWeights, device: str = "cpu") -> Sampler:
    """A sampler holding the weights of a GeneratorWeights event (the latent explorer follows a run so)."""
    config = _sampling_config(event.config, device)
    data = {"shape": list(event.data_shape), "num_classes": event.num_classes, **event.data_fields}
    sampler = Sampler(config, _data_for(config, data, False), device)
    for name, weights in event.weights.items():
        sampler.algorithm.nets[name].load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    sampler.step = event.step
    return sampler

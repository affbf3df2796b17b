"""Where tensors live: the training device a config asks for, and moving a family's inputs there."""

from __future__ import annotations

import torch

from engine.settings import ConfigError


def pick_device(want: str) -> torch.device:
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if want == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if want == "cuda" and not cuda:
        raise ConfigError("train.device = 'cuda' but this machine has no usable CUDA GPU; use 'auto' or 'cpu'.")
    if want == "mps" and not mps:
        raise ConfigError("train.device = 'mps' but this machine has no Apple GPU; use 'auto' or 'cpu'.")
    return torch.device(want)


def inputs_to(inputs: dict, device) -> dict:
    return {name: None if value is None else value.to(device) for name, value in inputs.items()}

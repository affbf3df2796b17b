"""Files the engine ships inside the package (so a wheel or pipx install has them): the built-in presets
(presets/*.toml) and the Fashion-MNIST evaluator (its weights and card). Found with importlib.resources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A file or folder of the package's resources as a path (wheels install them as plain files)."""
    return Path(str(resources.files("engine.resources").joinpath(*parts)))

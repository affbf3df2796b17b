"""Algorithm families by name.

Built-in families are modules of this package; another package adds one through the entry-point
group `gan_studio.algorithms` (name = "module:Class"). A family is a subclass of
engine.algorithms.base.Algorithm. This module imports no family until one is asked for, so the
config schema can ask which families exist without an import cycle.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

ENTRY_POINT_GROUP = "gan_studio.algorithms"
BUILTIN = {
    "gan": "engine.algorithms.gan:GanAlgorithm",
    "vae": "engine.algorithms.vae:VaeAlgorithm",
    "seqgan": "engine.algorithms.seqgan:SeqGanAlgorithm",
    "badgan": "engine.algorithms.badgan:BadGanAlgorithm",
    "triplegan": "engine.algorithms.triplegan:TripleGanAlgorithm",
    "stackgan": "engine.algorithms.stackgan:StackGanAlgorithm",
    "lapgan": "engine.algorithms.lapgan:LapganAlgorithm",
    "gran": "engine.algorithms.gran:GranAlgorithm",
    "composite": "engine.algorithms.composite:CompositeAlgorithm",
    "pix2pix": "engine.algorithms.pix2pix:Pix2PixAlgorithm",
    "cyclegan": "engine.algorithms.cyclegan:CycleGanAlgorithm",
    "distancegan": "engine.algorithms.cyclegan:DistanceGanAlgorithm",
    "dtn": "engine.algorithms.dtn:DtnAlgorithm",
    "srgan": "engine.algorithms.srgan:SrganAlgorithm",
    "segan": "engine.algorithms.segan:SeganAlgorithm",
}
_loaded: dict[str, type] = {}
_registered: dict[str, type] = {}
_scanned: tuple = ((), {})  # (sys.path when scanned, entry points found)


def _entry_points() -> dict:
    """The installed families; scanned again only when sys.path changes (a scan reads every package)."""
    global _scanned
    path = tuple(sys.path)
    if _scanned[0] != path:
        _scanned = (path, {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
    return _scanned[1]


def names() -> list[str]:
    """Every family that can be asked for: built-in, registered here, or installed through entry points."""
    return list(dict.fromkeys([*BUILTIN, *_registered, *_entry_points()]))


def register(cls: type) -> type:
    """Add a family from code (a test, a notebook); it is known to this process only."""
    _registered[cls.name] = cls
    _loaded.pop(cls.name, None)
    return cls


def get(name: str) -> type:
    """The family's class; KeyError when no family has that name."""
    if name in _registered:
        return _registered[name]
    if name not in _loaded:
        if name in BUILTIN:
            module, _, attr = BUILTIN[name].partition(":")
            _loaded[name] = getattr(importlib.import_module(module), attr)
        else:
            points = _entry_points()
            if name not in points:
                raise KeyError(name)
            _loaded[name] = points[name].load()
    return _loaded[name]

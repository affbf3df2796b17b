"""The world's side of contract 2: commands put on the trainer's queue.

The trainer drains the queue at the top of every step, never in the middle of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    pass


@dataclass(frozen=True)
class Pause(Command):
    pass


@dataclass(frozen=True)
class Resume(Command):
    pass


@dataclass(frozen=True)
class Step(Command):
    """Run n generator steps (each with its k discriminator steps), then stay paused."""
    n: int = 1


@dataclass(frozen=True)
class Stop(Command):
    save: bool = True


@dataclass(frozen=True)
class Set(Command):
    name: str
    value: Any


@dataclass(frozen=True)
class SaveNow(Command):
    pass


@dataclass(frozen=True)
class SampleNow(Command):
    pass


@dataclass(frozen=True)
class Rollback(Command):
    """Restore the last good checkpoint (after a NaN pause, say)."""
    pass


@dataclass(frozen=True)
class WatchGenerator(Command):
    """Send GeneratorWeights now and on every sample step (on=True), or stop sending them."""
    on: bool = True

"""Per-user folders (data cache, user presets, runs), overridable by environment variables; where they lie on
each system is platformdirs' answer (XDG on Linux, ~/Library on macOS, %LOCALAPPDATA% on Windows)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "gan-studio"


def user_data_dir() -> Path:
    if os.environ.get("GAN_STUDIO_HOME"):
        return Path(os.environ["GAN_STUDIO_HOME"])
    return platformdirs.user_data_path(APP, appauthor=False)


def cache_dir() -> Path:
    if os.environ.get("GAN_STUDIO_CACHE"):
        return Path(os.environ["GAN_STUDIO_CACHE"])
    return platformdirs.user_cache_path(APP, appauthor=False)


def runs_dir() -> Path:
    return user_data_dir() / "runs"


def new_run_dir(root: Path, name: str, suffix: str = "") -> Path:
    """ROOT/NAME-TIME for a new run: NAME made safe as a folder name (a preset named '../x' or '/tmp/x' stays
    inside ROOT), and -2, -3, ... when a run started in the same second already has the folder."""
    import re
    import time
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "run"
    return unused_path(Path(root), f"{safe}{suffix}-{time.strftime('%Y%m%d-%H%M%S')}")


def unused_path(folder: Path, name: str) -> Path:
    """folder/name, or folder/name-2, -3, ... when that is taken (two things saved within the same second)."""
    path, n = folder / name, 2
    while path.exists():
        path, n = folder / f"{name}-{n}", n + 1
    return path

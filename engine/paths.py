"""Per-user folders (data cache, user presets, runs), overridable by environment variables."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_data_dir() -> Path:
    if os.environ.get("GAN_STUDIO_HOME"):
        return Path(os.environ["GAN_STUDIO_HOME"])
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "gan-studio"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "gan-studio"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "gan-studio"


def cache_dir() -> Path:
    if os.environ.get("GAN_STUDIO_CACHE"):
        return Path(os.environ["GAN_STUDIO_CACHE"])
    if sys.platform.startswith("linux"):
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gan-studio"
    return user_data_dir() / "cache"


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

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

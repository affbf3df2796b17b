"""Presets on disk: the built-in folder and the user's own, loading with overrides, writing back as TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from engine.config import Config, ConfigError
from engine.resources import resource_path

PRESET_DIR = resource_path("presets")  # inside the package, so installed wheels have them


def user_preset_dir() -> Path:
    from engine.paths import user_data_dir
    return user_data_dir() / "presets"


def preset_paths() -> list[Path]:
    """Built-in presets, then the user's own (a user preset of the same name wins)."""
    found: dict[str, Path] = {}
    for folder in (PRESET_DIR, user_preset_dir()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = path
    return list(found.values())


def find_preset(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    for candidate in preset_paths():
        if candidate.stem == name_or_path:
            return candidate
    names = ", ".join(p.stem for p in preset_paths())
    raise ConfigError(f"No preset named {name_or_path!r}; built-in presets are: {names}.")


def load_preset(name_or_path: str | Path, overrides: list[str] | None = None, saved: bool = False) -> Config:
    """saved: the file is a run's own config.toml, read as Config.from_saved reads a checkpoint's settings."""
    path = find_preset(str(name_or_path))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML ({exc}); fix the file and load it again.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not a text file; a preset must be UTF-8 TOML.") from None
    try:
        config = Config.from_dict(raw, saved=saved)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    apply_overrides(config, overrides or [])
    return config


def apply_overrides(config: Config, items: list[str]) -> None:
    """Apply key=value overrides, then check the whole config once (so related keys can change together)."""
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not key=value; write it like --set k=5 or --set optim.lr_d=1e-4.")
        key, value = item.split("=", 1)
        config.set(key.strip(), value.strip(), check=False)
    config.check()


# -- writing a resolved config back as TOML ------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def to_toml(config: Config) -> str:
    data = config.to_dict()
    lines = [f"name = {_toml_value(data['name'])}", f"description = {_toml_value(data['description'])}",
             f"algorithm = {_toml_value(data['algorithm'])}", ""]
    for section in config.sections():
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)

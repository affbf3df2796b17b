"""Typed preset schema: TOML in, validated dataclasses out.

A preset is one TOML file with a `name`, a `description` and the sections below.
Unknown keys and bad values are errors whose message names the key, the value and
what is allowed. `--set key=value` overrides and live `Set` commands go through the
same checks, so there is exactly one place that decides what a valid value is.

`algorithm` names the family that trains (engine.algorithms; "gan" by default). The sections
below are shared; a family may add a section of its own (the VAE's [vae]), and a field may
belong to some families only (`families`) or matter only when another field says so (`when`):
the studio's form shows just the fields that do something for the chosen family and options.
"""

from __future__ import annotations

import copy
import functools
import math
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine import algorithms
from engine.settings import (ENERGY_LOSSES, LABELLED_IMAGE_DATASETS, LABELLED_IMAGE_NAMES, LOW_DIM_DATASETS, SECTIONS,
                             TARGET_LOSSES, ConfigError, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig,
                             TricksConfig, coerce)

__all__ = ["Config", "ConfigError", "ENERGY_LOSSES", "LABELLED_IMAGE_DATASETS", "LABELLED_IMAGE_NAMES",
           "LOW_DIM_DATASETS", "SECTIONS", "TARGET_LOSSES", "aliases", "all_keys", "field_spec", "live_keys",
           "migrate", "resolution_steps", "resolve_key", "start_side"]

TOP_LEVEL = ("name", "description", "algorithm")


def family_sections() -> dict[str, tuple[type, str]]:
    """Every registered family's own section: section name -> (settings dataclass, family name)."""
    return _family_sections(tuple((name, algorithms.get(name)) for name in algorithms.names()))


@functools.lru_cache(maxsize=8)
def _family_sections(families: tuple) -> dict:
    return {cls.section: (cls.settings, name) for name, cls in families if getattr(cls, "settings", None) is not None}


@functools.lru_cache(maxsize=8)
def _keys_and_aliases(sections: tuple) -> tuple[list, dict]:
    keys = [f"{s}.{f.name}" for s, cls in sections for f in dataclasses.fields(cls)]
    found: dict[str, list] = {}  # two families may give their fields one short name (l1_weight: pix2pix, SEGAN)
    for s, cls in sections:
        for f in dataclasses.fields(cls):
            if f.metadata.get("alias"):
                found.setdefault(f.metadata["alias"], []).append(f"{s}.{f.name}")
    return keys, found


def _all_sections() -> tuple:
    return tuple(SECTIONS.items()) + tuple((s, cls) for s, (cls, _) in family_sections().items())


def _owner_of(section: str) -> str | None:
    entry = family_sections().get(section)
    return entry[1] if entry else None


@dataclass
class Config:
    name: str = "untitled"
    description: str = ""
    algorithm: str = "gan"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)
    family: dict = field(default_factory=dict)  # the chosen algorithm's own section, if it has one

    def __getattr__(self, name: str):
        family = self.__dict__.get("family")
        if family and name in family:
            return family[name]
        raise AttributeError(name)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_saved(cls, raw: dict) -> "Config":
        """A config a run or checkpoint wrote. Settings its family never read go back to their defaults first
        (a [model] section StackGAN builds without, kept from the preset shown before; model.g_fc for a family
        with its own G): they did nothing while it trained, and runs written before they were refused still open."""
        return cls.from_dict(raw, saved=True)

    @classmethod
    def from_dict(cls, raw: dict, saved: bool = False) -> "Config":
        raw = migrate(raw)
        config = cls()
        if "algorithm" in raw:
            config.set("algorithm", raw["algorithm"], check=False)
        for key, value in raw.items():
            if key in ("name", "description"):
                if not isinstance(value, str):
                    raise ConfigError(f"{key} = {value!r} is not allowed: it must be text.")
                bad = next((ch for ch in value if ord(ch) < 32 or ord(ch) == 127), None)
                if bad is not None:
                    raise ConfigError(f"{key} holds the control character U+{ord(bad):04X}, which a preset file "
                                      f"cannot keep; remove it.")
                setattr(config, key, value)
            elif key == "algorithm":
                continue
            elif key in SECTIONS or key in family_sections():
                if not isinstance(value, dict):
                    raise ConfigError(f"[{key}] must be a table of settings, not {value!r}.")
                for sub, sub_value in value.items():
                    config.set(f"{key}.{sub}", sub_value, check=False)
            else:
                raise ConfigError(
                    f"Unknown key {key!r}; allowed at the top level: name, description, algorithm, "
                    f"and the sections {', '.join('[' + s + ']' for s in list(SECTIONS) + list(config.family))}.")
        for key in config.foreign_settings(config.algorithm) if saved else ():
            config.set(key, _default(key), check=False)
        config.check()
        return config

    def to_dict(self) -> dict:
        out = {"name": self.name, "description": self.description, "algorithm": self.algorithm}
        for section in SECTIONS:
            out[section] = dataclasses.asdict(getattr(self, section))
        for section, settings in self.family.items():
            out[section] = dataclasses.asdict(settings)
        return out

    def copy(self) -> "Config":
        return copy.deepcopy(self)

    def sections(self) -> dict[str, type]:
        """This config's sections: the shared ones, then the algorithm's own."""
        return {**SECTIONS, **{name: type(settings) for name, settings in self.family.items()}}

    # -- access by dotted name --------------------------------------------------
    def set(self, key: str, value: Any, *, check: bool = True) -> tuple[str, Any, Any]:
        """Set one field by dotted name (or alias / unique bare name); returns (key, old, new)."""
        if key == "algorithm":
            return self._set_algorithm(value, check)
        key = resolve_key(key, self)
        section_name, name = key.split(".")
        if section_name not in SECTIONS and section_name not in self.family:
            raise ConfigError(f"{key} belongs to algorithm {_owner_of(section_name)!r}, but this preset uses "
                              f"algorithm = {self.algorithm!r}; set algorithm = {_owner_of(section_name)!r} first.")
        section = getattr(self, section_name)
        spec = field_spec(key)
        new = coerce(key, spec, value)
        old = getattr(section, name)
        setattr(section, name, new)
        if check:
            try:
                self.check()
            except ConfigError:
                setattr(section, name, old)
                raise
        return key, old, new

    def _set_algorithm(self, value, check: bool) -> tuple[str, Any, Any]:
        names = algorithms.names()
        if not isinstance(value, str) or value not in names:
            raise ConfigError(f"algorithm = {value!r} is not allowed: it must be one of "
                              f"{', '.join(repr(n) for n in names)}.")
        old, old_family = self.algorithm, self.family
        self.algorithm = value
        cls = algorithms.get(value)
        if getattr(cls, "settings", None) is None:
            self.family = {}
        elif cls.section not in old_family:
            self.family = {cls.section: cls.settings()}
        if check:
            try:
                self.check()
            except ConfigError:
                self.algorithm, self.family = old, old_family
                raise
        return "algorithm", old, value

    def switch_algorithm(self, value: str) -> list[str]:
        """Set the algorithm, first turning off what is set here that only other families have (ring8's R1
        penalty, switching to the VAE); returns those keys. Refuses as `set` does, and then changes nothing."""
        trial = self.copy()
        foreign = trial.foreign_settings(value)
        for key in foreign:
            trial.set(key, _default(key), check=False)
        trial.set("algorithm", value)
        self.__dict__.update(trial.__dict__)
        return foreign

    def foreign_settings(self, algorithm: str) -> list[str]:
        """The keys set away from their defaults here that `algorithm` does not have: another family's, or in a
        section it builds without (StackGAN makes its own networks: no `model` section)."""
        base = algorithms.get(algorithm).base_sections

        def foreign(key: str) -> bool:
            families = field_spec(key).metadata.get("families")
            return key.split(".")[0] not in base or families is not None and algorithm not in families

        return [key for key in self.keys()
                if key.split(".")[0] not in self.family and foreign(key) and self.get(key) != _default(key)]

    def get(self, key: str) -> Any:
        if key == "algorithm":
            return self.algorithm
        key = resolve_key(key, self)
        section_name, name = key.split(".")
        return getattr(getattr(self, section_name), name)

    # -- which fields matter --------------------------------------------------------
    def relevant(self, key: str) -> bool:
        """Does this field do anything for this config's algorithm and options? (The form hides it if not.)"""
        section_name = key.split(".")[0]
        if section_name in self.family:
            spec = field_spec(key)
        else:
            if section_name not in algorithms.get(self.algorithm).base_sections:
                return False
            spec = field_spec(key)
            families = spec.metadata.get("families")
            if families is not None and self.algorithm not in families:
                return False
        when = spec.metadata.get("when")
        return when is None or bool(when(self))

    def keys(self) -> list[str]:
        return [f"{s}.{f.name}" for s, cls in self.sections().items() for f in dataclasses.fields(cls)]

    def live_keys(self) -> list[str]:
        """The fields that may change while this config trains (and do something when they do)."""
        return [k for k in self.keys() if field_spec(k).metadata.get("live") and self.relevant(k)]

    # -- whole-config rules ---------------------------------------------------------
    def check(self) -> None:
        d, m = self.data, self.model
        if m.architecture == "dcgan" and d.dataset in LOW_DIM_DATASETS:
            raise ConfigError(
                f"model.architecture = 'dcgan' needs image data, but data.dataset = {d.dataset!r}; "
                f"use architecture 'mlp' or an image data set.")
        if d.dataset == "folder" and not d.path:
            raise ConfigError("data.dataset = 'folder' needs data.path set to a folder of images.")
        if self.model.upsample != "transposed" and self.model.architecture != "dcgan":
            raise ConfigError(f"model.upsample = {self.model.upsample!r} needs model.architecture = 'dcgan': the mlp "
                              f"networks have no feature maps to upsample.")
        if self.train.mixed_precision and self.train.device in ("cpu", "mps"):
            raise ConfigError("train.mixed_precision = true is only available with train.device = 'cuda' or 'auto'.")
        foreign = self.foreign_settings(self.algorithm)  # another family's settings must stay at their defaults
        if foreign:
            key, families = foreign[0], field_spec(foreign[0]).metadata.get("families")
            if key.split(".")[0] not in algorithms.get(self.algorithm).base_sections:
                raise ConfigError(f"{key} is not allowed with algorithm = {self.algorithm!r}, which has no "
                                  f"[{key.split('.')[0]}] section (it builds its own); leave {key} out.")
            raise ConfigError(f"{key} is not allowed with algorithm = {self.algorithm!r}: it is a setting of "
                              f"{' and '.join(repr(f) for f in families)}; turn {key} off or leave it out.")
        algorithms.get(self.algorithm).check_config(self)


def migrate(raw: dict) -> dict:
    """Read a config written before families existed: the VAE was loss.name = 'vae' with loss.vae_sigma."""
    loss = raw.get("loss")
    if not isinstance(loss, dict) or "vae_sigma" not in loss and loss.get("name") != "vae":
        return raw
    raw = copy.deepcopy(raw)
    loss = raw["loss"]
    sigma = loss.pop("vae_sigma", None)
    if loss.get("name") == "vae":
        loss.pop("name")
        raw["algorithm"] = "vae"
        if sigma is not None:
            raw.setdefault("vae", {})["sigma"] = sigma
    return raw


def _default(key: str):
    spec = field_spec(key)
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


def start_side(image_size: int) -> int:
    """Side of the smallest feature map of the dcgan networks."""
    return 7 if image_size == 28 else 4


def resolution_steps(image_size: int) -> int:
    """How many times the dcgan networks halve (D) or double (G) the side between image and start_side."""
    return int(round(math.log2(image_size / start_side(image_size))))


def _section_class(name: str) -> type | None:
    return SECTIONS.get(name) or family_sections().get(name, (None,))[0]


def field_spec(key: str) -> dataclasses.Field:
    section_name, name = key.split(".")
    cls = _section_class(section_name)
    for f in dataclasses.fields(cls) if cls is not None else ():
        if f.name == name:
            return f
    raise KeyError(key)


def all_keys() -> list[str]:
    """Every field of every section, the families' own included."""
    return list(_keys_and_aliases(_all_sections())[0])


def aliases() -> dict[str, str]:
    """Short name -> full key (where two families share a short name, the first; resolve_key picks by config)."""
    return {alias: keys[0] for alias, keys in _keys_and_aliases(_all_sections())[1].items()}


def short_name(key: str) -> str:
    """The short name a person types for a full key (lr_d for optim.lr_d), or the key itself when it has none."""
    return next((alias for alias, keys in _keys_and_aliases(_all_sections())[1].items() if key in keys), key)


def live_keys() -> list[str]:
    """Fields that may change while training runs (between steps), in any family."""
    return [k for k in all_keys() if field_spec(k).metadata.get("live")]


def resolve_key(key: str, config=None) -> str:
    """Turn 'k', 'lr_d', 'batch_size' or 'train.seed' into a full dotted key, or refuse. A short name two families
    share means the field of `config`'s family, when a config is given."""
    named = _keys_and_aliases(_all_sections())[1].get(key)  # the full keys with this short name
    if named:
        if config is not None and len(named) > 1:  # the family's: SEGAN's batch_size is segan.batch, not data's
            sections = {*config.family, *algorithms.get(config.algorithm).base_sections}
            own = [k for k in named if k.split(".")[0] in sections]
            if own:
                return own[0]
        return named[0]
    keys = all_keys()
    if key in keys:
        return key
    if "." in key:
        section = key.split(".")[0]
        cls = _section_class(section)
        if cls is not None:
            allowed = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"Unknown key {key!r}; [{section}] allows: {allowed}.")
        sections = list(SECTIONS) + list(family_sections())
        raise ConfigError(f"Unknown section in {key!r}; sections are: {', '.join(sections)}.")
    matches = [k for k in keys if k.split(".")[1] == key]
    shared = [k for k in matches if k.split(".")[0] in SECTIONS]
    if len(matches) == 1 or len(shared) == 1:  # a shared section's field wins over a family's of the same name
        return (shared or matches)[0]
    if matches:
        raise ConfigError(f"{key!r} is a field of several sections ({', '.join(matches)}); name the section, "
                          f"e.g. {matches[0]}.")
    raise ConfigError(f"Unknown key {key!r}; use section.key, e.g. train.seed, or one of: "
                      f"{', '.join(sorted(aliases()))}.")



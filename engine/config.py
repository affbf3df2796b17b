"""Typed preset schema: TOML in, validated dataclasses out.

A preset is one TOML file with a `name`, a `description` and the sections below.
Unknown keys and bad values are errors whose message names the key, the value and
what is allowed. `--set key=value` overrides and live `Set` commands go through the
same checks, so there is exactly one place that decides what a valid value is.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

DATASETS = ("painter", "ring8", "grid25", "spiral", "fashion_mnist", "mnist", "cifar10", "folder")
LOW_DIM_DATASETS = ("painter", "ring8", "grid25", "spiral")
LABELLED_IMAGE_DATASETS = ("fashion_mnist", "mnist", "cifar10")  # labels and a test split
LABELLED_IMAGE_NAMES = ", ".join(LABELLED_IMAGE_DATASETS[:-1]) + " or " + LABELLED_IMAGE_DATASETS[-1]
LOSSES = ("minimax", "non_saturating", "wgan", "wgan_gp", "least_squares", "hinge", "ebgan", "began",
          "loss_sensitive", "vae")
ENERGY_LOSSES = ("ebgan", "began")
TARGET_LOSSES = ("minimax", "non_saturating", "least_squares")  # the ones one-sided label smoothing acts on
ARCHITECTURES = ("mlp", "dcgan")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A preset, override or live change that is not allowed; the message is one sentence."""


def _f(default, help: str, *, choices=None, min=None, max=None, gt=None, live=False, alias=None, size=None):
    meta = {"help": help, "choices": choices, "min": min, "max": max, "gt": gt, "live": live,
            "alias": alias, "size": size}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    dataset: str = _f("ring8", "which data to learn", choices=DATASETS)
    path: str = _f("", "image folder for dataset = 'folder', or a data directory to use instead of the defaults")
    image_size: int = _f(28, "side of the square images the models make", choices=(28, 32, 64))
    channels: int = _f(1, "1 for grey, 3 for colour", choices=(1, 3))
    batch_size: int = _f(64, "samples per batch", min=1, max=4096)
    download: bool = _f(True, "download MNIST-style data sets when they are not on disk")
    labelled: int = _f(100, "semi-supervised: labelled examples kept (balanced over classes); the rest are unlabelled",
                       min=1, max=100000)


@dataclass
class ModelConfig:
    architecture: str = _f("mlp", "network family for G and D", choices=ARCHITECTURES)
    noise_dim: int = _f(2, "size of the noise vector z", min=1, max=1024)
    noise_distribution: str = _f("normal", "distribution of z", choices=("normal", "uniform"))
    hidden_width: int = _f(128, "units per hidden layer (mlp)", min=1, max=8192)
    depth: int = _f(3, "hidden layers (mlp)", min=1, max=16)
    activation: str = _f("relu", "hidden activation of G (mlp); D uses leaky_relu", choices=ACTIVATIONS)
    base_channels: int = _f(32, "channels of the widest-resolution conv layer (dcgan)", min=4, max=512)
    d_batchnorm: bool = _f(True, "batch norm in D's conv layers (dcgan); must be off for wgan_gp")
    conditional: bool = _f(False, "feed the class label to G (embedding) and D (projection)")
    auxiliary_classifier: bool = _f(False, "AC-GAN: G gets the label, D predicts it with an extra head")
    info_categorical: list = _f([], "InfoGAN: number of values of each categorical code")
    info_continuous: int = _f(0, "InfoGAN: number of continuous codes, each U[-1, 1]", min=0, max=32)
    info_weight: float = _f(1.0, "InfoGAN: weight of the mutual-information term", min=0.0)
    spectral_norm: bool = _f(False, "spectral normalisation of every layer of D (Miyato et al. 2018)")
    semi_supervised: bool = _f(False, "K+1-class D: K real classes plus fake, trained with data.labelled labels")
    ae_code_dim: int = _f(64, "code size of the autoencoder D (ebgan, began)", min=1, max=4096)


@dataclass
class LossConfig:
    name: str = _f("non_saturating", "the adversarial loss", choices=LOSSES)
    gp_weight: float = _f(10.0, "gradient-penalty weight lambda (wgan_gp)", min=0.0, live=True, alias="gp_weight")
    clip: float = _f(0.01, "weight-clipping bound c (wgan)", gt=0.0, live=True, alias="clip")
    margin: float = _f(1.0, "EBGAN margin m: D pushes fakes' energy up to m", gt=0.0, live=True, alias="margin")
    pullaway_weight: float = _f(0.0, "EBGAN pull-away term weight on D's codes of fakes (0: off)", min=0.0,
                                live=True, alias="pullaway")
    began_gamma: float = _f(0.5, "BEGAN diversity ratio γ = L(G(z)) / L(x) at equilibrium", gt=0.0, max=1.0,
                            live=True, alias="gamma")
    began_lambda_k: float = _f(0.001, "BEGAN step size λ_k of the equilibrium control k_t", min=0.0, max=1.0,
                               live=True, alias="lambda_k")
    ls_lambda: float = _f(1.0, "loss-sensitive GAN: weight λ of the margin violations", min=0.0, live=True,
                          alias="ls_lambda")
    ls_delta_scale: float = _f(1.0, "loss-sensitive GAN: margin Δ = this × mean |x − G(z)|", gt=0.0, live=True)
    vae_sigma: float = _f(0.3, "VAE: std of the Gaussian decoder p(x|z) in data units", gt=0.0)


@dataclass
class OptimConfig:
    optimizer_g: str = _f("adam", "optimiser of G", choices=OPTIMIZERS)
    optimizer_d: str = _f("adam", "optimiser of D", choices=OPTIMIZERS)
    lr_g: float = _f(2e-4, "learning rate of G", gt=0.0, max=1.0, live=True, alias="lr_g")
    lr_d: float = _f(2e-4, "learning rate of D", gt=0.0, max=1.0, live=True, alias="lr_d")
    betas_g: list = _f([0.5, 0.999], "Adam betas of G", min=0.0, max=0.9999, size=2, live=True, alias="betas_g")
    betas_d: list = _f([0.5, 0.999], "Adam betas of D", min=0.0, max=0.9999, size=2, live=True, alias="betas_d")
    weight_decay_d: float = _f(0.0, "L2 weight decay of D (the loss-sensitive GAN asks for it)", min=0.0, max=1.0,
                               live=True, alias="weight_decay_d")


@dataclass
class TrainConfig:
    discriminator_steps: int = _f(1, "k: discriminator steps per generator step", min=1, max=100, live=True, alias="k")
    steps: int = _f(5000, "generator steps to train", min=1)
    seed: int = _f(0, "seed of every random number in the run", min=0)
    device: str = _f("auto", "where to train: auto picks cuda, then mps, then cpu", choices=DEVICES)
    mixed_precision: bool = _f(False, "float16 autocast (CUDA only)")
    report_every: int = _f(10, "steps between metric reports", min=1)
    sample_every: int = _f(100, "steps between sample snapshots", min=1)
    checkpoint_every: int = _f(1000, "steps between checkpoints", min=1)
    sample_count: int = _f(64, "size of the fixed noise batch used for samples", min=1, max=4096)
    metrics_every: int = _f(500, "steps between quality measurements (modes, Fréchet distance, ...); 0: off", min=0)
    metrics_samples: int = _f(1000, "generated samples per quality measurement (2-D mixtures: use 2500)",
                              min=10, max=20000)


@dataclass
class TricksConfig:
    label_smoothing: float = _f(0.0, "one-sided: D's target for real data is 1 - s", min=0.0, max=0.5, live=True,
                                alias="label_smoothing")
    instance_noise: float = _f(0.0, "std of Gaussian noise added to D's inputs", min=0.0, live=True,
                               alias="instance_noise")
    instance_noise_anneal_steps: int = _f(0, "steps over which instance noise falls linearly to 0 (0: constant)", min=0)
    ema_decay: float = _f(0.0, "decay of the EMA copy of G used for samples (0: off)", min=0.0, max=0.99999)
    feature_matching: bool = _f(False, "G matches the batch mean of D's features on real data instead of fooling D")
    feature_layer: int = _f(0, "feature matching: D's hidden layer to match, 1 = first, 0 = last", min=0, max=16)
    minibatch_features: int = _f(0, "minibatch discrimination: kernels B added to D's features (0: off)", min=0,
                                 max=1024)
    minibatch_kernel_dim: int = _f(5, "minibatch discrimination: size C of each kernel", min=1, max=128)
    historical_averaging: float = _f(0.0, "weight of ‖θ − mean of past θ‖² for G and D (0: off)", min=0.0)
    virtual_batchnorm: bool = _f(False, "G normalises each sample with a fixed reference batch, not its batch (dcgan)")
    grad_norms: bool = _f(True, "report gradient norms of G and D")


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "tricks": TricksConfig,
}


@dataclass
class Config:
    name: str = "untitled"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict) -> "Config":
        config = cls()
        for key, value in raw.items():
            if key in ("name", "description"):
                if not isinstance(value, str):
                    raise ConfigError(f"{key} = {value!r} is not allowed: it must be text.")
                setattr(config, key, value)
            elif key in SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"[{key}] must be a table of settings, not {value!r}.")
                for sub, sub_value in value.items():
                    config.set(f"{key}.{sub}", sub_value, check=False)
            else:
                raise ConfigError(
                    f"Unknown key {key!r}; allowed at the top level: name, description, "
                    f"and the sections {', '.join('[' + s + ']' for s in SECTIONS)}.")
        config.check()
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def copy(self) -> "Config":
        return copy.deepcopy(self)

    # -- access by dotted name --------------------------------------------------
    def set(self, key: str, value: Any, *, check: bool = True) -> tuple[str, Any, Any]:
        """Set one field by dotted name (or alias / unique bare name); returns (key, old, new)."""
        key = resolve_key(key)
        section_name, name = key.split(".")
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

    def get(self, key: str) -> Any:
        key = resolve_key(key)
        section_name, name = key.split(".")
        return getattr(getattr(self, section_name), name)

    # -- whole-config rules ---------------------------------------------------------
    def check(self) -> None:
        d, m, l = self.data, self.model, self.loss
        if m.architecture == "dcgan" and d.dataset in LOW_DIM_DATASETS:
            raise ConfigError(
                f"model.architecture = 'dcgan' needs image data, but data.dataset = {d.dataset!r}; "
                f"use architecture 'mlp' or an image data set.")
        if d.dataset == "folder" and not d.path:
            raise ConfigError("data.dataset = 'folder' needs data.path set to a folder of images.")
        if l.name == "wgan_gp" and m.architecture == "dcgan" and m.d_batchnorm:
            raise ConfigError(
                "model.d_batchnorm = true is not allowed with loss.name = 'wgan_gp': the gradient penalty is "
                "per sample, so set model.d_batchnorm = false.")
        if (m.conditional or m.auxiliary_classifier) and d.dataset in ("folder", "painter", "spiral"):
            raise ConfigError(
                f"model.conditional / auxiliary_classifier need labelled data, but data.dataset = {d.dataset!r} "
                f"has no labels; use ring8, grid25, fashion_mnist, mnist or cifar10.")
        for i, n in enumerate(m.info_categorical):
            if not isinstance(n, int) or isinstance(n, bool) or n < 2 or n > 100:
                raise ConfigError(
                    f"model.info_categorical[{i}] = {n!r} is not allowed: each code needs an integer "
                    f"number of values from 2 to 100.")
        self._check_catalog()
        if self.train.mixed_precision and self.train.device in ("cpu", "mps"):
            raise ConfigError("train.mixed_precision = true is only available with train.device = 'cuda' or 'auto'.")

    def _check_catalog(self) -> None:
        """The rules for the energy-based, loss-sensitive, semi-supervised and VAE options."""
        d, m, l, t = self.data, self.model, self.loss, self.tricks
        heads = [("model.conditional", m.conditional), ("model.auxiliary_classifier", m.auxiliary_classifier),
                 ("model.info_categorical", bool(m.info_categorical)), ("model.info_continuous", m.info_continuous),
                 ("model.semi_supervised", m.semi_supervised)]
        if l.name in ENERGY_LOSSES:
            for key, on in heads + [("tricks.minibatch_features", t.minibatch_features)]:
                if on:
                    raise ConfigError(f"{key} is not allowed with loss.name = {l.name!r}: its D is an autoencoder "
                                      f"with no heads; turn {key} off or pick another loss.")
        if l.name == "vae":
            for key, on in heads + [("model.spectral_norm", m.spectral_norm),
                                    ("tricks.feature_matching", t.feature_matching),
                                    ("tricks.minibatch_features", t.minibatch_features),
                                    ("tricks.historical_averaging", t.historical_averaging),
                                    ("tricks.instance_noise", t.instance_noise)]:
                if on:
                    raise ConfigError(f"{key} is not allowed with loss.name = 'vae': the VAE has an encoder, not "
                                      f"a discriminator; turn {key} off.")
        if l.name == "vae" and m.noise_distribution != "normal":
            raise ConfigError("model.noise_distribution must be 'normal' with loss.name = 'vae': the VAE's prior "
                              "p(z) is a standard normal.")
        if t.label_smoothing > 0 and l.name not in TARGET_LOSSES:
            raise ConfigError(f"tricks.label_smoothing = {t.label_smoothing} has no effect with loss.name = "
                              f"{l.name!r}; it needs one of {', '.join(TARGET_LOSSES)}, or set it to 0.")
        if m.semi_supervised:
            if d.dataset not in LABELLED_IMAGE_DATASETS:
                raise ConfigError(f"model.semi_supervised needs a labelled image data set with a test split, but "
                                  f"data.dataset = {d.dataset!r}; use {LABELLED_IMAGE_NAMES}.")
            if m.conditional or m.auxiliary_classifier:
                raise ConfigError("model.semi_supervised already gives D a class head; turn model.conditional and "
                                  "model.auxiliary_classifier off.")
            if l.name not in ("minimax", "non_saturating"):
                raise ConfigError(f"model.semi_supervised needs loss.name = 'non_saturating' or 'minimax' (D's "
                                  f"real/fake logit is the log-sum-exp of its class logits), not {l.name!r}.")
        if t.virtual_batchnorm:
            if m.architecture != "dcgan":
                raise ConfigError("tricks.virtual_batchnorm needs model.architecture = 'dcgan': the mlp generator "
                                  "has no batch norm to replace.")
            for key, on in heads[:4]:
                if on:
                    raise ConfigError(f"tricks.virtual_batchnorm is not allowed with {key}: the reference batch is "
                                      f"noise only; turn one of them off.")
        layers = discriminator_layers(self)
        if t.feature_layer > layers:
            raise ConfigError(f"tricks.feature_layer = {t.feature_layer} is not allowed: this D has {layers} hidden "
                              f"layers; use 1 to {layers}, or 0 for the last.")

    @property
    def num_info_categorical(self) -> int:
        return sum(self.model.info_categorical)


def start_side(image_size: int) -> int:
    """Side of the smallest feature map of the dcgan networks."""
    return 7 if image_size == 28 else 4


def resolution_steps(image_size: int) -> int:
    """How many times the dcgan networks halve (D) or double (G) the side between image and start_side."""
    return int(round(math.log2(image_size / start_side(image_size))))


def discriminator_layers(config: Config) -> int:
    """How many hidden layers D has (the layers feature matching can choose from)."""
    m = config.model
    return m.depth if m.architecture == "mlp" else resolution_steps(config.data.image_size)


def field_spec(key: str) -> dataclasses.Field:
    section_name, name = key.split(".")
    for f in dataclasses.fields(SECTIONS[section_name]):
        if f.name == name:
            return f
    raise KeyError(key)


def all_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def aliases() -> dict[str, str]:
    out = {}
    for key in all_keys():
        alias = field_spec(key).metadata.get("alias")
        if alias:
            out[alias] = key
    return out


def live_keys() -> list[str]:
    """Fields that may change while training runs (between steps)."""
    return [k for k in all_keys() if field_spec(k).metadata.get("live")]


def resolve_key(key: str) -> str:
    """Turn 'k', 'lr_d', 'batch_size' or 'train.seed' into a full dotted key, or refuse."""
    if key in aliases():
        return aliases()[key]
    keys = all_keys()
    if key in keys:
        return key
    if "." in key:
        section = key.split(".")[0]
        if section in SECTIONS:
            allowed = ", ".join(f.name for f in dataclasses.fields(SECTIONS[section]))
            raise ConfigError(f"Unknown key {key!r}; [{section}] allows: {allowed}.")
        raise ConfigError(f"Unknown section in {key!r}; sections are: {', '.join(SECTIONS)}.")
    matches = [k for k in keys if k.split(".")[1] == key]
    if len(matches) == 1:
        return matches[0]
    raise ConfigError(f"Unknown key {key!r}; use section.key, e.g. train.seed, or one of: "
                      f"{', '.join(sorted(aliases()))}.")


def _describe(spec: dataclasses.Field) -> str:
    md = spec.metadata
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "text", list: "a list"}[
        _type_of(spec)]
    if md.get("choices"):
        return "one of " + ", ".join(repr(c) if isinstance(c, str) else str(c) for c in md["choices"])
    parts = [kind]
    if md.get("size"):
        parts = [f"a list of {md['size']} numbers"]
    if md.get("gt") is not None:
        parts.append(f"> {md['gt']}")
    if md.get("min") is not None:
        parts.append(f">= {md['min']}")
    if md.get("max") is not None:
        parts.append(f"<= {md['max']}")
    return " ".join(parts)


def _type_of(spec: dataclasses.Field) -> type:
    t = spec.type if not isinstance(spec.type, str) else spec.type
    return {"int": int, "float": float, "bool": bool, "str": str, "list": list}.get(t, t)


def _parse_text(text: str) -> Any:
    """Read a command-line value the way TOML would (3, 1e-4, true, 'x', [0.5, 0.9])."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def coerce(key: str, spec: dataclasses.Field, value: Any) -> Any:
    md = spec.metadata
    kind = _type_of(spec)
    if isinstance(value, str) and (kind is not str or value[:1] in ("'", '"')):
        value = _parse_text(value)
    bad = ConfigError(f"{key} = {value!r} is not allowed: it must be {_describe(spec)}.")
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise bad
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
        if not math.isfinite(value):
            raise bad
    elif kind is str:
        if not isinstance(value, str):
            raise bad
    elif kind is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad
        if md.get("size") is not None:
            if len(value) != md["size"] or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
                raise bad
            value = [float(v) for v in value]
    items = value if kind is list and md.get("size") else [value]
    for v in items:
        if md.get("choices") is not None and v not in md["choices"]:
            raise bad
        if md.get("min") is not None and v < md["min"]:
            raise bad
        if md.get("max") is not None and v > md["max"]:
            raise bad
        if md.get("gt") is not None and v <= md["gt"]:
            raise bad
    return value


# -- presets on disk -------------------------------------------------------------------

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


def load_preset(name_or_path: str | Path, overrides: list[str] | None = None) -> Config:
    path = find_preset(str(name_or_path))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML ({exc}); fix the file and load it again.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not a text file; a preset must be UTF-8 TOML.") from None
    try:
        config = Config.from_dict(raw)
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
    lines = [f"name = {_toml_value(data['name'])}", f"description = {_toml_value(data['description'])}", ""]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)

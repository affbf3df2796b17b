"""The preset schema: one dataclass per section, each field with its help, range and flags.

A field's metadata says what values are allowed (choices, min, max, gt, size), whether it may
change while training (live, alias), which algorithm families it belongs to (families; None:
all) and when it matters (when(config)). `coerce` is the one place that turns a value from TOML,
the command line or a live change into a checked one.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("painter", "ring8", "grid25", "spiral", "fashion_mnist", "mnist", "cifar10", "folder")
LOW_DIM_DATASETS = ("painter", "ring8", "grid25", "spiral")
LABELLED_IMAGE_DATASETS = ("fashion_mnist", "mnist", "cifar10")  # labels and a test split
LABELLED_IMAGE_NAMES = ", ".join(LABELLED_IMAGE_DATASETS[:-1]) + " or " + LABELLED_IMAGE_DATASETS[-1]
LOSSES = ("minimax", "non_saturating", "wgan", "wgan_gp", "least_squares", "hinge", "ebgan", "began",
          "loss_sensitive")
ENERGY_LOSSES = ("ebgan", "began")
TARGET_LOSSES = ("minimax", "non_saturating", "least_squares")  # the ones one-sided label smoothing acts on
ARCHITECTURES = ("mlp", "dcgan")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
ON_NAN = ("auto", "pause", "rollback", "stop")
MAX_SEED = 2 ** 62  # seeds get small offsets added and must stay within torch's 64-bit seed


class ConfigError(ValueError):
    """A preset, override or live change that is not allowed; the message is one sentence."""


GAN = ("gan",)
GAN_VAE = ("gan", "vae")
G_FC = ("gan", "vae", "badgan", "triplegan")  # the families whose G is engine.models.Generator
D_FC = (*G_FC, "composite")  # ... whose D is engine.models.Discriminator
AMP = ("gan", "badgan")  # the families whose step runs under float16 autocast


def _f(default, help: str, *, choices=None, min=None, max=None, gt=None, live=False, alias=None, size=None,
       families=None, when=None):
    """A schema field. families: the algorithms it belongs to (None: all); when(config): it matters only then."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "gt": gt, "live": live,
            "alias": alias, "size": size, "families": families, "when": when}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _mlp(c) -> bool:
    return c.model.architecture == "mlp"


def _dcgan(c) -> bool:
    return c.model.architecture == "dcgan"


def _heads_allowed(c) -> bool:
    """An autoencoder D (EBGAN, BEGAN) has no heads: class, projection, Q and minibatch options do nothing."""
    return c.loss.name not in ENERGY_LOSSES


def _auxiliary(c) -> bool:
    return c.model.auxiliary_classifier and _heads_allowed(c)


def _loss_is(*names):
    return lambda c: c.loss.name in names


@dataclass
class DataConfig:
    dataset: str = _f("ring8", "which data to learn", choices=DATASETS)
    path: str = _f("", "image folder for dataset = 'folder', or a data directory to use instead of the defaults")
    image_size: int = _f(28, "side of the square images the models make", choices=(28, 32, 64))
    channels: int = _f(1, "1 for grey, 3 for colour", choices=(1, 3))
    batch_size: int = _f(64, "samples per batch", min=1, max=4096, alias="batch_size")
    download: bool = _f(True, "download MNIST-style data sets when they are not on disk")
    labelled: int = _f(100, "semi-supervised: labelled examples kept (balanced over classes); the rest are unlabelled",
                       min=1, max=100000, families=GAN, when=lambda c: c.model.semi_supervised)


@dataclass
class ModelConfig:
    architecture: str = _f("mlp", "network family for G and D", choices=ARCHITECTURES)
    noise_dim: int = _f(2, "size of the noise vector z", min=1, max=1024)
    noise_distribution: str = _f("normal", "distribution of z", choices=("normal", "uniform"), families=GAN)
    hidden_width: int = _f(128, "units per hidden layer (mlp)", min=1, max=8192, when=_mlp)
    depth: int = _f(3, "hidden layers (mlp)", min=1, max=16, when=_mlp)
    activation: str = _f("relu", "hidden activation of G (mlp); D uses leaky_relu", choices=ACTIVATIONS, when=_mlp)
    base_channels: int = _f(32, "channels of the widest-resolution conv layer (dcgan)", min=4, max=512, when=_dcgan)
    d_batchnorm: bool = _f(True, "batch norm in D's conv layers (dcgan); must be off for wgan_gp", families=GAN_VAE,
                           when=_dcgan)
    d_fc: int = _f(0, "units of a fully-connected layer after D's convolutions (dcgan; InfoGAN's D has 1024); 0: none",
                   min=0, max=8192, families=D_FC, when=_dcgan)
    g_fc: int = _f(0, "units of a fully-connected layer before G's projection to feature maps (dcgan; InfoGAN's G has "
                   "1024); 0: none", min=0, max=8192, families=G_FC, when=_dcgan)
    upsample: str = _f("transposed", "how G and the autoencoder D's decoder double the side (dcgan): a 4×4 "
                       "transposed convolution, or nearest-neighbour upsampling then a 3×3 convolution (BEGAN's)",
                       choices=("transposed", "nearest"), families=GAN_VAE, when=_dcgan)
    conditional: bool = _f(False, "feed the class label to G (embedding) and D (projection)", families=GAN, when=_heads_allowed)
    auxiliary_classifier: bool = _f(False, "AC-GAN: G gets the label, D predicts it with an extra head", families=GAN, when=_heads_allowed)
    ac_fake_class_loss: bool = _f(False, "AC-GAN: D's class loss covers G's samples too, with the labels they were "
                                  "drawn for (the paper's L_C); off, real images only, which keeps G's classes on "
                                  "the real ones", families=GAN, when=_auxiliary)
    info_categorical: list = _f([], "InfoGAN: number of values of each categorical code", families=GAN, when=_heads_allowed)
    info_continuous: int = _f(0, "InfoGAN: number of continuous codes, each U[-1, 1]", min=0, max=32, families=GAN,
                              when=_heads_allowed)
    info_weight: float = _f(1.0, "InfoGAN: weight of the mutual-information term", min=0.0, families=GAN,
                            when=lambda c: bool(c.model.info_categorical or c.model.info_continuous))
    info_continuous_weight: float = _f(1.0, "InfoGAN: weight of the continuous codes' part of the information "
                                            "term, relative to the categorical part's (the paper: below 1)",
                                       min=0.0, max=100.0, families=GAN, when=lambda c: bool(c.model.info_continuous))
    info_learned_variance: bool = _f(False, "InfoGAN: Q predicts a variance for each continuous code as well as its "
                                     "mean; off, σ = 1, as the authors' code has it (a shrinking σ scales the "
                                     "continuous codes' gradient up to e⁶ times)", families=GAN,
                                     when=lambda c: bool(c.model.info_continuous))
    spectral_norm: bool = _f(False, "spectral normalisation of every layer of D (Miyato et al. 2018)", families=GAN)
    semi_supervised: bool = _f(False, "K+1-class D: K real classes plus fake, trained with data.labelled labels",
                               families=GAN, when=_heads_allowed)
    ae_code_dim: int = _f(64, "code size of the autoencoder D (ebgan, began)", min=1, max=4096, families=GAN,
                          when=lambda c: c.loss.name in ENERGY_LOSSES)


@dataclass
class LossConfig:
    name: str = _f("non_saturating", "the adversarial loss", choices=LOSSES, families=GAN)
    gp_weight: float = _f(10.0, "gradient-penalty weight lambda (wgan_gp)", min=0.0, live=True, alias="gp_weight",
                          families=GAN, when=_loss_is("wgan_gp"))
    clip: float = _f(0.01, "weight-clipping bound c (wgan)", gt=0.0, live=True, alias="clip", families=GAN,
                     when=_loss_is("wgan"))
    margin: float = _f(1.0, "EBGAN margin m: D pushes fakes' energy up to m", gt=0.0, live=True, alias="margin",
                       families=GAN, when=_loss_is("ebgan"))
    pullaway_weight: float = _f(0.0, "EBGAN pull-away term weight on D's codes of fakes (0: off)", min=0.0,
                                live=True, alias="pullaway", families=GAN, when=_loss_is("ebgan"))
    began_gamma: float = _f(0.5, "BEGAN diversity ratio γ = L(G(z)) / L(x) at equilibrium", gt=0.0, max=1.0,
                            live=True, alias="gamma", families=GAN, when=_loss_is("began"))
    began_lambda_k: float = _f(0.001, "BEGAN step size λ_k of the equilibrium control k_t", min=0.0, max=1.0,
                               live=True, alias="lambda_k", families=GAN, when=_loss_is("began"))
    ls_lambda: float = _f(1.0, "loss-sensitive GAN: weight λ of the margin violations", min=0.0, live=True,
                          alias="ls_lambda", families=GAN, when=_loss_is("loss_sensitive"))
    ls_real_weight: float = _f(0.0, "loss-sensitive GAN: weight of E L(x), the real data's loss (0 as in Qi's code)",
                               min=0.0, live=True, families=GAN, when=_loss_is("loss_sensitive"))
    ls_delta_scale: float = _f(1.0, "loss-sensitive GAN: margin Δ = this × mean |x − G(z)|", gt=0.0, live=True,
                               families=GAN, when=_loss_is("loss_sensitive"))


@dataclass
class OptimConfig:
    optimizer_g: str = _f("adam", "optimiser of G", choices=OPTIMIZERS)
    optimizer_d: str = _f("adam", "optimiser of D", choices=OPTIMIZERS)
    lr_g: float = _f(2e-4, "learning rate of G", gt=0.0, max=1.0, live=True, alias="lr_g")
    lr_d: float = _f(2e-4, "learning rate of D", gt=0.0, max=1.0, live=True, alias="lr_d")
    betas_g: list = _f([0.5, 0.999], "Adam betas of G (SGD: the first is its momentum)", min=0.0, max=0.9999,
                       size=2, live=True, alias="betas_g", when=lambda c: c.optim.optimizer_g != "rmsprop")
    betas_d: list = _f([0.5, 0.999], "Adam betas of D (SGD: the first is its momentum)", min=0.0, max=0.9999,
                       size=2, live=True, alias="betas_d", when=lambda c: c.optim.optimizer_d != "rmsprop")
    weight_decay_d: float = _f(0.0, "L2 weight decay of D (the loss-sensitive GAN asks for it)", min=0.0, max=1.0,
                               live=True, alias="weight_decay_d", families=GAN)


@dataclass
class TrainConfig:
    discriminator_steps: int = _f(1, "k: discriminator steps per generator step", min=1, max=100, live=True, alias="k",
                                  families=GAN)
    steps: int = _f(5000, "generator steps to train", min=1)
    seed: int = _f(0, "seed of every random number in the run", min=0, max=MAX_SEED)
    device: str = _f("auto", "where to train: auto picks cuda, then mps, then cpu", choices=DEVICES)
    on_nan: str = _f("auto", "on NaN or Inf: pause (window only), roll back to the last good checkpoint, or stop; "
                             "auto pauses in the window and rolls back headless", choices=ON_NAN)
    mixed_precision: bool = _f(False, "float16 autocast (CUDA only)", families=AMP)
    report_every: int = _f(10, "steps between metric reports", min=1)
    sample_every: int = _f(100, "steps between sample snapshots", min=1)
    checkpoint_every: int = _f(1000, "steps between checkpoints", min=1)
    sample_count: int = _f(64, "size of the fixed noise batch used for samples", min=1, max=4096)
    metrics_every: int = _f(500, "steps between quality measurements (modes, Fréchet distance, ...); 0: off", min=0)
    metrics_samples: int = _f(1000, "generated samples per quality measurement (2-D mixtures: use 2500)",
                              min=10, max=20000)
    tensorboard: bool = _f(True, "also write TensorBoard event files into RUN/tensorboard/ (needs the tensorboard "
                                 "package)")


@dataclass
class TricksConfig:
    label_smoothing: float = _f(0.0, "one-sided: D's target for real data is 1 - s", min=0.0, max=0.5, live=True,
                                alias="label_smoothing", families=GAN, when=lambda c: c.loss.name in TARGET_LOSSES)
    instance_noise: float = _f(0.0, "std of Gaussian noise added to D's inputs", min=0.0, live=True,
                               alias="instance_noise", families=GAN)
    instance_noise_anneal_steps: int = _f(0, "steps over which instance noise falls linearly to 0 (0: constant)", min=0,
                                          families=GAN, when=lambda c: c.tricks.instance_noise > 0)
    ema_decay: float = _f(0.0, "decay of the EMA copy of the sampling networks (0: off)", min=0.0, max=0.99999)
    feature_matching: bool = _f(False, "G matches the batch mean of D's features on real data instead of fooling D",
                                families=GAN)
    feature_layer: int = _f(0, "feature matching: D's hidden layer to match, 1 = first, 0 = last", min=0, max=16,
                            families=GAN, when=lambda c: c.tricks.feature_matching)
    minibatch_features: int = _f(0, "minibatch discrimination: kernels B added to D's features (0: off)", min=0,
                                 max=1024, families=GAN, when=_heads_allowed)
    minibatch_kernel_dim: int = _f(5, "minibatch discrimination: size C of each kernel", min=1, max=128,
                                   families=GAN, when=lambda c: c.tricks.minibatch_features > 0)
    r1_weight: float = _f(0.0, "γ of the R1 penalty, γ/2 · ‖∇D(x)‖² on real data, for D (0: off)", min=0.0,
                          live=True, alias="r1", families=GAN)
    r1_every: int = _f(1, "R1 every this many D steps, weighted by it (StyleGAN2's lazy regularisation)", min=1,
                       max=64, live=True, families=GAN, when=lambda c: c.tricks.r1_weight > 0)
    historical_averaging: float = _f(0.0, "weight of ‖θ − mean of past θ‖² for G and D (0: off)", min=0.0,
                                     families=GAN)
    virtual_batchnorm: bool = _f(False, "G normalises each sample with a fixed reference batch, not its batch (dcgan)",
                                 families=GAN, when=_dcgan)
    grad_norms: bool = _f(True, "report gradient norms of the networks")


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "tricks": TricksConfig,
}
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
        try:
            value = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise bad from None
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
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise bad  # NaN or Inf inside a list (Adam's betas)
        if md.get("size") is not None:
            if len(value) != md["size"] or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
                raise bad
            try:
                value = [float(v) for v in value]
            except OverflowError:
                raise bad from None
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



"""What an algorithm family is: the one interface the loop, the sampler, the studio and the CLI know.

A family owns its networks and optimizers by name (`nets`, `opts`, and `scalers` for mixed
precision) and does its own zero_grad / backward / step in `train_step`. The loop saves, restores
and NaN-checks whatever is in those dicts, keeps the EMA copies of `sampling_nets`, and hands the
family one random generator: every random draw of training goes through it, so resume is exact.

To add a family, subclass Algorithm, fill in the class attributes and the methods marked
"a family writes", and register it (engine.algorithms; the entry-point group gan_studio.algorithms).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from engine import algorithms
from engine.events import Declaration

LOSS_PLOT = ("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e")))
GRAD_PLOT = ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e")))


def data_previews(config) -> tuple:
    """The preview kind of the data a config names: points (2-D mixtures), curves (painter) or images."""
    dataset = config.data.dataset
    return ("points",) if dataset in ("ring8", "grid25", "spiral") else ("curves",) if dataset == "painter" else (
        "images",)


def needs_labelled_images(config, what: str) -> None:
    """Semi-supervised families and options: refuse data without labels and a test split, in one sentence."""
    from engine.settings import LABELLED_IMAGE_DATASETS, LABELLED_IMAGE_NAMES, ConfigError
    if config.data.dataset not in LABELLED_IMAGE_DATASETS:
        raise ConfigError(f"{what} needs a labelled image data set with a test split, but data.dataset = "
                          f"{config.data.dataset!r}; use {LABELLED_IMAGE_NAMES}.")


class SamplingNetsProbe:
    """A live quality probe that scores the sampling networks themselves (a family's quality_probes()):
    snapshot() copies them to the CPU on the training thread, so compute(nets) can run on the metrics thread
    while training goes on."""
    takes_source = True

    def snapshot(self, source) -> dict:
        return {name: copy.deepcopy(net).cpu().eval() for name, net in source.sampling_nets().items()}


class Algorithm:
    name: str = ""
    section: str | None = None  # the family's own config section, e.g. "vae"
    settings: type | None = None  # its dataclass (fields made with engine.settings._f)
    base_sections: tuple = ("data", "model", "optim", "train", "tricks")  # shared sections it reads
    sampling_nets: tuple = ("generator",)  # what `generate` runs; the loop keeps their EMA copies
    opt_roles: dict = {}  # optimizer name -> "g" or "d": which optim.*_g / optim.*_d settings it takes
    step: int = 0  # the training step the weights come from, where a family keeps it (a sampler sets it too)

    def __init__(self, config, dataset, device: torch.device, rng: torch.Generator | None, nets=None):
        """Build the networks (all, or only the names in `nets`); optimizers come from build_optimizers."""
        self.config = config
        self.dataset = dataset
        self.device = device
        self.rng = rng
        self.nets: dict[str, nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    # -- class-level: what the config, the studio and the CLI can know before anything is built --------
    @classmethod
    def check_config(cls, config) -> None:
        """Raise ConfigError (one sentence, the key named) for combinations this family cannot train."""

    @classmethod
    def declare(cls, config) -> Declaration:
        """Plots, live controls and previews for a run of this config."""
        return Declaration(plots=(LOSS_PLOT, GRAD_PLOT), controls=tuple(config.live_keys()),
                           previews=data_previews(config),
                           settings=("lr_g", "lr_d"), progress=(("G", "g_loss", ".3f"),),
                           losses={"g_loss": "G's loss"})

    @classmethod
    def make_data(cls, config, progress=None, warn=None, cancel=None):
        """The family's data; cancel() (when given) says a Stop came while a download runs."""
        from engine.data import make_dataset
        return make_dataset(config, progress=progress, warn=warn, cancel=cancel)

    @classmethod
    def sampling_data(cls, config, data: dict):
        """What stands in for the data when a checkpoint is only sampled (data: the checkpoint's "data"
        entry); None: the shapes alone (engine.sampler.ShapeOnly)."""
        return None

    # -- a family writes -----------------------------------------------------------------------
    def train_step(self, step: int, report: bool) -> dict:
        """One step of training; returns detached scalars (tensors or floats). On report steps it may add
        quantities that cost a sync; every name it returns is published."""
        raise NotImplementedError

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        """n inputs of the sampling networks (a dict of tensors or None), drawn from rng."""
        raise NotImplementedError

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        """What the sampling networks (`nets`: the live ones or their EMA copies) make of `inputs`."""
        raise NotImplementedError

    # -- a family may override ---------------------------------------------------------------------
    def phase(self, step: int) -> str:
        """The name of the training phase at `step` (a function of the step only)."""
        return ""

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        """The inputs of the sample grid, kept for the whole run."""
        return self.random_inputs(n, rng)

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        """The fields of an events.Samples for `outputs` (preview: an engine.previews.DataPreview)."""
        return preview.samples_event_fields(outputs)

    def pictures(self, preview, outputs: torch.Tensor) -> tuple:
        """(one picture of all of `outputs`, a picture of each) for `gan-studio sample` and the exports."""
        return preview.pictures(outputs)

    def as_text(self, outputs: torch.Tensor) -> list[str] | None:
        """The samples as lines of text, for families whose samples are text (`gan-studio sample` prints them)."""
        return None

    def state(self) -> dict:
        """What the family keeps across steps that is not a module or an optimizer (saved in checkpoints)."""
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def quality_probes(self) -> list:
        """Extra live measurements: objects with snapshot() (training thread) and compute(snap) -> dict."""
        return []

    # -- shared helpers -----------------------------------------------------------------------------
    def build_optimizers(self) -> None:
        o = self.config.optim
        for name, role in self.opt_roles.items():
            if name not in self.nets:
                continue
            kind = o.optimizer_g if role == "g" else o.optimizer_d
            lr = o.lr_g if role == "g" else o.lr_d
            betas = tuple(o.betas_g if role == "g" else o.betas_d)
            decay = o.weight_decay_d if role == "d" else 0.0
            self.opts[name] = make_optimizer(kind, self.nets[name].parameters(), lr, betas, decay)

    def optimise(self, name: str, loss: torch.Tensor, norms: bool, last: dict, key: str) -> None:
        """One optimizer step of network `name` on `loss`: zero_grad, the backward (scaled where the family keeps a
        mixed-precision scaler for it), the gradient norm into last[key] when `norms`, the step."""
        opt, scaler = self.opts[name], self.scalers.get(name)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            if norms:
                last[key] = grad_norm(self.nets[name])
            opt.step()
            return
        scaler.scale(loss).backward()
        if norms:
            scaler.unscale_(opt)
            last[key] = grad_norm(self.nets[name])
        scaler.step(opt)
        scaler.update()

    def settings_changed(self) -> None:
        """Apply live settings (learning rates, betas, weight decay) to the optimizers."""
        o = self.config.optim
        for name, opt in self.opts.items():
            role = self.opt_roles.get(name, "g")
            kind = o.optimizer_g if role == "g" else o.optimizer_d
            for group in opt.param_groups:
                group["lr"] = o.lr_g if role == "g" else o.lr_d
                if role == "d":
                    group["weight_decay"] = o.weight_decay_d
                if kind == "adam":
                    group["betas"] = tuple(o.betas_g if role == "g" else o.betas_d)
                elif kind == "sgd":
                    group["momentum"] = (o.betas_g if role == "g" else o.betas_d)[0]


def build(config, dataset, device, rng=None, nets=None) -> Algorithm:
    """The config's family with its networks initialised from train.seed, leaving the process's global
    random state as it was (the explorer and the exports build samplers on their own threads). Refused, in
    one sentence, when the networks would not fit in the device's free memory."""
    family = algorithms.get(config.algorithm)
    check_fits(family, config, dataset, torch.device(device), nets)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(config.train.seed)
        return family(config, dataset, device, rng, nets)


def free_memory(device: torch.device) -> int | None:
    """Bytes free on the device (for the CPU: MemAvailable), or None when it cannot be told."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def check_fits(family, config, dataset, device: torch.device, nets=None) -> None:
    """Count the networks' parameters on the meta device (nothing allocated) and refuse a model whose
    weights (and, to train, gradients and two Adam moments) would not fit in 80 % of the free memory."""
    from engine.settings import ConfigError
    if device.type == "meta":
        return
    try:
        with torch.device("meta"):
            probe = family(config, dataset, torch.device("meta"), None, nets)
        params = sum(p.numel() for net in probe.nets.values() for p in net.parameters())
    except Exception:  # noqa: BLE001 - the estimate is best effort; building for real reports real errors
        return
    need = params * 4 * (4 if nets is None else 1)
    free = free_memory(device)
    if free is not None and need > 0.8 * free:
        raise ConfigError(f"The networks of this run have {params / 1e6:,.0f} M parameters and would need about "
                          f"{need / 2 ** 30:,.1f} GiB, more than the {free / 2 ** 30:,.1f} GiB free on {device.type}; "
                          f"choose smaller networks (widths, depth, channels, vocabulary) or smaller data.")


def make_optimizer(kind: str, params, lr: float, betas: tuple, decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam is torch's fused one (one kernel for every tensor): 8 % more steps a second for ring8 on the CPU,
    where torch's default is a loop over the tensors in Python."""
    params = list(params)
    if kind == "adam":
        fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=decay, fused=fused or None)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=decay)


def grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))

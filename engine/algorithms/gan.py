"""The GAN family: k discriminator steps, then one generator step, with a loss chosen by name.

Covers every adversarial preset: the losses of engine.losses (minimax, non-saturating, WGAN with
clipping or gradient penalty, least squares, hinge, EBGAN, BEGAN, loss-sensitive), label
conditioning (cGAN), AC-GAN and InfoGAN heads, the semi-supervised K+1 D with its labels-only
baseline, and the tricks of engine.tricks. Its rules, plots and live controls are declared here.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from engine.algorithms.base import GRAD_PLOT, Algorithm, data_previews, needs_labelled_images
from engine.events import Declaration
from engine.latent import Latent, draw_latent
from engine.losses import LossContext, get_loss
from engine.models import AutoencoderDiscriminator, Discriminator, Generator, lipschitz_bound
from engine.metrics.live import ClassifierAccuracy, CodeAccuracy
from engine.settings import ENERGY_LOSSES, TARGET_LOSSES, ConfigError
from engine import tricks
from engine.config import resolution_steps

FIELD_RESOLUTION = 64

PLOTS = (
    ("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"),
                ("wasserstein", "W estimate", "#2ca02c"))),
    ("D(x) and D(G(z))", (("d_real", "D(x)", "#1f77b4"), ("d_fake", "D(G(z))", "#d62728"),
                          ("energy_real", "energy of x", "#1f77b4"), ("energy_fake", "energy of G(z)", "#d62728"))),
    GRAD_PLOT,
)
TERMS = {"began_k": "k_t", "convergence": "M", "ls_margin": "Δ(x, G(z))", "ls_violated": "margin violated",
         "margin_active": "fakes under m", "pullaway": "pull-away", "feature_matching": "feature matching",
         "historical_d": "hist. avg D", "historical_g": "hist. avg G", "supervised_loss": "supervised CE",
         "baseline_loss": "labels-only CE", "d_lipschitz_bound": "Lipschitz bound of D",
         "instance_noise": "instance noise σ", "minibatch_closeness": "fakes' closeness (minibatch disc.)",
         "class_loss_d": "class CE (D)", "info_loss": "InfoGAN −L_I",
         "info_categorical": "InfoGAN: categorical codes' CE", "info_continuous": "InfoGAN: continuous codes' NLL"}
PROGRESS = (("D", "d_loss", ".3f"), ("G", "g_loss", ".3f"), ("D(x)", "d_real", ".2f"), ("D(G(z))", "d_fake", ".2f"),
            ("energy x", "energy_real", ".3f"), ("G(z)", "energy_fake", ".3f"), ("k_t", "began_k", ".4f"),
            ("M", "convergence", ".3f"))
QUALITY_PAIRS = {"test_accuracy": ("semi-supervised D", "baseline_accuracy", "same net, labels only"),
                 "baseline_accuracy": ("same net, labels only", "test_accuracy", "semi-supervised D")}


def check_d_layer(config, key: str, layer: int) -> None:
    """A D layer named by number (1 = the first hidden layer, 0 = the last) must exist in this config's D."""
    layers = discriminator_layers(config)
    if layer > layers:
        raise ConfigError(f"{key} = {layer} is not allowed: this D has {layers} hidden layers; use 1 to {layers}, "
                          f"or 0 for the last.")


def discriminator_layers(config) -> int:
    """How many hidden layers D has (the layers feature matching can choose from)."""
    m = config.model
    return m.depth if m.architecture == "mlp" else resolution_steps(config.data.image_size)


class GanAlgorithm(Algorithm):
    name = "gan"
    base_sections = ("data", "model", "loss", "optim", "train", "tricks")
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d", "baseline": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        m, t = config.model, config.tricks
        self.loss = get_loss(config.loss.name)
        self.data_shape = tuple(dataset.shape)
        self.num_classes = dataset.num_classes
        self.g_conditioned = (m.conditional or m.auxiliary_classifier) and self.num_classes > 0
        self.d_conditioned = m.conditional and self.num_classes > 0
        self.semi_supervised = m.semi_supervised and self.num_classes > 0
        self.info = bool(m.info_categorical or m.info_continuous)
        self.amp = config.train.mixed_precision and device.type == "cuda"
        wanted = lambda name: nets is None or name in nets
        if wanted("generator"):
            self.nets["generator"] = Generator(config, self.data_shape, self.num_classes).to(device)
        if wanted("discriminator"):
            d_class = AutoencoderDiscriminator if self.loss.energy else Discriminator
            self.nets["discriminator"] = d_class(config, self.data_shape, self.num_classes).to(device)
        if self.semi_supervised:
            if hasattr(dataset, "keep_labels"):  # not when only sampling from a checkpoint
                dataset.keep_labels(config.data.labelled, config.train.seed)
            if wanted("baseline"):  # the comparison the semi-supervised papers make: same net, labels only
                self.nets["baseline"] = Discriminator(config, self.data_shape, self.num_classes).to(device)
        self.loss_ctx = LossContext(settings=config.loss)
        self.history = None
        if t.historical_averaging > 0 and nets is None:
            self.history = tricks.HistoricalAverage({"g": self.nets["generator"], "d": self.nets["discriminator"]})
        if self.amp:  # without, optimise() steps plainly: a disabled scaler still costs a few calls a step
            self.scalers = {name: torch.amp.GradScaler("cuda") for name in ("generator", "discriminator")}

    # -- what the config, the studio and the CLI know beforehand ---------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        d, m, l, t = config.data, config.model, config.loss, config.tricks
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
        if m.info_learned_variance and not m.info_continuous:
            raise ConfigError("model.info_learned_variance needs model.info_continuous > 0: there is no continuous "
                              "code to learn a variance for.")
        if m.ac_fake_class_loss and not m.auxiliary_classifier:
            raise ConfigError("model.ac_fake_class_loss needs model.auxiliary_classifier = true: without AC-GAN's "
                              "class head there is no class loss to extend.")
        heads = [("model.conditional", m.conditional), ("model.auxiliary_classifier", m.auxiliary_classifier),
                 ("model.info_categorical", bool(m.info_categorical)), ("model.info_continuous", m.info_continuous),
                 ("model.semi_supervised", m.semi_supervised)]
        if l.name in ENERGY_LOSSES:
            for key, on in heads + [("tricks.minibatch_features", t.minibatch_features)]:
                if on:
                    raise ConfigError(f"{key} is not allowed with loss.name = {l.name!r}: its D is an autoencoder "
                                      f"with no heads; turn {key} off or pick another loss.")
        if t.label_smoothing > 0 and l.name not in TARGET_LOSSES:
            raise ConfigError(f"tricks.label_smoothing = {t.label_smoothing} has no effect with loss.name = "
                              f"{l.name!r}; it needs one of {', '.join(TARGET_LOSSES)}, or set it to 0.")
        if m.semi_supervised:
            needs_labelled_images(config, "model.semi_supervised")
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
            if m.g_fc:
                raise ConfigError("tricks.virtual_batchnorm is not allowed with model.g_fc: virtual batch norm "
                                  "covers G's feature maps only; set model.g_fc = 0.")
        check_d_layer(config, "tricks.feature_layer", t.feature_layer)

    @classmethod
    def declare(cls, config) -> Declaration:
        m = config.model
        return Declaration(plots=PLOTS, terms=TERMS, settings=("lr_g", "lr_d", "k"),
                           controls=tuple(config.live_keys()), previews=data_previews(config),
                           steerable=bool(m.info_categorical or m.info_continuous or m.conditional
                                          or m.auxiliary_classifier),
                           progress=PROGRESS, losses={"d_loss": "D's loss", "g_loss": "G's loss"},
                           quality_pairs=QUALITY_PAIRS)

    # -- inputs and outputs --------------------------------------------------------------------------
    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.latent(n, rng).as_dict()

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.latent(n, rng, fixed=True).as_dict()

    def latent(self, n: int, rng: torch.Generator, fixed: bool = False) -> Latent:
        return draw_latent(self.config.model, n, rng, self.num_classes if self.g_conditioned else 0, fixed)

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        return nets["generator"](inputs["z"], inputs.get("codes"), inputs.get("labels"))

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        fields = preview.samples_event_fields(outputs)
        if fields["kind"] == "points" and "discriminator" in self.nets:
            fields["field"] = self.discriminator_field(preview.extent)
        return fields

    @torch.no_grad()
    def discriminator_field(self, extent):
        """D's reading of the plane, 'real' high, on a FIELD_RESOLUTION² grid over `extent`."""
        x0, x1, y0, y1 = extent
        xs = torch.linspace(x0, x1, FIELD_RESOLUTION, device=self.device)
        ys = torch.linspace(y0, y1, FIELD_RESOLUTION, device=self.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        d = self.nets["discriminator"]
        was_training = d.training
        d.eval()
        try:
            labels = torch.zeros(len(pts), dtype=torch.long, device=self.device) if self.d_conditioned else None
            out = d(pts, labels).logit.float()
        finally:
            d.train(was_training)
        if self.loss.sigmoid_output:
            out = torch.sigmoid(out)
        elif self.loss.real_is_low:  # energies and losses: flip, so 'real' reads high as for every other D
            out = -out
        return out.view(FIELD_RESOLUTION, FIELD_RESOLUTION).cpu().numpy()

    # -- state that is not a module ------------------------------------------------------------------
    def state(self) -> dict:
        out = {"loss_state": dict(self.loss_ctx.state)}
        if self.history is not None:
            out.update(self.history.state())
        return out

    def load_state(self, state: dict) -> None:
        self.loss_ctx.state = dict(state.get("loss_state") or {})
        if self.history is not None:
            self.history.load_state(state, self.device)

    def quality_probes(self) -> list:
        c = self.config
        probes = []
        if c.model.info_categorical and self.num_classes > 0 and self.dataset.kind == "images":
            probes.append(CodeAccuracy(self.nets["discriminator"], c, self.dataset, c.model.info_categorical[0],
                                       c.train.metrics_samples))
        if self.semi_supervised:
            probes.append(ClassifierAccuracy({"test_accuracy": self.nets["discriminator"],
                                              "baseline_accuracy": self.nets["baseline"]}, c, c.train.metrics_samples))
        return probes

    # -- one step --------------------------------------------------------------------------------------
    def autocast(self):
        """Float16 autocast under mixed precision; otherwise nothing (entering a disabled autocast costs 1 % of
        ring8's step on the CPU)."""
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _noisy(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return tricks.add_instance_noise(x, sigma, self.rng)

    def _info(self, q: torch.Tensor, latent: Latent, last: dict | None = None) -> torch.Tensor:
        """−L_I as the config weighs its parts; with `last`, each part is reported apart too."""
        m = self.config.model
        categorical, continuous = tricks.info_parts(q.float(), m.info_categorical, latent.cat_index, latent.continuous,
                                               m.info_learned_variance)
        if last is not None:
            if m.info_categorical:
                last["info_categorical"] = categorical.detach()
            if m.info_continuous:
                last["info_continuous"] = continuous.detach()
        return categorical + m.info_continuous_weight * continuous

    def train_step(self, step: int, report: bool) -> dict:
        c, loss, ctx = self.config, self.loss, self.loss_ctx
        G, D = self.nets["generator"], self.nets["discriminator"]
        grad_norms = report and c.tricks.grad_norms  # only gradient norms cost extra on report steps
        batch = c.data.batch_size
        sigma = tricks.instance_noise_sigma(c.tricks, step)
        real_target = 1.0 - c.tricks.label_smoothing
        d_labels = lambda labels: labels if self.d_conditioned else None
        autocast = self.autocast()
        ctx.report = {}
        last = {}
        for d_step in range(c.train.discriminator_steps):
            real, real_labels = self.dataset.sample(batch, self.rng)
            latent = self.latent(batch, self.rng)
            with autocast:
                with torch.no_grad():
                    fake = G(latent.z, latent.codes, latent.labels)
                ctx.real_x, ctx.fake_x = real, fake
                out_real = D(self._noisy(real, sigma), d_labels(real_labels))
                out_fake = D(self._noisy(fake, sigma), d_labels(latent.labels))
                d_loss = loss.d_loss(out_real.logit.float(), out_fake.logit.float(), real_target, ctx)
                if getattr(D, "minibatch", None) is not None:  # its last batch was the fakes
                    last["minibatch_closeness"] = D.minibatch.last_closeness
                if c.model.auxiliary_classifier:
                    class_loss = F.cross_entropy(out_real.class_logits.float(), real_labels)
                    if c.model.ac_fake_class_loss:
                        class_loss = class_loss + F.cross_entropy(out_fake.class_logits.float(), latent.labels)
                    d_loss = d_loss + class_loss
                    last["class_loss_d"] = class_loss.detach()
                if self.semi_supervised:
                    x_l, y_l = self.dataset.sample_labelled(batch, self.rng)
                    supervised = F.cross_entropy(D(x_l).class_logits.float(), y_l)
                    d_loss = d_loss + supervised
                    last["supervised_loss"] = supervised.detach()
                if self.info:
                    info_d = self._info(out_fake.q, latent, last)
                    d_loss = d_loss + c.model.info_weight * info_d
                    last["info_loss"] = info_d.detach()
            if loss.gradient_penalty:
                penalty = tricks.gradient_penalty(D, real, fake.float(), d_labels(real_labels), self.rng)
                d_loss = d_loss + c.loss.gp_weight * penalty
                last["gradient_penalty"] = penalty.detach()
            if c.tricks.r1_weight > 0 and (step * c.train.discriminator_steps + d_step) % c.tricks.r1_every == 0:
                r1 = tricks.r1_penalty(D, real, d_labels(real_labels))
                d_loss = d_loss + 0.5 * c.tricks.r1_weight * c.tricks.r1_every * r1
                last["r1_penalty"] = r1.detach()
            if self.history is not None:
                d_loss = d_loss + self._historical("d", last)
            self.optimise("discriminator", d_loss, grad_norms, last, "grad_norm_d")
            if loss.clips_weights:
                tricks.clip_weights(D, c.loss.clip)
            if self.history is not None:
                self.history.update("d")
            if self.semi_supervised:
                last["baseline_loss"] = self._baseline_step(x_l, y_l)

        latent = self.latent(batch, self.rng)
        with autocast:
            fake = G(latent.z, latent.codes, latent.labels)
            fake_in = self._noisy(fake, sigma)
            out_fake_g = D(fake_in, d_labels(latent.labels))
            if c.tricks.feature_matching:  # D sees both sides through the same instance noise
                layer = c.tricks.feature_layer
                with torch.no_grad():
                    target = D.hidden(self._noisy(real, sigma), layer)
                mine = out_fake_g.features if layer == 0 else D.hidden(fake_in, layer)
                g_loss = tricks.feature_matching(target, mine)
                last["feature_matching"] = g_loss.detach()
            else:
                g_loss = loss.g_loss(out_fake_g.logit.float(), ctx)
            if c.model.auxiliary_classifier:
                g_loss = g_loss + F.cross_entropy(out_fake_g.class_logits.float(), latent.labels)
            if self.info:
                g_loss = g_loss + c.model.info_weight * self._info(out_fake_g.q, latent)
            if loss.energy and c.loss.pullaway_weight > 0:
                pt = tricks.pull_away(out_fake_g.features.float())
                g_loss = g_loss + c.loss.pullaway_weight * pt
                last["pullaway"] = pt.detach()
        if self.history is not None:
            g_loss = g_loss + self._historical("g", last)
        self.optimise("generator", g_loss, grad_norms, last, "grad_norm_g")
        if self.history is not None:
            self.history.update("g")
        if loss.after_step is not None:
            loss.after_step(ctx, out_real.logit.detach(), out_fake_g.logit.detach())
        if grad_norms and (loss.clips_weights or loss.gradient_penalty or c.model.spectral_norm):
            last["d_lipschitz_bound"] = lipschitz_bound(D)

        last.update(ctx.report)
        last.update(d_loss=d_loss.detach(), g_loss=g_loss.detach())
        if report:  # σ as it stands for the next step, the step this report is labelled with
            last.update(self._readings(out_real.logit.detach(), out_fake.logit.detach(),
                                       tricks.instance_noise_sigma(c.tricks, step + 1)))
        return last

    def _readings(self, real_out: torch.Tensor, fake_out: torch.Tensor, sigma: float) -> dict:
        """D(x) and D(G(z)) as probabilities (or critic values), on report steps only (they sync)."""
        values = {}
        if not self.loss.energy:  # an energy-based D reports its energies instead
            real_out, fake_out = real_out.float(), fake_out.float()
            if self.loss.sigmoid_output:
                real_out, fake_out = torch.sigmoid(real_out), torch.sigmoid(fake_out)
            values["d_real"], values["d_fake"] = real_out.mean().item(), fake_out.mean().item()
            if self.loss.wasserstein:
                values["wasserstein"] = values["d_real"] - values["d_fake"]
        if self.config.tricks.instance_noise > 0:
            values["instance_noise"] = sigma
        return values

    def _baseline_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(self.nets["baseline"](x).class_logits.float(), y)
        opt = self.opts["baseline"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def _historical(self, which: str, last: dict) -> torch.Tensor:
        penalty = self.history.penalty(which)
        last[f"historical_{which}"] = penalty.detach()
        return self.config.tricks.historical_averaging * penalty

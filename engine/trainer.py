"""The training loop: k discriminator steps, one generator step, commands between steps.

The trainer knows nothing of a GUI. It reports through one `emit(event)` callable and
takes commands from `self.commands` (a queue.Queue), drained at the top of every step
and never in the middle of one. A paused trainer blocks on the queue.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine import commands as cmd
from engine import events as ev
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engine.config import LOW_DIM_DATASETS, Config, ConfigError, aliases, live_keys, resolve_key, to_toml
from engine.data import make_dataset
from engine.images import save_png
from engine.latent import as_arrays, render_picture
from engine.losses import LossContext, get_loss, gradient_penalty, pull_away
from engine.models import Discriminator, build_models, draw_noise, lipschitz_bound

FIELD_RESOLUTION = 64
KEEP_CHECKPOINTS = 5


def pick_device(want: str) -> torch.device:
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if want == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if want == "cuda" and not cuda:
        raise ConfigError("train.device = 'cuda' but this machine has no usable CUDA GPU; use 'auto' or 'cpu'.")
    if want == "mps" and not mps:
        raise ConfigError("train.device = 'mps' but this machine has no Apple GPU; use 'auto' or 'cpu'.")
    return torch.device(want)


class Latent:
    """What G is fed: noise z, InfoGAN codes (one-hot categories, continuous values), labels."""

    FIELDS = ("z", "codes", "cat_index", "continuous", "labels")

    def __init__(self, z, codes=None, cat_index=None, continuous=None, labels=None):
        self.z, self.codes, self.cat_index, self.continuous, self.labels = z, codes, cat_index, continuous, labels

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def to(self, device) -> "Latent":
        """The same latent with every tensor on `device`."""
        return Latent(**{name: None if value is None else value.to(device) for name, value in self.as_dict().items()})


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path | None = None,
                 emit: Callable[[ev.Event], None] | None = None,
                 resume: str | Path | dict | None = None, dataset=None):
        self.config = config.copy()
        self.emit = emit if emit is not None else (lambda event: None)
        self.commands: queue.Queue = queue.Queue()
        self.run_dir = Path(run_dir) if run_dir else None
        self.device = pick_device(self.config.train.device)
        self.amp = self.config.train.mixed_precision and self.device.type == "cuda"
        self.loss = get_loss(self.config.loss.name)

        seed = self.config.train.seed
        torch.manual_seed(seed)
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(seed + 1)

        self.dataset = dataset if dataset is not None else make_dataset(
            self.config, progress=self._progress, warn=lambda text: self.emit(ev.Warning(text)))
        self.dataset.to(self.device)
        self.data_shape = tuple(self.dataset.shape)
        self.num_classes = self.dataset.num_classes
        m = self.config.model
        self.g_conditioned = (m.conditional or m.auxiliary_classifier) and self.num_classes > 0
        self.d_conditioned = m.conditional and self.num_classes > 0

        self.generator, self.discriminator = build_models(self.config, self.data_shape, self.num_classes)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        self.ema = None
        if self.config.tricks.ema_decay > 0:
            self.ema = build_models(self.config, self.data_shape, self.num_classes)[0].to(self.device)
            self.ema.load_state_dict(self.generator.state_dict())
            self.ema.requires_grad_(False)
        self.opt_g = self._make_optimizer(self.config.optim.optimizer_g, self.generator, "g")
        self.opt_d = self._make_optimizer(self.config.optim.optimizer_d, self.discriminator, "d")
        self.loss_ctx = LossContext(settings=self.config.loss)
        self.semi_supervised = m.semi_supervised and self.num_classes > 0
        self.baseline = self.opt_baseline = None
        if self.semi_supervised:
            if hasattr(self.dataset, "keep_labels"):  # not when only sampling from a checkpoint
                self.dataset.keep_labels(self.config.data.labelled, seed)
            self.baseline = Discriminator(self.config, self.data_shape, self.num_classes).to(self.device)
            self.opt_baseline = self._make_optimizer(self.config.optim.optimizer_d, self.baseline, "d")
        self.history = self.history_count = None
        if self.config.tricks.historical_averaging > 0:
            self.history = {"g": [p.detach().clone() for p in self.generator.parameters()],
                            "d": [p.detach().clone() for p in self.discriminator.parameters()]}
            self.history_count = {"g": 1, "d": 1}
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)

        fixed_rng = torch.Generator().manual_seed(seed + 2)
        self.fixed = self._sample_latent(self.config.train.sample_count, fixed_rng, fixed=True)
        self.fixed_real = None
        if self.dataset.kind != "images":
            real, _ = self.dataset.sample(min(512, 4 * self.config.train.sample_count),
                                          torch.Generator(device=self.device).manual_seed(seed + 3))
            self.fixed_real = real.cpu().numpy()

        self.step = 0
        self.paused = False
        self.pending_steps = 0
        self.stop_requested = False
        self.save_on_stop = True
        self.last_good_checkpoint: Path | None = None
        self._last: dict = {}
        self._window_start = (time.perf_counter(), 0)
        self._force_report = False
        self.watch_generator = False
        self._file_lock = threading.Lock()
        self.quality = None
        if self.config.train.metrics_every:
            from engine.metrics.live import QualityProbe
            probe = QualityProbe(self)
            self.quality = probe if probe.enabled else None
        self._metrics_pool: ThreadPoolExecutor | None = None

        if resume is not None:
            self._restore(resume if isinstance(resume, dict) else load_checkpoint(resume))
            if not isinstance(resume, dict):
                self.last_good_checkpoint = Path(resume)
        if self.run_dir:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.toml").write_text(to_toml(self.config), encoding="utf-8")

    # -- construction helpers ------------------------------------------------------
    def _make_optimizer(self, name: str, module: torch.nn.Module, which: str):
        o = self.config.optim
        lr = o.lr_g if which == "g" else o.lr_d
        betas = tuple(o.betas_g if which == "g" else o.betas_d)
        params = module.parameters()
        decay = o.weight_decay_d if which == "d" else 0.0
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=decay)
        if name == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
        return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=decay)

    def _progress(self, task: str, done: int, total: int) -> None:
        self.emit(ev.Progress(task, done, total))

    def _sample_latent(self, n: int, rng: torch.Generator, fixed: bool = False) -> Latent:
        m = self.config.model
        device = rng.device
        z = draw_noise(n, m.noise_dim, m.noise_distribution, rng)
        codes = cat_index = continuous = labels = None
        parts = []
        if m.info_categorical:
            if fixed:  # each row of the sample grid walks through the first code's values
                cat_index = torch.stack([torch.arange(n, device=device) % c for c in m.info_categorical], 1)
            else:
                cat_index = torch.stack([torch.randint(0, c, (n,), generator=rng, device=device)
                                         for c in m.info_categorical], 1)
            parts += [F.one_hot(cat_index[:, j], c).float() for j, c in enumerate(m.info_categorical)]
        if m.info_continuous:
            continuous = torch.rand(n, m.info_continuous, generator=rng, device=device) * 2 - 1
            parts.append(continuous)
        if parts:
            codes = torch.cat(parts, 1)
        if self.g_conditioned:
            labels = (torch.arange(n, device=device) % self.num_classes if fixed
                      else torch.randint(0, self.num_classes, (n,), generator=rng, device=device))
        latent = Latent(z, codes, cat_index, continuous, labels)
        return latent.to(self.device) if fixed else latent

    # -- one step -------------------------------------------------------------------
    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.current_instance_noise()
        if sigma <= 0:
            return x
        return x + sigma * torch.randn(x.shape, generator=self.rng, device=x.device)

    def current_instance_noise(self) -> float:
        t = self.config.tricks
        if t.instance_noise <= 0:
            return 0.0
        if t.instance_noise_anneal_steps <= 0:
            return t.instance_noise
        return t.instance_noise * max(0.0, 1.0 - self.step / t.instance_noise_anneal_steps)

    def _info_loss(self, q: torch.Tensor, latent: Latent) -> torch.Tensor:
        m = self.config.model
        total = q.new_zeros(())
        offset = 0
        for j, c in enumerate(m.info_categorical):
            total = total + F.cross_entropy(q[:, offset:offset + c], latent.cat_index[:, j])
            offset += c
        if m.info_continuous:
            n = m.info_continuous
            mean = q[:, offset:offset + n]
            logvar = q[:, offset + n:offset + 2 * n].clamp(-6.0, 6.0)
            total = total + 0.5 * (((latent.continuous - mean) ** 2) * torch.exp(-logvar) + logvar).sum(1).mean()
        return total

    def _train_step(self, report: bool) -> None:
        if not self.loss.adversarial:
            return self._vae_step(report)
        c, loss, ctx = self.config, self.loss, self.loss_ctx
        report = report and c.tricks.grad_norms  # only gradient norms cost extra on report steps
        batch = c.data.batch_size
        real_target = 1.0 - c.tricks.label_smoothing
        info = bool(c.model.info_categorical or c.model.info_continuous)
        autocast = torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)
        ctx.report = {}
        last = {}
        for _ in range(c.train.discriminator_steps):
            real, real_labels = self.dataset.sample(batch, self.rng)
            latent = self._sample_latent(batch, self.rng)
            with autocast:
                with torch.no_grad():
                    fake = self.generator(latent.z, latent.codes, latent.labels)
                ctx.real_x, ctx.fake_x = real, fake
                out_real = self.discriminator(self._noisy(real), real_labels if self.d_conditioned else None)
                out_fake = self.discriminator(self._noisy(fake), latent.labels if self.d_conditioned else None)
                d_loss = loss.d_loss(out_real.logit.float(), out_fake.logit.float(), real_target, ctx)
                if getattr(self.discriminator, "minibatch", None) is not None:  # its last batch was the fakes
                    last["minibatch_closeness"] = self.discriminator.minibatch.last_closeness
                if c.model.auxiliary_classifier:
                    class_loss = (F.cross_entropy(out_real.class_logits.float(), real_labels)
                                  + F.cross_entropy(out_fake.class_logits.float(), latent.labels))
                    d_loss = d_loss + class_loss
                    last["class_loss_d"] = class_loss.detach()
                if self.semi_supervised:
                    x_l, y_l = self.dataset.sample_labelled(batch, self.rng)
                    supervised = F.cross_entropy(self.discriminator(x_l).class_logits.float(), y_l)
                    d_loss = d_loss + supervised
                    last["supervised_loss"] = supervised.detach()
                if info:
                    info_d = self._info_loss(out_fake.q.float(), latent)
                    d_loss = d_loss + c.model.info_weight * info_d
                    last["info_loss"] = info_d.detach()
            if loss.gradient_penalty:
                penalty = gradient_penalty(self.discriminator, real, fake.float(),
                                           real_labels if self.d_conditioned else None, self.rng)
                d_loss = d_loss + c.loss.gp_weight * penalty
                last["gradient_penalty"] = penalty.detach()
            if self.history is not None:
                d_loss = d_loss + self._historical_penalty("d", last)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            if report:
                self.scaler_d.unscale_(self.opt_d)
                last["grad_norm_d"] = _grad_norm(self.discriminator)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if loss.clips_weights:
                bound = c.loss.clip
                with torch.no_grad():
                    for p in self.discriminator.parameters():
                        p.clamp_(-bound, bound)
            if self.history is not None:
                self._update_history("d")
            if self.semi_supervised:
                last["baseline_loss"] = self._baseline_step(x_l, y_l)

        latent = self._sample_latent(batch, self.rng)
        with autocast:
            fake = self.generator(latent.z, latent.codes, latent.labels)
            fake_in = self._noisy(fake)
            out_fake_g = self.discriminator(fake_in, latent.labels if self.d_conditioned else None)
            if c.tricks.feature_matching:  # D sees both sides through the same instance noise
                layer = c.tricks.feature_layer
                with torch.no_grad():
                    target = self.discriminator.hidden(self._noisy(real), layer).float().mean(0)
                mine = out_fake_g.features if layer == 0 else self.discriminator.hidden(fake_in, layer)
                g_loss = ((target - mine.float().mean(0)) ** 2).mean()
                last["feature_matching"] = g_loss.detach()
            else:
                g_loss = loss.g_loss(out_fake_g.logit.float(), ctx)
            if c.model.auxiliary_classifier:
                g_loss = g_loss + F.cross_entropy(out_fake_g.class_logits.float(), latent.labels)
            if info:
                g_loss = g_loss + c.model.info_weight * self._info_loss(out_fake_g.q.float(), latent)
            if loss.energy and c.loss.pullaway_weight > 0:
                pt = pull_away(out_fake_g.features.float())
                g_loss = g_loss + c.loss.pullaway_weight * pt
                last["pullaway"] = pt.detach()
        if self.history is not None:
            g_loss = g_loss + self._historical_penalty("g", last)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_loss).backward()
        if report:
            self.scaler_g.unscale_(self.opt_g)
            last["grad_norm_g"] = _grad_norm(self.generator)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.history is not None:
            self._update_history("g")
        if self.ema is not None:
            self._update_ema()
        if loss.after_step is not None:
            loss.after_step(ctx, out_real.logit.detach(), out_fake_g.logit.detach())
        if report and (loss.clips_weights or loss.gradient_penalty or c.model.spectral_norm):
            last["d_lipschitz_bound"] = lipschitz_bound(self.discriminator)

        last.update(ctx.report)
        last.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(),
                    real_out=out_real.logit.detach(), fake_out=out_fake.logit.detach())
        self._last = last

    def _vae_step(self, report: bool) -> None:
        """The non-adversarial baseline: D is the encoder q(z|x), G the decoder p(x|z); maximise the ELBO."""
        c = self.config
        x, _ = self.dataset.sample(c.data.batch_size, self.rng)
        stats = self.discriminator(x).logit.float()
        mean, logvar = stats.chunk(2, 1)
        logvar = logvar.clamp(-10.0, 10.0)
        eps = torch.randn(mean.shape, generator=self.rng, device=mean.device)
        z = mean + torch.exp(0.5 * logvar) * eps
        recon = self.generator(z).float()
        recon_loss = 0.5 * ((recon - x) ** 2).flatten(1).sum(1) / c.loss.vae_sigma ** 2
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar).sum(1)
        total = (recon_loss + kl).mean()
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        last = {}
        if report and c.tricks.grad_norms:
            last["grad_norm_g"] = _grad_norm(self.generator)
            last["grad_norm_d"] = _grad_norm(self.discriminator)
        self.opt_g.step()
        self.opt_d.step()
        if self.ema is not None:
            self._update_ema()
        last.update(g_loss=total.detach(), recon=recon_loss.mean().detach(), kl=kl.mean().detach())
        self._last = last

    def _baseline_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The comparison the semi-supervised papers make: the same network, trained on the labels only."""
        loss = F.cross_entropy(self.baseline(x).class_logits.float(), y)
        self.opt_baseline.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_baseline.step()
        return loss.detach()

    def _historical_penalty(self, which: str, last: dict) -> torch.Tensor:
        """Salimans et al. 2016: λ ‖θ − (1/t) Σ θ_i‖², summed over the parameters of G or D."""
        module = self.generator if which == "g" else self.discriminator
        average = self.history[which]
        penalty = sum(((p - a) ** 2).sum() for p, a in zip(module.parameters(), average))
        last[f"historical_{which}"] = penalty.detach()
        return self.config.tricks.historical_averaging * penalty

    @torch.no_grad()
    def _update_history(self, which: str) -> None:
        module = self.generator if which == "g" else self.discriminator
        count = self.history_count[which] + 1
        torch._foreach_lerp_(self.history[which], [p.detach() for p in module.parameters()], 1.0 / count)
        self.history_count[which] = count

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.tricks.ema_decay
        ema_params = list(self.ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.generator.parameters()), 1.0 - decay)
        for ema_buffer, buffer in zip(self.ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    # -- the loop ---------------------------------------------------------------------
    def run(self, steps: int | None = None) -> str:
        """Train until config.train.steps (or `steps`) generator steps, or a Stop; returns why it ended."""
        total = steps if steps is not None else self.config.train.steps
        try:
            self.emit(ev.Started(self.step, str(self.device), self.run_dir, self.config.to_dict()))
            if self.config.train.mixed_precision and not self.amp:
                self.emit(ev.Warning(f"Mixed precision needs CUDA; training in float32 on {self.device}."))
            if self.run_dir and self.last_good_checkpoint is None:
                self.save_checkpoint()
            self.emit_samples()
            self._window_start = (time.perf_counter(), self.step)
            while self.step < total:
                self._drain_commands()
                if self.stop_requested:
                    break
                if self.paused and self.pending_steps == 0:
                    continue
                report_now = self._force_report or (self.step + 1) % self.config.train.report_every == 0
                self._train_step(report=report_now or self.pending_steps == 1)
                self.step += 1
                single_step = self.pending_steps > 0
                if single_step:
                    self.pending_steps -= 1
                if not self._finite_check():
                    continue
                if report_now or (single_step and self.pending_steps == 0):
                    self._report()
                if self.step % self.config.train.sample_every == 0 or (single_step and self.pending_steps == 0):
                    self.emit_samples()
                if self.run_dir and self.step % self.config.train.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.quality is not None and self.step % self.config.train.metrics_every == 0:
                    self.measure_quality()
            reason = "stopped" if self.stop_requested else "done"
            if self.run_dir and (reason == "done" or self.save_on_stop) and self._weights_finite():
                if self.last_good_checkpoint is None or self._checkpoint_step(self.last_good_checkpoint) != self.step:
                    self.save_checkpoint()
            if reason == "done" and self.step % self.config.train.sample_every:
                self.emit_samples()
            self._finish_quality()
            self.emit(ev.Finished(self.step, reason))
            return reason
        except Exception as exc:  # the worker must never die silently
            self._finish_quality()
            message = f"Training failed at step {self.step}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.emit(ev.Failed(message.rstrip(": "), traceback.format_exc(), self.step))
            return "failed"

    def _finite_check(self) -> bool:
        """Pause on NaN/Inf: the sync is free on CPU; on a GPU it happens on report steps only."""
        if self.device.type != "cpu" and (self.step % self.config.train.report_every):
            return True
        bad = [name for name in ("d_loss", "g_loss") if name in self._last
               and not torch.isfinite(self._last[name]).item()]
        if not bad and self.step % self.config.train.report_every == 0 and not self._weights_finite():
            bad = ["the weights"]
        if not bad:
            return True
        where = " and ".join({"d_loss": "D's loss", "g_loss": "G's loss"}.get(b, b) for b in bad)
        self.paused = True
        self.pending_steps = 0
        text = (f"NaN or Inf in {where} at step {self.step}; training is paused — lower a learning rate "
                f"or roll back to the last good checkpoint.")
        self.emit(ev.Warning(text))
        self.emit(ev.Paused(self.step, reason=text))
        return False

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in
                   list(self.generator.parameters()) + list(self.discriminator.parameters()))

    def _drain_commands(self) -> None:
        while not self.stop_requested:
            try:
                if self.paused and self.pending_steps == 0:
                    command = self.commands.get()
                else:
                    command = self.commands.get_nowait()
            except queue.Empty:
                return
            self._handle(command)

    def _handle(self, command: cmd.Command) -> None:
        if isinstance(command, cmd.Pause):
            if not self.paused:
                self.paused = True
                self.emit(ev.Paused(self.step))
        elif isinstance(command, cmd.Resume):
            if self.paused:
                self.paused = False
                self.pending_steps = 0
                self._window_start = (time.perf_counter(), self.step)
                self.emit(ev.Resumed(self.step))
        elif isinstance(command, cmd.Step):
            if not self.paused:
                self.emit(ev.CommandRejected("Step works on a paused run; pause first."))
            elif command.n < 1:
                self.emit(ev.CommandRejected(f"Step needs n >= 1, not {command.n}."))
            else:
                self.pending_steps = command.n
        elif isinstance(command, cmd.Stop):
            self.stop_requested = True
            self.save_on_stop = command.save
        elif isinstance(command, cmd.Set):
            self._apply_set(command.name, command.value)
        elif isinstance(command, cmd.SaveNow):
            if not self.run_dir:
                self.emit(ev.CommandRejected("This run has no folder to save into; start it with a run folder."))
            elif not self._weights_finite():
                self.emit(ev.CommandRejected("The weights hold NaN or Inf, so they were not saved; roll back first."))
            else:
                self.save_checkpoint()
        elif isinstance(command, cmd.SampleNow):
            self.emit_samples()
        elif isinstance(command, cmd.Rollback):
            self._rollback()
        elif isinstance(command, cmd.WatchGenerator):
            self.watch_generator = command.on
            if command.on:
                self.emit_generator_weights()
        else:
            self.emit(ev.CommandRejected(f"Unknown command {command!r}."))

    def _apply_set(self, name: str, value) -> None:
        try:
            key = resolve_key(name)
            if key not in live_keys():
                raise ConfigError(f"{key} cannot change while training; it needs a restart "
                                  f"(live settings: {', '.join(sorted(aliases()))}).")
            key, old, new = self.config.set(key, value)
        except ConfigError as exc:
            self.emit(ev.CommandRejected(str(exc)))
            return
        if old == new:
            return
        self._apply_hyperparameters()
        short = next((a for a, k in aliases().items() if k == key), key)
        self.emit(ev.ParamChanged(self.step, short, old, new))
        if self.run_dir:
            with open(self.run_dir / "changes.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": self.step, "name": short, "old": old, "new": new}) + "\n")
        self._force_report = True

    def _apply_hyperparameters(self) -> None:
        o = self.config.optim
        pairs = [(self.opt_g, o.optimizer_g, o.lr_g, o.betas_g), (self.opt_d, o.optimizer_d, o.lr_d, o.betas_d)]
        if self.opt_baseline is not None:
            pairs.append((self.opt_baseline, o.optimizer_d, o.lr_d, o.betas_d))
        for opt, name, lr, betas in pairs:
            for group in opt.param_groups:
                group["lr"] = lr
                if opt is not self.opt_g:
                    group["weight_decay"] = o.weight_decay_d
                if name == "adam":
                    group["betas"] = tuple(betas)
                elif name == "sgd":
                    group["momentum"] = betas[0]

    # -- reports ------------------------------------------------------------------------

    def _report(self) -> None:
        self._force_report = False
        last = self._last
        now = time.perf_counter()
        start_time, start_step = self._window_start
        elapsed = now - start_time
        values = {name: last[name].item() for name in ("d_loss", "g_loss") if name in last}
        values.update(lr_g=self.config.optim.lr_g, lr_d=self.config.optim.lr_d,
                      k=self.config.train.discriminator_steps)
        if "real_out" in last and not self.loss.energy:  # an energy-based D reports its energies instead
            real_out, fake_out = last["real_out"].float(), last["fake_out"].float()
            if self.loss.sigmoid_output:
                values["d_real"] = torch.sigmoid(real_out).mean().item()
                values["d_fake"] = torch.sigmoid(fake_out).mean().item()
            else:
                values["d_real"] = real_out.mean().item()
                values["d_fake"] = fake_out.mean().item()
            if self.loss.wasserstein:
                values["wasserstein"] = values["d_real"] - values["d_fake"]
        for name, value in last.items():  # every scalar a step left behind, as it is
            if name not in values and name not in ("real_out", "fake_out"):
                values[name] = float(value)
        if self.config.tricks.instance_noise > 0:
            values["instance_noise"] = self.current_instance_noise()
        if self.step > start_step and elapsed > 0:
            values["steps_per_sec"] = (self.step - start_step) / elapsed
        self._window_start = (now, self.step)
        self._publish(ev.Metrics(self.step, values))

    def _publish(self, event: ev.Metrics) -> None:
        self.emit(event)
        if self.run_dir:
            row = {"step": event.step, **event.values}
            if event.group != "train":
                row["group"] = event.group
            with self._file_lock, open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    def measure_quality(self) -> None:
        """Snapshot now (training thread); compute on the metrics thread; publish when done."""
        snap = self.quality.snapshot(self)
        step, probe = self.step, self.quality
        if self._metrics_pool is None:
            self._metrics_pool = ThreadPoolExecutor(1, thread_name_prefix="gan-studio-metrics")

        def work():
            try:
                self._publish(ev.Metrics(step, probe.compute(snap), group="quality"))
            except Exception as exc:  # a failed measurement must not stop training
                self.emit(ev.Warning(f"Quality metrics failed at step {step}: {exc}"))

        self._metrics_pool.submit(work)

    def _finish_quality(self) -> None:
        if self._metrics_pool is not None:
            self._metrics_pool.shutdown(wait=True)
            self._metrics_pool = None

    def sample_generator(self) -> torch.nn.Module:
        return self.ema if self.ema is not None else self.generator

    @torch.no_grad()
    def generate(self, latent: Latent) -> torch.Tensor:
        g = self.sample_generator()
        was_training = g.training
        g.eval()
        try:
            return g(latent.z, latent.codes, latent.labels)
        finally:
            g.train(was_training)

    @torch.no_grad()
    def discriminator_field(self, extent) -> np.ndarray:
        x0, x1, y0, y1 = extent
        xs = torch.linspace(x0, x1, FIELD_RESOLUTION, device=self.device)
        ys = torch.linspace(y0, y1, FIELD_RESOLUTION, device=self.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        d = self.discriminator
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

    def emit_samples(self) -> ev.Samples:
        kind = self.dataset.kind
        samples = as_arrays(kind, self.generate(self.fixed))
        path = (self.run_dir / "samples" / f"step_{self.step:07d}.png") if self.run_dir else None
        extent = getattr(self.dataset, "extent", None)
        picture = render_picture(kind, samples, self.fixed_real, extent)
        if kind == "images":
            event = ev.Samples(self.step, kind, images=samples, grid=picture, path=path)
        else:
            field = self.discriminator_field(extent) if kind == "points" and self.loss.adversarial else None
            event = ev.Samples(self.step, kind, points=samples, real=self.fixed_real, field=field,
                               extent=tuple(extent), grid=picture, path=path)
        if path is not None:
            save_png(path, picture)
        self.emit(event)
        if self.watch_generator:
            self.emit_generator_weights()
        return event

    def emit_generator_weights(self) -> None:
        weights = {name: tensor.detach().cpu().numpy().copy()
                   for name, tensor in self.sample_generator().state_dict().items()}
        self.emit(ev.GeneratorWeights(self.step, self.config.to_dict(), self.data_shape, self.num_classes, weights))

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "train": self.rng.get_state().cpu()},
            "fixed": self.fixed.to("cpu").as_dict(),
            "data_shape": list(self.data_shape),
            "num_classes": self.num_classes,
            "loss_state": dict(self.loss_ctx.state),
            "baseline": self.baseline.state_dict() if self.baseline is not None else None,
            "opt_baseline": self.opt_baseline.state_dict() if self.opt_baseline is not None else None,
            "history": self.history,
            "history_count": self.history_count,
        }

    def save_checkpoint(self) -> Path:
        path = self.run_dir / "checkpoints" / f"step_{self.step:07d}.pt"
        save_checkpoint(path, self.state_dict())
        self.last_good_checkpoint = path
        self._prune_checkpoints()
        self.emit(ev.Checkpointed(self.step, path))
        return path

    def _prune_checkpoints(self) -> None:
        files = sorted((self.run_dir / "checkpoints").glob("step_*.pt"))
        for old in files[:-KEEP_CHECKPOINTS]:
            if old != self.last_good_checkpoint:
                old.unlink(missing_ok=True)

    @staticmethod
    def _checkpoint_step(path: Path) -> int:
        try:
            return int(Path(path).stem.split("_")[1])
        except (IndexError, ValueError):
            return -1

    def _restore(self, state: dict) -> None:
        if tuple(state.get("data_shape", ())) != self.data_shape or state.get("num_classes") != self.num_classes:
            raise CheckpointError(
                f"The checkpoint was trained on data shaped {tuple(state.get('data_shape', ()))} with "
                f"{state.get('num_classes')} classes, not {self.data_shape} with {self.num_classes}; "
                f"use the preset it was trained with.")
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["generator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.baseline is not None:
                self.baseline.load_state_dict(state["baseline"])
                self.opt_baseline.load_state_dict(state["opt_baseline"])
            if self.history is not None and state.get("history") is not None:
                self.history = {w: [t.to(self.device) for t in state["history"][w]] for w in ("g", "d")}
                self.history_count = dict(state["history_count"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0][:160]
            raise CheckpointError(f"The checkpoint's models do not match this preset ({first}); "
                                  f"use the preset it was trained with.") from None
        if state.get("scaler_g"):
            self.scaler_g.load_state_dict(state["scaler_g"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        self._apply_hyperparameters()
        torch.set_rng_state(state["rng"]["torch"])
        self.rng.set_state(state["rng"]["train"].to(self.rng.get_state().device))
        self.fixed = Latent(**state["fixed"]).to(self.device)
        self.loss_ctx.state = dict(state.get("loss_state") or {})
        self.step = int(state["step"])

    def _rollback(self) -> None:
        if self.last_good_checkpoint is None or not Path(self.last_good_checkpoint).is_file():
            self.emit(ev.CommandRejected("There is no checkpoint to roll back to yet."))
            return
        try:
            state = load_checkpoint(self.last_good_checkpoint)
            self._restore(state)
        except CheckpointError as exc:
            self.emit(ev.CommandRejected(str(exc)))
            return
        restored = Config.from_dict(state["config"])
        for key in live_keys():
            self.config.set(key, restored.get(key), check=False)
        self._apply_hyperparameters()
        self.emit(ev.RolledBack(self.step, self.last_good_checkpoint))
        self.emit_samples()


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def load_for_sampling(path: str | Path | dict, device: str = "cpu") -> Trainer:
    """A trainer restored from a checkpoint (a path or a loaded state), for sampling; no data is loaded."""
    state = load_checkpoint(path) if not isinstance(path, dict) else path
    config = _sampling_config(state["config"], device)
    dataset = make_dataset(config) if config.data.dataset in LOW_DIM_DATASETS else _ShapeOnly(state)
    return Trainer(config, run_dir=None, resume=state, dataset=dataset)


def sampler_from_weights(event: ev.GeneratorWeights, device: str = "cpu") -> Trainer:
    """A sampling-only trainer whose sampling generator holds the weights of a GeneratorWeights event."""
    config = _sampling_config(event.config, device)
    state = {"data_shape": list(event.data_shape), "num_classes": event.num_classes}
    dataset = make_dataset(config) if config.data.dataset in LOW_DIM_DATASETS else _ShapeOnly(state)
    trainer = Trainer(config, run_dir=None, dataset=dataset)
    trainer.sample_generator().load_state_dict({k: torch.from_numpy(v) for k, v in event.weights.items()})
    return trainer


def _sampling_config(config_dict: dict, device: str) -> Config:
    """A run's config for drawing samples only: on the given device, float32, no quality metrics."""
    config = Config.from_dict(config_dict)
    config.train.device = device
    config.train.mixed_precision = False
    config.train.metrics_every = 0
    return config


class _ShapeOnly:
    """Stands in for an image data set when only the model shapes are needed."""
    kind = "images"

    def __init__(self, state: dict):
        self.shape = tuple(state["data_shape"])
        self.num_classes = state["num_classes"]

    def to(self, device):
        return self

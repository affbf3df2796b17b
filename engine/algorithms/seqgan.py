"""SeqGAN (Yu et al. 2017): a GAN for sequences of discrete tokens, where D's gradient cannot flow
back through sampling. G (an LSTM) is pre-trained by maximum likelihood; D (a CNN over sequences) is
pre-trained on real sequences against G's; then G follows the policy gradient (REINFORCE) with D's
probability of 'real' as the reward, estimated for every prefix by Monte-Carlo rollouts of a copy of
G that follows it with a delay, and D keeps training on fresh negatives.

One loop step is one small piece of work, so pause, step and stop answer between pieces: an MLE
minibatch, a D minibatch, or one rollout pass over every prefix of the policy-gradient batch (the
last pass of a batch also takes the G step). Phases come from the step number: MLE pre-training for
seqgan.mle_steps steps, D pre-training for seqgan.d_pre_steps, then adversarial rounds of
g_steps × rollouts passes and d_steps D minibatches. With seqgan.mle_baseline, a copy of the
pre-trained G goes on with MLE alone (one minibatch per G step), the paper's baseline, drawn beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.algorithms.base import Algorithm
from engine.checkpoint import CheckpointError
from engine.events import Declaration
from engine.settings import ConfigError, _f
from engine.text.data import TokenSpace, make_oracle, make_text
from engine.text.metrics import SequenceQuality
from engine.text.nets import SeqDiscriminator, SeqGenerator
from engine.text.view import render_tokens

PAPER_WIDTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
PAPER_FILTERS = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
PREVIEW_ROLLOUTS = 8  # at most this many rollouts shade each preview token


def _text(c) -> bool:
    return c.seqgan.source == "text"


def _oracle(c) -> bool:
    return c.seqgan.source == "oracle"


@dataclass
class SeqGanSettings:
    source: str = _f("oracle", "the data: the paper's oracle LSTM, or lines of a text file", choices=("oracle", "text"))
    text_file: str = _f("", "text file, one sequence per line (empty: the system's fortune cookies)", when=_text)
    tokens: str = _f("word", "tokenise the text by word or by character", choices=("word", "char"), when=_text)
    held_out: float = _f(0.1, "share of the lines held out for held-out NLL and BLEU", gt=0.0, max=0.5, when=_text)
    vocab_size: int = _f(5000, "tokens in the vocabulary (text: the most frequent, the rest become <unk>)", min=3,
                         max=200000)
    seq_len: int = _f(20, "tokens per sequence", min=1, max=512)
    oracle_samples: int = _f(10000, "training sequences drawn from the oracle", min=1, max=1000000, when=_oracle)
    oracle_seed: int = _f(0, "seed of the oracle's weights and of its sequences", min=0, max=2 ** 62, when=_oracle)
    oracle_embed_dim: int = _f(32, "embedding size of the oracle LSTM", min=1, max=4096, when=_oracle)
    oracle_hidden_dim: int = _f(32, "hidden size of the oracle LSTM", min=1, max=4096, when=_oracle)
    embed_dim: int = _f(32, "embedding size of G", min=1, max=4096)
    hidden_dim: int = _f(32, "hidden size of G's LSTM", min=1, max=4096)
    d_embed_dim: int = _f(64, "embedding size of D", min=1, max=4096)
    d_widths: list = _f(PAPER_WIDTHS, "D's convolution widths, in tokens")
    d_filters: list = _f(PAPER_FILTERS, "D's number of filters of each width")
    dropout: float = _f(0.25, "dropout before D's output", min=0.0, max=0.95)
    batch: int = _f(64, "sequences per minibatch (MLE, D and policy gradient)", min=1, max=4096, alias="batch_size")
    mle_steps: int = _f(2000, "steps of MLE pre-training of G", min=0)
    d_pre_steps: int = _f(500, "steps of D pre-training on real against G's sequences", min=0)
    g_steps: int = _f(1, "policy-gradient steps of G per adversarial round", min=1, max=100)
    rollouts: int = _f(16, "Monte-Carlo rollouts per prefix for the reward", min=1, max=256, live=True,
                       alias="rollouts")
    rollout_update: float = _f(0.8, "the rollout network keeps this share of its weights at each G step",
                               min=0.0, max=1.0, live=True, alias="rollout_update")
    d_steps: int = _f(5, "D minibatches (fresh negatives each) per adversarial round", min=0, max=10000,
                      live=True, alias="d_steps")
    temperature: float = _f(1.0, "sampling temperature of the previews and `sample`", gt=0.0, max=10.0, live=True,
                            alias="temperature")
    grad_clip: float = _f(5.0, "G's gradients are clipped to this norm", gt=0.0)
    mle_baseline: bool = _f(True, "an MLE-only continuation of the pre-trained G trains beside SeqGAN")


class SeqGanAlgorithm(Algorithm):
    name = "seqgan"
    section = "seqgan"
    settings = SeqGanSettings
    base_sections = ("optim", "train")
    opt_roles = {"generator": "g", "discriminator": "d", "mle_generator": "g"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.seqgan
        self.s = s
        self.length = dataset.shape[0]
        vocab = len(dataset.vocab)

        def generator():
            return SeqGenerator(vocab, self.length, s.embed_dim, s.hidden_dim).to(device)

        if nets is None or "generator" in nets:
            self.nets["generator"] = generator()
        if nets is None:
            self.nets["discriminator"] = SeqDiscriminator(vocab, s.d_embed_dim, s.d_widths, s.d_filters,
                                                          s.dropout).to(device)
            self.nets["rollout"] = generator().requires_grad_(False)
            if s.mle_baseline:
                self.nets["mle_generator"] = generator()
        self.adversarial_start = s.mle_steps + s.d_pre_steps
        self.step = 0
        self.round_pos = 0  # where the adversarial round is: G steps first, then D steps
        self.pending = None  # the policy-gradient batch being rolled out
        self.latest: dict = {}  # the newest value of every quantity (each step computes some of them)
        rng_device = device if torch.device(device).type != "meta" else "cpu"  # meta: the memory estimate
        self.eval_rng = torch.Generator(device=rng_device).manual_seed(config.train.seed + 11)

    # -- what the config, the studio and the CLI know -------------------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        s = config.seqgan
        widths, filters = s.d_widths, s.d_filters
        for key, values in (("seqgan.d_widths", widths), ("seqgan.d_filters", filters)):
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
                raise ConfigError(f"{key} = {values!r} is not allowed: it must be a list of whole numbers >= 1.")
        if len(widths) != len(filters):
            raise ConfigError(f"seqgan.d_widths has {len(widths)} widths but seqgan.d_filters has {len(filters)} "
                              f"counts; give one count per width.")
        if max(widths) > s.seq_len:
            raise ConfigError(f"seqgan.d_widths has a width of {max(widths)} tokens, longer than seqgan.seq_len = "
                              f"{s.seq_len}; remove it or lengthen the sequences.")

    @classmethod
    def declare(cls, config) -> Declaration:
        pairs = {"nll_oracle": ("SeqGAN", "nll_oracle_mle", "MLE only"),
                 "nll_test": ("SeqGAN", "nll_test_mle", "MLE only")}
        pairs.update({f"bleu{n}": ("SeqGAN", f"bleu{n}_mle", "MLE only") for n in (2, 3, 4)})
        return Declaration(
            plots=(("Generator", (("mle_loss", "G's NLL of real sequences", "#ff7f0e"),
                                  ("baseline_mle_loss", "MLE-only continuation", "#8c564b"))),
                   ("Policy gradient", (("pg_loss", "PG loss", "#d62728"), ("reward", "mean reward", "#2ca02c"))),
                   ("Discriminator", (("d_loss", "D loss", "#1f77b4"), ("d_accuracy", "D accuracy", "#17becf")))),
            settings=("lr_g", "lr_d", "rollouts"), controls=tuple(config.live_keys()), previews=("text",),
            progress=(("NLL", "mle_loss", ".3f"), ("D acc", "d_accuracy", ".2f"), ("reward", "reward", ".3f")),
            losses={"mle_loss": "G's MLE loss", "d_loss": "D's loss", "pg_loss": "the policy-gradient loss"},
            quality_pairs=pairs)

    @classmethod
    def make_data(cls, config, progress=None, warn=None):
        s = config.seqgan
        return make_oracle(s, progress) if s.source == "oracle" else make_text(s, warn)

    @classmethod
    def sampling_data(cls, config, data: dict):
        if "vocab" not in data:
            raise CheckpointError("The checkpoint has no vocabulary; it was not written by a SeqGAN run.")
        return TokenSpace(data["vocab"], data.get("level", "oracle"), int(data["shape"][0]))

    def phase(self, step: int) -> str:
        s = self.config.seqgan
        return ("MLE pre-training" if step < s.mle_steps else "D pre-training"
                if step < s.mle_steps + s.d_pre_steps else "adversarial")

    # -- sampling ----------------------------------------------------------------------------------
    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return {"u": torch.rand(n, self.length, generator=rng, device=rng.device)}

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        return nets["generator"].sample(inputs["u"], self.config.seqgan.temperature)

    def as_text(self, outputs: torch.Tensor) -> list[str]:
        return [self.dataset.vocab.decode(row) for row in outputs.tolist()]

    @torch.no_grad()
    def token_rewards(self, x: torch.Tensor, rollouts: int, rng: torch.Generator, net=None) -> torch.Tensor:
        """D's mean probability of 'real' for each prefix x_1..x_t completed by `net` (the rollout network),
        and for the whole sequence at t = T: (B, T)."""
        total = torch.zeros(x.shape, device=x.device)
        for _ in range(rollouts):
            total += self.rollout_pass(x, rng, net)
        total /= rollouts
        total[:, -1] = self._judge(x)
        return total

    @torch.no_grad()
    def rollout_pass(self, x: torch.Tensor, rng: torch.Generator, net=None) -> torch.Tensor:
        """One completion of every proper prefix, judged by D; the last column is left 0."""
        b, length = x.shape
        out = torch.zeros(b, length, device=x.device)
        if length > 1:
            u = torch.rand(length - 1, b, length, generator=rng, device=x.device)
            seqs = (net or self.nets["rollout"]).complete(x, u)
            out[:, :-1] = self._judge(seqs.flatten(0, 1)).view(length - 1, b).T
        return out

    @torch.no_grad()
    def _judge(self, x: torch.Tensor) -> torch.Tensor:
        d = self.nets["discriminator"]
        was = d.training
        d.eval()
        try:
            return torch.cat([torch.sigmoid(d(part)) for part in x.split(4096)])
        finally:
            d.train(was)

    def _rows(self, outputs: torch.Tensor) -> list[list[str]]:
        vocab = self.dataset.vocab
        return [vocab.pieces(row) for row in outputs.tolist()]

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        rows = self._rows(outputs)
        joiner = self.dataset.vocab.joiner
        shades, title = None, ""
        if "discriminator" in self.nets:
            n = min(PREVIEW_ROLLOUTS, self.config.seqgan.rollouts)
            rng = torch.Generator(device=outputs.device).manual_seed(self.config.train.seed + 13)
            shades = tuple(tuple(row[:len(tokens)]) for row, tokens in zip(
                self.token_rewards(outputs, n, rng, self.nets["generator"]).tolist(), rows))
            title = f"step {self.step}, {self.phase(self.step)}; shade: D's reward ({n} rollouts): orange 0, blue 1"
        picture = render_tokens(rows, shades, joiner, title)
        return {"kind": "text", "picture": picture, "text": tuple(joiner.join(row) for row in rows),
                "tokens": tuple(tuple(row) for row in rows), "shades": shades, "joiner": joiner, "title": title}

    def pictures(self, preview, outputs: torch.Tensor) -> tuple:
        joiner = self.dataset.vocab.joiner
        rows = self._rows(outputs)
        return render_tokens(rows, None, joiner), [render_tokens([row], None, joiner) for row in rows]

    # -- training ----------------------------------------------------------------------------------
    def train_step(self, step: int, report: bool) -> dict:
        s = self.config.seqgan
        self.step = step
        if step < s.mle_steps:
            self.latest["mle_loss"] = self._mle_step("generator")
        elif step < self.adversarial_start:
            self._d_step()
        else:
            if step == self.adversarial_start:
                self._start_adversarial()
            self._adversarial_piece(report)
        self.step = step + 1
        return dict(self.latest)

    def baseline_running(self) -> bool:
        return "mle_generator" in self.nets and self.step > self.adversarial_start

    def _start_adversarial(self) -> None:
        """The rollout network starts as G; the MLE-only continuation starts as G with G's optimizer state."""
        g = self.nets["generator"]
        self.nets["rollout"].load_state_dict(g.state_dict())
        if "mle_generator" in self.nets:
            self.nets["mle_generator"].load_state_dict(g.state_dict())
            self.opts["mle_generator"].load_state_dict(self.opts["generator"].state_dict())

    def _optimise(self, name: str, loss: torch.Tensor, clip: bool) -> None:
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(self.nets[name].parameters(), self.config.seqgan.grad_clip)
        opt.step()

    def _mle_step(self, name: str) -> torch.Tensor:
        real, _ = self.dataset.sample(self.config.seqgan.batch, self.rng)
        loss = self.nets[name].token_nll(real).mean()
        self._optimise(name, loss, clip=True)
        return loss.detach()

    def _d_step(self) -> None:
        s = self.config.seqgan
        real, _ = self.dataset.sample(s.batch, self.rng)
        fake = self.nets["generator"].sample(torch.rand(s.batch, self.length, generator=self.rng,
                                                        device=real.device))
        logits = self.nets["discriminator"](torch.cat([real, fake]), self.rng)
        target = torch.cat([torch.ones(len(real), device=real.device), torch.zeros(len(fake), device=real.device)])
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        self._optimise("discriminator", loss, clip=False)
        self.latest["d_loss"] = loss.detach()
        self.latest["d_accuracy"] = ((logits.detach() > 0).float() == target).float().mean()

    def _adversarial_piece(self, report: bool) -> None:
        s = self.config.seqgan
        if self.round_pos >= s.g_steps + s.d_steps:
            self.round_pos = 0
        if self.round_pos < s.g_steps:
            if self.pending is None:
                x = self.nets["generator"].sample(torch.rand(s.batch, self.length, generator=self.rng,
                                                             device=self.device))
                self.pending = {"x": x, "sum": torch.zeros(x.shape, device=x.device), "done": 0, "want": s.rollouts}
            p = self.pending
            p["sum"] += self.rollout_pass(p["x"], self.rng)
            p["done"] += 1
            if p["done"] >= p["want"]:
                self._policy_step(p["x"], p["sum"] / p["done"], report)
                self.pending = None
                self.round_pos += 1
        else:
            self._d_step()
            self.round_pos += 1

    def _policy_step(self, x: torch.Tensor, rewards: torch.Tensor, report: bool) -> None:
        s = self.config.seqgan
        rewards[:, -1] = self._judge(x)
        generator = self.nets["generator"]
        loss = (generator.token_nll(x) * rewards).mean()  # −mean of log G(x_t | x_<t) · Q(x_<t, x_t)
        self._optimise("generator", loss, clip=True)
        with torch.no_grad():
            rollout = list(self.nets["rollout"].parameters())
            torch._foreach_lerp_(rollout, [p.detach() for p in generator.parameters()], 1.0 - s.rollout_update)
        self.latest.update(pg_loss=loss.detach(), reward=rewards.mean())
        if "mle_generator" in self.nets:
            self.latest["baseline_mle_loss"] = self._mle_step("mle_generator")
        if report or "mle_loss" not in self.latest:
            real, _ = self.dataset.sample(s.batch, self.eval_rng)
            with torch.no_grad():
                self.latest["mle_loss"] = generator.token_nll(real).mean()

    # -- saved with checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        pending = None
        if self.pending is not None:
            pending = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in self.pending.items()}
        return {"step": self.step, "round_pos": self.round_pos, "pending": pending,
                "latest": {k: float(v) for k, v in self.latest.items()}}

    def load_state(self, state: dict) -> None:
        self.step = int(state.get("step", 0))
        self.round_pos = int(state.get("round_pos", 0))
        pending = state.get("pending")
        self.pending = None if pending is None else {
            k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in pending.items()}
        self.latest = {k: torch.tensor(v) for k, v in (state.get("latest") or {}).items()}

    def quality_probes(self) -> list:
        return [SequenceQuality(self, self.config.train.metrics_samples, self.config.train.seed)]

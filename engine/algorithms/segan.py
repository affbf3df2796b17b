"""SEGAN (Pascual et al. 2017): a GAN that removes noise from raw speech waveforms.

G (engine.speech.nets) maps a noisy window x̃ and a latent z to an enhanced window; D judges (x̃, x) pairs against
(x̃, G(z, x̃)) pairs. Least-squares losses with an L1 term, as in the paper:

  D minimises  ½ (D(x̃, x) − 1)² + ½ D(x̃, G(z, x̃))²
  G minimises  gan_weight · ½ (D(x̃, G(z, x̃)) − 1)² + l1_weight · |G(z, x̃) − x|₁   (the paper: λ = 100)

Both waveforms are pre-emphasised (x[n] − 0.95 x[n−1]) before the networks and G's output de-emphasised after.
With gan_weight = 0, D is not trained and G is the "L1 alone" baseline. A whole recording is enhanced window by
window (no overlap, as in the paper) and the pieces joined.

The sampling inputs are held-out clips; `generate` returns noisy | enhanced | clean (N x 3 x T), drawn as
waveforms and spectrograms and carried as audio in the Samples event so the studio can play them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.algorithms.base import Algorithm
from engine.events import Declaration
from engine.settings import ConfigError, _f
from engine.speech.data import SpeechSpace, make_speech
from engine.speech.nets import SeganDiscriminator, SeganGenerator
from engine.speech.noise import NOISE_TYPES as NOISE_KINDS

PANELS = ("noisy", "enhanced", "clean")
DEEMPHASIS_TAPS = 256  # 0.95 ** 256 ≈ 2e-6: the inverse filter's truncated impulse response
PREVIEW_Z_SEED = 17
PLOTS = (("Losses", (("d_loss", "D loss", "#1f77b4"), ("g_adv", "G's adversarial term", "#ff7f0e"))),
         ("L1 to the clean speech (pre-emphasised)", (("l1", "|G(z, x̃) − x|₁", "#2ca02c"),)),
         ("D on pairs", (("d_real", "D(noisy, clean)", "#1f77b4"), ("d_fake", "D(noisy, enhanced)", "#d62728"))),
         ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))))


def _synth(c) -> bool:
    return c.segan.source == "synth"


def _folder(c) -> bool:
    return c.segan.source == "folder"


@dataclass
class SeganSettings:
    source: str = _f("synth", "the data: sentences spoken by espeak-ng with noise mixed in, or a folder of "
                              "noisy/ and clean/ WAV files paired by name", choices=("synth", "folder"))
    folder: str = _f("", "a folder holding noisy/ and clean/ WAV files paired by name (any rate)", when=_folder)
    held_out: float = _f(0.1, "share of the folder's pairs held out for previews and scores", gt=0.0, max=0.5,
                         when=_folder)
    text_file: str = _f("", "text whose sentences are spoken (empty: the system's fortune cookies)", when=_synth)
    utterances: int = _f(400, "training sentences spoken (voices and speeds cycle)", min=1, max=100000, when=_synth)
    held_clips: int = _f(32, "held-out sentences (never trained on), each mixed with one noise at one SNR",
                         min=1, max=10000, when=_synth)
    noises: list = _f(list(NOISE_KINDS), "the noises mixed in: white, pink, brown, babble", when=_synth)
    snrs: list = _f([0, 5, 10, 15], "signal-to-noise ratios the noise is mixed at, dB", when=_synth)
    noise_seed: int = _f(0, "seed of the training noise bank", min=0, max=2 ** 62, when=_synth)
    rate: int = _f(8000, "sampling rate, Hz (the paper: 16 kHz; 8 kHz trains four times faster on a CPU)",
                   choices=(8000, 16000))
    window: int = _f(2048, "samples per training window (the paper: 16384, about 1 s at 16 kHz)", min=64,
                     max=65536)
    preemphasis: float = _f(0.95, "pre-emphasis coefficient (0: none)", min=0.0, max=0.99)
    batch: int = _f(32, "windows per minibatch", min=1, max=4096, alias="batch_size")
    gan_weight: float = _f(1.0, "weight of G's adversarial term (0: L1 alone; D is then not trained)", min=0.0,
                           max=1000.0, live=True, alias="gan_weight")
    l1_weight: float = _f(100.0, "λ: weight of the L1 distance to the clean speech", min=0.0, max=10000.0,
                          live=True, alias="l1_weight")
    g_channels: list = _f([16, 32, 32, 64, 64, 128, 128], "G's encoder channels, one stride-2 layer each (the "
                                                          "paper: 16 32 32 64 64 128 128 256 256 512 1024)")
    d_channels: list = _f([16, 32, 32, 64, 64, 128, 128], "D's channels, one stride-2 layer each")
    kernel: int = _f(31, "width of every convolution, samples (the paper: 31)", min=2, max=255)
    latent: bool = _f(True, "a latent z at G's bottleneck (the paper's), drawn anew for every window")
    zero_mean: bool = _f(True, "take each window's mean off G's output (not in the paper: de-emphasis multiplies "
                               "an offset by 20, an early G's largest error)")
    preview_clips: int = _f(4, "held-out clips shown and played", min=1, max=16)
    preview_seconds: float = _f(2.0, "longest preview clip, seconds", gt=0.0, max=30.0)


def preemphasis(x: torch.Tensor, coefficient: float) -> torch.Tensor:
    """x[n] − c·x[n−1] along the last axis (x[−1] = 0)."""
    if coefficient == 0:
        return x
    return torch.cat([x[..., :1], x[..., 1:] - coefficient * x[..., :-1]], -1)


def deemphasis(x: torch.Tensor, coefficient: float) -> torch.Tensor:
    """The inverse of preemphasis, y[n] = x[n] + c·y[n−1], as a convolution with c^k for k < DEEMPHASIS_TAPS."""
    if coefficient == 0:
        return x
    taps = coefficient ** torch.arange(DEEMPHASIS_TAPS - 1, -1, -1, dtype=x.dtype, device=x.device)
    shape = x.shape
    flat = F.pad(x.reshape(-1, 1, shape[-1]), (DEEMPHASIS_TAPS - 1, 0))
    return F.conv1d(flat, taps.view(1, 1, -1)).reshape(shape)


class SeganAlgorithm(Algorithm):
    name = "segan"
    section = "segan"
    settings = SeganSettings
    base_sections = ("optim", "train", "tricks")
    sampling_nets = ("generator",)
    opt_roles = {"generator": "g", "discriminator": "d"}

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.segan
        if nets is None or "generator" in nets:
            self.nets["generator"] = SeganGenerator(tuple(s.g_channels), s.kernel, s.latent, s.zero_mean).to(device)
        if nets is None:
            self.nets["discriminator"] = SeganDiscriminator(tuple(s.d_channels), s.kernel, s.window).to(device)

    # -- what the config, the studio and the CLI know -------------------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        s = config.segan
        if s.source == "folder" and not s.folder:
            raise ConfigError("segan.source = 'folder' needs segan.folder set to a folder holding noisy/ and clean/.")
        bad = [n for n in s.noises if n not in NOISE_KINDS]
        if s.source == "synth" and (bad or not s.noises):
            raise ConfigError(f"segan.noises = {s.noises!r} is not allowed: name one or more of "
                              f"{', '.join(NOISE_KINDS)}.")
        if s.source == "synth" and (not s.snrs or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          and -30 <= v <= 50 for v in s.snrs)):
            raise ConfigError(f"segan.snrs = {s.snrs!r} is not allowed: give one or more numbers of dB between -30 "
                              f"and 50.")
        if s.window & (s.window - 1):
            raise ConfigError(f"segan.window = {s.window} is not a power of two; use 2048, 4096 or 16384.")
        for key, channels in (("segan.g_channels", s.g_channels), ("segan.d_channels", s.d_channels)):
            if not channels or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels):
                raise ConfigError(f"{key} = {channels!r} is not allowed: it must be a list of whole numbers >= 1.")
            if len(channels) > 16 or s.window >> len(channels) < 2:
                raise ConfigError(f"{key} has {len(channels)} layers, which would halve segan.window = {s.window} "
                                  f"below 2 samples; use fewer layers or a longer window.")

    @classmethod
    def declare(cls, config) -> Declaration:
        pairs = {name: ("enhanced", f"{name}_noisy", "noisy") for name in ("snr", "segsnr", "pesq", "stoi")}
        return Declaration(plots=PLOTS, terms={"g_loss": "G's whole loss"}, settings=("lr_g", "lr_d"),
                           controls=tuple(config.live_keys()), previews=("audio",),
                           progress=(("D", "d_loss", ".3f"), ("L1", "l1", ".4f")),
                           losses={"d_loss": "D's loss", "g_loss": "G's loss"}, quality_pairs=pairs)

    @classmethod
    def make_data(cls, config, progress=None, warn=None, cancel=None):
        return make_speech(config.segan, progress, cancel)

    @classmethod
    def sampling_data(cls, config, data: dict):
        return SpeechSpace(int(data.get("rate", config.segan.rate)), int(data.get("window", config.segan.window)))

    # -- enhancing -------------------------------------------------------------------------------------
    @property
    def rate(self) -> int:
        return self.dataset.rate

    def enhance(self, noisy: torch.Tensor, nets: dict, rng: torch.Generator | None = None) -> torch.Tensor:
        """Noisy waveforms N x 1 x T (T a multiple of the window) enhanced window by window."""
        s, window = self.config.segan, self.dataset.shape[-1]
        n, _, length = noisy.shape
        pieces = preemphasis(noisy, s.preemphasis).reshape(-1, 1, window)
        out = torch.cat([nets["generator"](part, rng=rng) for part in pieces.split(256)])
        return deemphasis(out.reshape(n, 1, length), s.preemphasis).clamp(-1, 1)

    def enhance_array(self, noisy: np.ndarray, nets: dict, seed: int = PREVIEW_Z_SEED) -> np.ndarray:
        """One recording (a float array at the model's rate) enhanced; the same length back."""
        window = self.dataset.shape[-1]
        padded = np.zeros(-(-max(len(noisy), 1) // window) * window, np.float32)
        padded[:len(noisy)] = noisy
        device = next(nets["generator"].parameters()).device
        rng = torch.Generator(device=device).manual_seed(seed)
        with torch.no_grad():
            out = self.enhance(torch.from_numpy(padded).to(device).view(1, 1, -1), nets, rng)
        return out.view(-1)[:len(noisy)].cpu().numpy()

    # -- sampling ----------------------------------------------------------------------------------
    def preview_clips(self) -> list:
        """The clips shown: one per noise kind at the second SNR (5 dB by default) where the held-out set has it."""
        held, s = self.dataset.held, self.config.segan
        k = len(s.noises)
        start = k if self.dataset.source == "synth" and len(held) >= 2 * k else 0
        return (held[start:] + held[:start])[:s.preview_clips]

    def labels(self) -> list:
        return [clip.label for clip in self.preview_clips()]

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        return self.fixed_inputs(n, rng)

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        if not self.dataset.held:
            raise ConfigError("A SEGAN model enhances recordings; use gan-studio enhance CKPT IN.wav OUT.wav.")
        clips, window = self.preview_clips(), self.dataset.shape[-1]
        longest = min(max(len(c.clean) for c in clips), int(self.config.segan.preview_seconds * self.rate))
        length = -(-longest // window) * window
        noisy, clean = np.zeros((2, len(clips), 1, length), np.float32)
        for i, clip in enumerate(clips):
            m = min(len(clip.clean), longest)
            noisy[i, 0, :m], clean[i, 0, :m] = clip.noisy[:m], clip.clean[:m]
        return {"noisy": torch.from_numpy(noisy).to(self.device), "clean": torch.from_numpy(clean).to(self.device)}

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        device = inputs["noisy"].device
        rng = torch.Generator(device=device).manual_seed(PREVIEW_Z_SEED)
        enhanced = self.enhance(inputs["noisy"], nets, rng)
        return torch.cat([inputs["noisy"], enhanced, inputs["clean"]], 1)

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        from engine.speech.picture import render_clips
        audio = outputs.float().cpu().numpy()
        labels = self.labels()
        picture = render_clips(audio, self.rate, list(PANELS), labels)
        return {"kind": "audio", "picture": picture, "audio": audio, "rate": self.rate,
                "text": tuple(labels), "title": " | ".join(PANELS)}

    def pictures(self, preview, outputs: torch.Tensor) -> tuple:
        from engine.speech.picture import render_clips
        audio = outputs.float().cpu().numpy()
        labels = self.labels()
        return (render_clips(audio, self.rate, list(PANELS), labels),
                [render_clips(audio[i:i + 1], self.rate, list(PANELS), labels and labels[i:i + 1])
                 for i in range(len(audio))])

    def quality_probes(self) -> list:
        from engine.speech.quality import SpeechQuality
        return [SpeechQuality(self, self.config.train.metrics_samples)] if self.dataset.held else []

    # -- training ----------------------------------------------------------------------------------
    def train_step(self, step: int, report: bool) -> dict:
        s = self.config.segan
        G = self.nets["generator"]
        norms = report and self.config.tricks.grad_norms
        noisy, clean = self.dataset.sample_pairs(s.batch, self.rng)
        x, y = preemphasis(noisy, s.preemphasis), preemphasis(clean, s.preemphasis)
        fake = G(x, rng=self.rng)
        last = {}
        if s.gan_weight > 0:
            D = self.nets["discriminator"]
            d_real, d_fake = D(x, y), D(x, fake.detach())
            d_loss = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake ** 2).mean()
            self.optimise("discriminator", d_loss, norms, last, "grad_norm_d")
            g_adv = 0.5 * ((D(x, fake) - 1) ** 2).mean()
            last.update(d_loss=d_loss.detach(), g_adv=g_adv.detach())
            if report:
                last.update(d_real=d_real.mean().detach(), d_fake=d_fake.mean().detach())
        else:
            g_adv = torch.zeros((), device=fake.device)
        l1 = (fake - y).abs().mean()
        g_loss = s.gan_weight * g_adv + s.l1_weight * l1
        self.optimise("generator", g_loss, norms, last, "grad_norm_g")
        last.update(g_loss=g_loss.detach(), l1=l1.detach())
        return last

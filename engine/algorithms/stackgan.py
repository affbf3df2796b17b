"""StackGAN (Zhang et al. 2017): text to image in two stages, on a labelled image data set whose classes are
described in words (the preset's stackgan.descriptions, several per class).

A text encoder E gives φ_t from a description t (word embeddings averaged, then an MLP; engine.text.descriptions).
Conditioning augmentation draws c = μ(φ_t) + σ(φ_t) ⊙ ε, ε ~ N(0, I), with μ and log σ² from one linear layer,
and G pays kl_weight · KL(N(μ, σ²) ‖ N(0, I)) (averaged over the condition's dimensions, as the authors' code).
Stage I: G₁(z, c₁) draws a coarse image at half the side (14 × 14 for 28 × 28 data); D₁ judges (image, φ_t) pairs
at that size against the real images averaged down 2 × 2. Stage II: G₂(stage-I image, c₂) encodes the coarse
image down to a quarter of the side, joins c₂ copied over it, refines it with residual blocks and draws the
full-size image (no z: the randomness is in the stage-I image and ε₂); D₂ judges full-size pairs. Each stage has
its own CA. D (text compressed to stackgan.d_text_dim by a linear layer, copied over D's last feature map) is
matching-aware, with d(x, t) its logit:

  D minimises   softplus(−d(x, t)) + ½ [softplus(d(G(·), t)) + softplus(d(x, t̄))]     (t̄: a description of
                another class than x's, so the pair truly does not match)
  G minimises   softplus(−d(G(·), t)) + kl_weight · KL

The paper trains stage I, then stage II with stage I fixed: steps below stackgan.stage1_steps train E, G₁ and
D₁; later ones G₂ and D₂ on stage I's images (G₁ in eval mode, nothing of stage I changes). The paper's encoder
was trained beforehand; here E learns in stage I with D₁ (its matching-aware loss: E must tell D which texts fit
an image) plus class_weight · CE(class head(φ_t), y) (a text-only stand-in for the class-discriminative joint
embedding the pre-trained encoder was trained with); G's loss never reaches E, or E could blur the texts to
spare G. One step draws from the run's generator in this order: the real batch (x, y), a description of each
y, another class for each mismatched pair and one of its descriptions, z, ε₁, then (stage II) ε₂.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.algorithms.base import SamplingNetsProbe, data_previews, grad_norm, needs_labelled_images
from engine.algorithms.staged import StagedAlgorithm
from engine.events import Declaration
from engine.models import _dcgan_init
from engine.settings import _f
from engine.text.descriptions import (FASHION_DESCRIPTIONS, ConditioningAugmentation, TextBank, TextEncoder,
                                      check_descriptions, class_loss, kl_to_standard)


@dataclass
class StackGanSettings:
    descriptions: list = _f(FASHION_DESCRIPTIONS, "one list of descriptions per class, in class order (the "
                            "defaults describe Fashion-MNIST's ten classes); the vocabulary is their words")
    stage1_steps: int = _f(5000, "steps of stage I (text encoder, G₁, D₁); stage II (G₂, D₂) trains after, with "
                                 "stage I fixed", min=0)
    kl_weight: float = _f(2.0, "λ: weight of KL(N(μ, σ²) ‖ N(0, I)) of conditioning augmentation on G (the paper "
                               "says 1; the authors' code uses 2 with the KL averaged over dimensions)", min=0.0,
                          max=100.0, live=True, alias="kl_weight")
    class_weight: float = _f(1.0, "weight of the text encoder's auxiliary loss: the class predicted from φ_t",
                             min=0.0, max=100.0, live=True, alias="text_class_weight")
    lr_scale_stage1: float = _f(1.0, "stage I's learning rates (text encoder, G₁, D₁) are lr_g / lr_d times this",
                                gt=0.0, max=100.0, live=True, alias="lr_scale_stage1")
    lr_scale_stage2: float = _f(1.0, "stage II's learning rates (G₂, D₂) are lr_g / lr_d times this", gt=0.0,
                                max=100.0, live=True, alias="lr_scale_stage2")
    noise_dim: int = _f(100, "N_z: size of stage I's noise z", min=1, max=1024)
    condition_dim: int = _f(64, "N_g: size of the augmented condition c (the paper: 128)", min=1, max=1024)
    text_dim: int = _f(64, "size of the text embedding φ_t", min=1, max=4096)
    word_dim: int = _f(32, "size of the word embeddings", min=1, max=4096)
    d_text_dim: int = _f(32, "N_d: D compresses φ_t to this many numbers before joining it to the image's", min=1,
                         max=1024)
    g_channels: int = _f(32, "channels of the generators' finest layers (doubled at coarser ones)", min=4, max=512)
    d_channels: int = _f(32, "channels of the discriminators' first layer (doubled at each halving)", min=4, max=512)
    residual_blocks: int = _f(2, "residual blocks of G₂ (the authors' code: 4)", min=0, max=16)


STAGE1, STAGE2 = ("text_encoder", "generator1", "discriminator1"), ("generator2", "discriminator2")
PLOTS = (
    ("Losses", (("d1_loss", "D₁", "#1f77b4"), ("g1_loss", "G₁", "#ff7f0e"), ("d2_loss", "D₂", "#2ca02c"),
                ("g2_loss", "G₂", "#d62728"))),
    ("Conditioning and text", (("kl", "KL(N(μ, σ²) ‖ N(0, I))", "#9467bd"),
                               ("text_class_accuracy", "class read from φ_t", "#8c564b"))),
    ("D on pairs", (("d_real", "D(x, t) matching", "#1f77b4"), ("d_wrong", "D(x, t̄) mismatched", "#2ca02c"),
                    ("d_fake", "D(G(·), t)", "#d62728"))),
    ("Gradient norms", (("grad_norm_d", "|∇D|", "#1f77b4"), ("grad_norm_g", "|∇G|", "#ff7f0e"))),
)
TERMS = {"g_adversarial": "G's GAN term", "class_loss": "CE of the class read from φ_t"}
PROGRESS = (("D₁", "d1_loss", ".3f"), ("G₁", "g1_loss", ".3f"), ("D₂", "d2_loss", ".3f"), ("G₂", "g2_loss", ".3f"),
            ("text", "text_class_accuracy", ".2f"))
LOSSES = {"d1_loss": "D₁'s loss", "g1_loss": "G₁'s loss", "d2_loss": "D₂'s loss", "g2_loss": "G₂'s loss"}
QUALITY_PAIRS = {"text_accuracy": ("stage II", "text_accuracy_stage1", "stage I"),
                 "text_accuracy_stage1": ("stage I", "text_accuracy", "stage II"),
                 "frechet_distance": ("stage II", "frechet_stage1_real", "stage I"),
                 "frechet_stage1_real": ("stage I", "frechet_distance", "stage II")}


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


def up(cin: int, cout: int) -> nn.Sequential:
    """The paper's up-sampling block: nearest-neighbour ×2, a 3 × 3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3(cin, cout), nn.BatchNorm2d(cout), nn.ReLU())


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(),
                                  conv3(channels, channels), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Stage1Generator(nn.Module):
    """G₁(z, c₁): a linear map to (4g, side/4, side/4), one up-sampling block to half the side, an image by tanh."""

    def __init__(self, s, channels: int, side: int):
        super().__init__()
        g, self.start = s.g_channels, side // 4
        self.ca = ConditioningAugmentation(s.text_dim, s.condition_dim)
        self.fc = nn.Linear(s.noise_dim + s.condition_dim, 4 * g * self.start ** 2, bias=False)
        self.body = nn.Sequential(nn.BatchNorm2d(4 * g), nn.ReLU(), up(4 * g, 2 * g), conv3(2 * g, g),
                                  nn.BatchNorm2d(g), nn.ReLU(), nn.Conv2d(g, channels, 3, 1, 1), nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, z, phi, eps):
        c, mu, logvar = self.ca(phi, eps)
        h = self.fc(torch.cat([z, c], 1)).view(len(z), -1, self.start, self.start)
        return self.body(h), mu, logvar


class Stage2Generator(nn.Module):
    """G₂(s₁, c₂): the stage-I image encoded down to a quarter of the side, c₂ copied over it and joined by a
    3 × 3 convolution, residual blocks, two up-sampling blocks to the full side, an image by tanh."""

    def __init__(self, s, channels: int):
        super().__init__()
        g = s.g_channels
        self.ca = ConditioningAugmentation(s.text_dim, s.condition_dim)
        self.encode = nn.Sequential(nn.Conv2d(channels, g, 3, 1, 1), nn.ReLU(),
                                    nn.Conv2d(g, 2 * g, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU())
        self.joint = nn.Sequential(conv3(2 * g + s.condition_dim, 2 * g), nn.BatchNorm2d(2 * g), nn.ReLU(),
                                   *[ResBlock(2 * g) for _ in range(s.residual_blocks)])
        self.body = nn.Sequential(up(2 * g, g), up(g, max(g // 2, 4)), nn.Conv2d(max(g // 2, 4), channels, 3, 1, 1),
                                  nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, stage1, phi, eps):
        c, mu, logvar = self.ca(phi, eps)
        h = self.encode(stage1)
        h = self.joint(torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[-2:])], 1))
        return self.body(h), mu, logvar


class TextDiscriminator(nn.Module):
    """D(x, φ_t): strided 4 × 4 convolutions halve the image down to 4 × 4 or less; φ_t compressed to N_d by a
    linear layer is copied over that map, joined by a 3 × 3 convolution, and one convolution over the whole map
    gives the logit. `encode` and `judge` are split so one pass over an image serves its pairs with two texts."""

    def __init__(self, s, channels: int, side: int):
        super().__init__()
        width, layers = s.d_channels, [nn.Conv2d(channels, s.d_channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        side = side // 2
        while side > 4:
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2)]
            width, side = 2 * width, side // 2
        self.trunk = nn.Sequential(*layers)
        self.text = nn.Sequential(nn.Linear(s.text_dim, s.d_text_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(conv3(width + s.d_text_dim, width), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
                                   nn.Conv2d(width, 1, side))
        self.apply(_dcgan_init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def judge(self, h: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        t = self.text(phi)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        return self.joint(torch.cat([h, t], 1)).flatten()

    def forward(self, x: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        return self.judge(self.encode(x), phi)


class StackGanAlgorithm(StagedAlgorithm):
    name = "stackgan"
    section = "stackgan"
    settings = StackGanSettings
    base_sections = ("data", "optim", "train", "tricks")
    sampling_nets = ("text_encoder", "generator1", "generator2")
    opt_roles = {"text_encoder": "d", "generator1": "g", "discriminator1": "d", "generator2": "g",
                 "discriminator2": "d"}
    text_conditioned = True  # the CLI's --text and the explorer's description box
    g_conditioned = False

    def __init__(self, config, dataset, device, rng, nets=None):
        super().__init__(config, dataset, device, rng, nets)
        s = config.stackgan
        channels, side = dataset.shape[0], dataset.shape[-1]
        k = len(s.descriptions)
        if dataset.num_classes:
            check_descriptions(s.descriptions, classes=dataset.num_classes)
        self.num_classes = k
        self.bank = TextBank(s.descriptions, device)
        makers = {"text_encoder": lambda: TextEncoder(len(self.bank.vocab), s.word_dim, s.text_dim, k),
                  "generator1": lambda: Stage1Generator(s, channels, side),
                  "discriminator1": lambda: TextDiscriminator(s, channels, side // 2),
                  "generator2": lambda: Stage2Generator(s, channels),
                  "discriminator2": lambda: TextDiscriminator(s, channels, side)}
        for name, make in makers.items():
            if nets is None or name in nets:
                self.nets[name] = make().to(device)

    # -- what the config, the studio and the CLI know beforehand ------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        needs_labelled_images(config, "algorithm = 'stackgan'")
        check_descriptions(config.stackgan.descriptions)

    @classmethod
    def declare(cls, config) -> Declaration:
        return Declaration(plots=PLOTS, terms=TERMS, settings=("lr_g", "lr_d"), controls=tuple(config.live_keys()),
                           previews=data_previews(config), steerable=True, progress=PROGRESS, losses=LOSSES,
                           quality_pairs=QUALITY_PAIRS)

    def phase(self, step: int) -> str:
        if step < self.config.stackgan.stage1_steps:
            return "stage I: coarse 14×14"
        return "stage II: refine (stage I fixed)"

    # -- inputs and outputs ----------------------------------------------------------------------------
    def _noise(self, n: int, rng: torch.Generator) -> dict:
        s = self.config.stackgan
        draw = lambda dim: torch.randn(n, dim, generator=rng, device=rng.device)
        return {"z": draw(s.noise_dim), "eps1": draw(s.condition_dim), "eps2": draw(s.condition_dim)}

    def random_inputs(self, n: int, rng: torch.Generator) -> dict:
        """z, ε₁, ε₂, a random class for each sample and one of its descriptions (word indices)."""
        s = self.config.stackgan
        draw = lambda dim: torch.randn(n, dim, generator=rng, device=rng.device)
        z = draw(s.noise_dim)
        labels = torch.randint(0, self.num_classes, (n,), generator=rng, device=rng.device).cpu()
        which = self.bank.draw(labels, rng)
        return {"z": z, "eps1": draw(s.condition_dim), "eps2": draw(s.condition_dim),
                "tokens": self.bank.tokens.cpu()[which], "labels": labels}

    def fixed_inputs(self, n: int, rng: torch.Generator) -> dict:
        """Sample i describes class i mod K (a grid K wide has one class per column); each row takes the next
        description of its classes."""
        labels = torch.arange(n) % self.num_classes
        which = self.bank.offsets.cpu()[labels] + (torch.arange(n) // self.num_classes) % self.bank.counts.cpu()[labels]
        return {**self._noise(n, rng), "tokens": self.bank.tokens.cpu()[which], "labels": labels}

    def encode_text(self, texts: list[str]) -> dict:
        """{"tokens", "labels"} for typed descriptions (labels: the class of a description in the preset, else
        −1); a ConfigError in one sentence for an empty text or one with no known word."""
        return self.bank.encode(list(texts))

    def inputs_for_text(self, text: str, n: int, rng: torch.Generator) -> dict:
        """n samples of one description: its word indices repeated, z, ε₁ and ε₂ from rng."""
        encoded = self.bank.encode([text])
        return {**self._noise(n, rng), "tokens": encoded["tokens"].expand(n, -1).clone(),
                "labels": encoded["labels"].expand(n).clone()}

    def draw(self, inputs: dict, nets: dict) -> tuple[torch.Tensor, list]:
        phi = nets["text_encoder"](inputs["tokens"])
        stage1, _, _ = nets["generator1"](inputs["z"], phi, inputs["eps1"])
        stage2, _, _ = nets["generator2"](stage1, phi, inputs["eps2"])
        return stage2, [("stage I", stage1), ("stage II", stage2)]

    def quality_probes(self) -> list:
        probe = TextFaithfulness(self, self.config.train.metrics_samples)
        return [probe] if probe.enabled else []

    # -- optimisers: each stage's nets take lr_g / lr_d times its scale ---------------------------------
    def build_optimizers(self) -> None:
        super().build_optimizers()
        self._scale_lrs()

    def settings_changed(self) -> None:
        super().settings_changed()
        self._scale_lrs()

    def _scale_lrs(self) -> None:
        s, o = self.config.stackgan, self.config.optim
        for name, opt in self.opts.items():
            scale = s.lr_scale_stage1 if name in STAGE1 else s.lr_scale_stage2
            for group in opt.param_groups:
                group["lr"] = (o.lr_g if self.opt_roles[name] == "g" else o.lr_d) * scale

    # -- one step ----------------------------------------------------------------------------------------
    def _batch(self) -> tuple:
        """The step's draws, in the documented order (ε₂ only in stage II)."""
        x, y = self.dataset.sample(self.config.data.batch_size, self.rng)
        texts = self.bank.tokens[self.bank.draw(y, self.rng)]
        shift = torch.randint(1, self.num_classes, y.shape, generator=self.rng, device=self.rng.device)
        wrong = self.bank.tokens[self.bank.draw((y + shift.to(y.device)) % self.num_classes, self.rng)]
        return x, y, texts.to(x.device), wrong.to(x.device)

    def train_step(self, step: int, report: bool) -> dict:
        s = self.config.stackgan
        stage1 = step < s.stage1_steps
        x, y, texts, wrong = self._batch()
        n = len(x)
        z = torch.randn(n, s.noise_dim, generator=self.rng, device=self.rng.device).to(x.device)
        eps1 = torch.randn(n, s.condition_dim, generator=self.rng, device=self.rng.device).to(x.device)
        E, G1 = self.nets["text_encoder"], self.nets["generator1"]
        last = {}
        if stage1:
            E.train(), G1.train()
            D, G, real = self.nets["discriminator1"], G1, F.avg_pool2d(x, 2)
            phi, phi_wrong = E(texts), E(wrong)
            fake, mu, logvar = G1(z, phi.detach(), eps1)
        else:
            E.eval(), G1.eval()  # stage I is fixed: not even its batch-norm statistics move
            D, G, real = self.nets["discriminator2"], self.nets["generator2"], x
            eps2 = torch.randn(n, s.condition_dim, generator=self.rng, device=self.rng.device).to(x.device)
            with torch.no_grad():
                phi, phi_wrong = E(texts), E(wrong)
                coarse, _, _ = G1(z, phi, eps1)
            fake, mu, logvar = G(coarse, phi, eps2)
        d_name, g_name, tag = ("discriminator1", "generator1", "1") if stage1 else ("discriminator2", "generator2", "2")
        norms = report and self.config.tricks.grad_norms

        # D (and, in stage I, the text encoder): matching pairs real; fakes and mismatched pairs fake
        h_real = D.encode(real)
        d_real, d_wrong = D.judge(h_real, phi), D.judge(h_real, phi_wrong)
        d_fake = D(fake.detach(), phi)
        d_loss = F.softplus(-d_real).mean() + 0.5 * (F.softplus(d_fake).mean() + F.softplus(d_wrong).mean())
        total = d_loss
        if stage1:
            c_loss, c_accuracy = class_loss(E, phi, y)
            total = d_loss + s.class_weight * c_loss
            last.update(class_loss=c_loss.detach(), text_class_accuracy=c_accuracy.detach())
        names = (d_name, "text_encoder") if stage1 else (d_name,)
        for name in names:
            self.opts[name].zero_grad(set_to_none=True)
        total.backward()
        if norms:
            last["grad_norm_d"] = grad_norm(D)
        for name in names:
            self.opts[name].step()

        # G: its pairs should fool the updated D; conditioning augmentation pays the KL
        adversarial = F.softplus(-D(fake, phi.detach())).mean()
        kl = kl_to_standard(mu, logvar)
        g_loss = adversarial + s.kl_weight * kl
        self.opts[g_name].zero_grad(set_to_none=True)
        g_loss.backward()
        if norms:
            last["grad_norm_g"] = grad_norm(G)
        self.opts[g_name].step()
        last.update({f"d{tag}_loss": d_loss.detach(), f"g{tag}_loss": g_loss.detach(), "kl": kl.detach(),
                     "g_adversarial": adversarial.detach()})
        if report:
            last.update(d_real=torch.sigmoid(d_real).mean().detach(), d_wrong=torch.sigmoid(d_wrong).mean().detach(),
                        d_fake=torch.sigmoid(d_fake).mean().detach())
        return last


class TextFaithfulness(SamplingNetsProbe):
    """Live text faithfulness on Fashion-MNIST: the shipped evaluator's accuracy at recognising the class each
    sample's description names (text_accuracy; text_accuracy_stage1 for stage I enlarged to the full side), the
    Fréchet distance of stage I (enlarged) to stage II's images (frechet_stage1) and to real images
    (frechet_stage1_real), in the evaluator's feature space. The sampling networks (the EMA copies where the run
    keeps them) are copied on the training thread and run on the metrics thread."""

    def __init__(self, algorithm: StackGanAlgorithm, n: int):
        from engine.metrics.evaluator import EvaluatorError, load_evaluator
        self.algorithm, self.enabled = algorithm, False
        dataset, seed = algorithm.dataset, algorithm.config.train.seed
        if getattr(dataset, "name", "") != "fashion_mnist" or tuple(dataset.shape) != (1, 28, 28):
            return
        try:
            load_evaluator()
        except EvaluatorError:
            return  # the generic probe already says why the image measures are off
        self.inputs = algorithm.random_inputs(n, torch.Generator().manual_seed(seed + 9))
        device = getattr(dataset, "device", torch.device("cpu"))
        self.real = dataset.sample(n, torch.Generator(device=device).manual_seed(seed + 4))[0].cpu()
        self.real_features = None
        self.enabled = True

    @torch.no_grad()
    def compute(self, nets: dict) -> dict:
        from engine.img2img.metrics import to_evaluator
        from engine.metrics.evaluator import embed, load_evaluator
        from engine.metrics.images import frechet_distance
        model, labels = load_evaluator(), self.inputs["labels"]
        if self.real_features is None:
            self.real_features = embed(model, self.real)[0].numpy()
        chunks = [self.algorithm.draw({k: v[i:i + 250] for k, v in self.inputs.items()}, nets)[1]
                  for i in range(0, len(labels), 250)]
        coarse = to_evaluator(torch.cat([c[0][1] for c in chunks]))
        final = torch.cat([c[1][1] for c in chunks])
        f1, logits1 = embed(model, coarse)
        f2, logits2 = embed(model, final)
        return {"text_accuracy": float((logits2.argmax(1) == labels).float().mean()),
                "text_accuracy_stage1": float((logits1.argmax(1) == labels).float().mean()),
                "frechet_stage1": float(frechet_distance(f2.numpy(), f1.numpy())),
                "frechet_stage1_real": float(frechet_distance(self.real_features, f1.numpy()))}

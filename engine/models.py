"""Generators and discriminators: MLP and DCGAN bodies, label conditioning, AC-GAN and InfoGAN heads,
the K+1-class head of the semi-supervised GAN, minibatch discrimination, spectral normalisation,
the autoencoder discriminator of EBGAN and BEGAN, and the VAE's encoder.

A generator takes noise z, optional InfoGAN codes and optional labels, and returns a
batch shaped like the data. A discriminator returns a DOut: the real/fake logit (or
critic value, or energy), the trunk's features, and the optional class and Q heads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from engine.config import Config, resolution_steps, start_side
from engine.losses import get_loss


class DOut(NamedTuple):
    logit: torch.Tensor  # (N,)
    features: torch.Tensor  # (N, F)
    class_logits: torch.Tensor | None = None  # AC-GAN head
    q: torch.Tensor | None = None  # InfoGAN head: categorical logits, then means, then log-variances


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "elu": nn.ELU()}[name]


def _embed_dim(num_classes: int) -> int:
    return min(50, 4 * num_classes)


def code_dim(config: Config) -> int:
    return sum(config.model.info_categorical) + config.model.info_continuous


VBN_REFERENCE = 64  # size of virtual batch norm's reference batch


def draw_noise(n: int, dim: int, distribution: str, generator: torch.Generator) -> torch.Tensor:
    """n noise vectors from N(0, I) or U[−1, 1]^dim, on the generator's device."""
    if distribution == "normal":
        return torch.randn(n, dim, generator=generator, device=generator.device)
    return torch.rand(n, dim, generator=generator, device=generator.device) * 2 - 1


class VirtualBatchNorm2d(nn.Module):
    """Salimans et al. 2016: normalise each sample with the statistics of a fixed reference batch
    together with that sample alone. The first call in a forward pass is the reference batch."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.reference: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reference is None:
            mean, square = x.mean((0, 2, 3), keepdim=True), (x * x).mean((0, 2, 3), keepdim=True)
            self.reference = (mean, square, x.shape[0])
        else:
            ref_mean, ref_square, n = self.reference
            share = 1.0 / (n + 1)
            mean = share * x.mean((2, 3), keepdim=True) + (1 - share) * ref_mean
            square = share * (x * x).mean((2, 3), keepdim=True) + (1 - share) * ref_square
        var = (square - mean * mean).clamp_min(0.0)
        out = (x - mean) * torch.rsqrt(var + self.eps)
        return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _upsample(kind: str, width: int, out: int, bias: bool) -> list[nn.Module]:
    """Double the side: a 4×4 transposed convolution of stride 2 (DCGAN), or nearest-neighbour
    upsampling then a 3×3 convolution (BEGAN's; no checkerboard)."""
    if kind == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, out, 3, 1, 1, bias=bias)]
    return [nn.ConvTranspose2d(width, out, 4, 2, 1, bias=bias)]


def _up_body(config: Config, in_dim: int, data_shape: tuple, act, norm=None, linear_out=False,
             fc: int = 0) -> nn.Sequential:
    """From a vector to a batch shaped like the data: G's body, and the autoencoder D's decoder.
    MLP: hidden layers of `act`; DCGAN: a linear map to the smallest feature map, then transposed
    convolutions that double the side, each followed by `norm` (if any) and `act`. Images end in
    a tanh unless linear_out. fc > 0: a hidden fully-connected layer of that width first (dcgan)."""
    m = config.model
    if m.architecture == "mlp":
        layers, width = [], in_dim
        for _ in range(m.depth):
            layers += [nn.Linear(width, m.hidden_width), act()]
            width = m.hidden_width
        layers.append(nn.Linear(width, math.prod(data_shape)))
        if len(data_shape) == 3 and not linear_out:
            layers.append(nn.Tanh())
        return nn.Sequential(*layers)
    channels, size = data_shape[0], data_shape[1]
    side, ups = start_side(size), resolution_steps(size)
    width = m.base_channels * 2 ** (ups - 1)
    bias = norm is None  # a norm layer brings its own shift
    layers = []
    if fc:  # InfoGAN's G: a fully-connected layer before the projection to feature maps
        layers += [nn.Linear(in_dim, fc, bias=bias), *([nn.BatchNorm1d(fc)] if norm is not None else []), act()]
        in_dim = fc
    layers += [nn.Linear(in_dim, width * side * side, bias=bias), nn.Unflatten(1, (width, side, side))]
    for i in range(ups):
        if norm is not None:
            layers.append(norm(width))
        layers.append(act())
        if i < ups - 1:
            layers += _upsample(m.upsample, width, width // 2, bias)
            width //= 2
    layers += _upsample(m.upsample, width, channels, True)
    if not linear_out:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, config: Config, data_shape: tuple, num_classes: int, conditioned: bool | None = None):
        """conditioned: embed the label (None: as model.conditional / auxiliary_classifier say)."""
        super().__init__()
        m = config.model
        self.data_shape = tuple(data_shape)
        self.noise_dim = m.noise_dim
        self.code_dim = code_dim(config)
        if conditioned is None:
            conditioned = m.conditional or m.auxiliary_classifier
        conditioned = conditioned and num_classes > 0
        self.embed = nn.Embedding(num_classes, _embed_dim(num_classes)) if conditioned else None
        in_dim = m.noise_dim + self.code_dim + (self.embed.embedding_dim if self.embed is not None else 0)
        if m.architecture == "mlp":
            self.body = _up_body(config, in_dim, self.data_shape, lambda: _act(m.activation))
        elif _decoder_generator(config):  # BEGAN: G is its D's decoder in shape, with PyTorch's init
            self.body = _up_body(config, in_dim, self.data_shape, nn.ELU, linear_out=True, fc=m.g_fc)
        else:
            norm = VirtualBatchNorm2d if config.tricks.virtual_batchnorm else nn.BatchNorm2d
            self.body = _up_body(config, in_dim, self.data_shape, nn.ReLU, norm, fc=m.g_fc)
            self.apply(_dcgan_init)
        self.virtual_batchnorm = config.tricks.virtual_batchnorm and m.architecture == "dcgan"
        if self.virtual_batchnorm:  # a fixed reference batch of noise, kept with the weights
            rng = torch.Generator().manual_seed(config.train.seed + 7)
            reference = draw_noise(VBN_REFERENCE, in_dim, m.noise_distribution, rng)
            self.register_buffer("vbn_reference", reference)

    def forward(self, z: torch.Tensor, codes: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        parts = [z]
        if self.code_dim:
            parts.append(codes)
        if self.embed is not None:
            parts.append(self.embed(labels))
        inputs = torch.cat(parts, dim=1) if len(parts) > 1 else z
        if self.virtual_batchnorm:
            return self._forward_virtual(inputs)
        x = self.body(inputs)
        return x.view(x.shape[0], *self.data_shape)

    def _forward_virtual(self, inputs: torch.Tensor) -> torch.Tensor:
        """Virtual batch norm: a pass over the reference batch fixes each layer's statistics, then
        every sample is normalised with them (and its own), never with its batch-mates'."""
        norms = [m for m in self.body if isinstance(m, VirtualBatchNorm2d)]
        try:
            self.body(self.vbn_reference)
            x = self.body(inputs)
        finally:
            for norm in norms:
                norm.reference = None
        return x.view(x.shape[0], *self.data_shape)


def _decoder_generator(config: Config) -> bool:
    """Berthelot et al. 2017: G has the architecture of D's decoder (no batch norm, ELU) and neither
    ends in a tanh. With a tanh, reconstructing the background (−1) needs a saturated unit whose
    L1 gradient vanishes; BEGAN's fakes then never cost under γ L(x), and k_t stays at 0."""
    return config.model.architecture == "dcgan" and get_loss(config.loss.name).decoder_generator


def _d_trunk(config: Config, data_shape: tuple) -> tuple[nn.Sequential, int]:
    """D's body, from the input to the flattened features; each hidden layer ends in a LeakyReLU."""
    m = config.model
    if m.architecture == "mlp":
        layers, width = [nn.Flatten()], math.prod(data_shape)
        for _ in range(m.depth):
            layers += [nn.Linear(width, m.hidden_width), nn.LeakyReLU(0.2)]
            width = m.hidden_width
        return nn.Sequential(*layers), width
    channels, size = data_shape[0], data_shape[1]
    side, downs = start_side(size), resolution_steps(size)
    width = m.base_channels
    layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(downs - 1):
        layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=not m.d_batchnorm))
        if m.d_batchnorm:
            layers.append(nn.BatchNorm2d(width * 2))
        layers.append(nn.LeakyReLU(0.2))
        width *= 2
    layers.append(nn.Flatten())
    features = width * side * side
    if m.d_fc:  # InfoGAN's D: a fully-connected layer after the convolutions
        layers.append(nn.Linear(features, m.d_fc, bias=not m.d_batchnorm))
        if m.d_batchnorm:
            layers.append(nn.BatchNorm1d(m.d_fc))
        layers.append(nn.LeakyReLU(0.2))
        features = m.d_fc
    return nn.Sequential(*layers), features


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: o(x_i)_b = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁), M = f T, appended to f."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)
        distance = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (N, N, B)
        closeness = torch.exp(-distance).sum(1) - 1.0  # leave out each sample's match with itself
        self.last_closeness = closeness.detach().mean()  # per kernel, of the batch just seen
        return torch.cat([f, closeness], 1)


class Discriminator(nn.Module):
    """encoder_dim > 0 makes it an encoder: its head outputs that many numbers (the VAE's q(z|x)).
    projection: a label projection (None: as model.conditional says)."""

    def __init__(self, config: Config, data_shape: tuple, num_classes: int, encoder_dim: int = 0,
                 projection: bool | None = None):
        super().__init__()
        m, t = config.model, config.tricks
        self.data_shape = tuple(data_shape)
        self.trunk, features = _d_trunk(config, self.data_shape)
        self.minibatch = None
        head_in = features
        if t.minibatch_features:
            self.minibatch = MinibatchDiscrimination(features, t.minibatch_features, t.minibatch_kernel_dim)
            head_in = features + t.minibatch_features
        self.semi_supervised = m.semi_supervised and num_classes > 0
        self.encoder = encoder_dim > 0
        if self.encoder:
            out = encoder_dim
        else:
            out = 0 if self.semi_supervised else 1
        self.head = nn.Linear(head_in, out) if out else None
        projection = m.conditional if projection is None else projection
        self.projection = nn.Embedding(num_classes, head_in) if projection and num_classes else None
        wants_classes = (m.auxiliary_classifier or self.semi_supervised) and num_classes
        self.class_head = nn.Linear(head_in, num_classes) if wants_classes else None
        q_out = code_dim(config) + (m.info_continuous if m.info_learned_variance else 0)  # means (and log σ²)
        self.q_head = nn.Sequential(nn.Linear(head_in, 128), nn.LeakyReLU(0.2), nn.Linear(128, q_out)) \
            if q_out else None
        if m.architecture == "dcgan":
            self.apply(_dcgan_init)
        if m.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        features = self.trunk(x)
        h = self.minibatch(features) if self.minibatch is not None else features
        class_logits = self.class_head(h) if self.class_head is not None else None
        if self.encoder:
            logit = self.head(h)
        elif self.semi_supervised:
            # K real classes plus a fake class whose logit is fixed at 0: log D(x)/(1 − D(x)) = logsumexp
            logit = torch.logsumexp(class_logits, 1)
        else:
            logit = self.head(h).squeeze(1)
        if self.projection is not None:
            logit = logit + (self.projection(labels) * h).sum(1)
        return DOut(logit, features, class_logits, self.q_head(h) if self.q_head is not None else None)

    def hidden(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """The flattened output of hidden layer `layer` (1 = first; 0 = the last, i.e. the features)."""
        if layer == 0:
            return self.trunk(x)
        seen = 0
        for module in self.trunk:
            x = module(x)
            if isinstance(module, nn.LeakyReLU):
                seen += 1
                if seen == layer:
                    return x.flatten(1)
        return x.flatten(1)


class AutoencoderDiscriminator(nn.Module):
    """EBGAN / BEGAN: D(x) = the reconstruction error of an autoencoder, per sample.

    The encoder is the usual D trunk plus a linear map to a code; the decoder mirrors the
    generator. Energies are mean squared errors (EBGAN) or mean absolute errors (BEGAN)."""

    def __init__(self, config: Config, data_shape: tuple, num_classes: int):
        super().__init__()
        m = config.model
        self.data_shape = tuple(data_shape)
        self.norm = get_loss(config.loss.name).energy
        self.trunk, features = _d_trunk(config, self.data_shape)
        self.code = nn.Linear(features, m.ae_code_dim)
        self.decoder = _up_body(config, m.ae_code_dim, self.data_shape, nn.ELU,
                                linear_out=_decoder_generator(config))
        # PyTorch's default init, not DCGAN's N(0, 0.02): without batch norm, weights that small
        # leave the code nearly constant and the autoencoder stuck on the mean image.
        if m.spectral_norm:
            apply_spectral_norm(self)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.code(self.trunk(x))
        return self.decoder(code).view(x.shape[0], *self.data_shape), code

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        recon, code = self.reconstruct(x)
        error = (recon - x).flatten(1)
        energy = error.pow(2).mean(1) if self.norm == "mse" else error.abs().mean(1)
        return DOut(energy, code)

    def hidden(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """As Discriminator.hidden, except that layer 0 is the code (this D's features)."""
        if layer == 0:
            return self.code(self.trunk(x))
        return Discriminator.hidden(self, x, layer)


def apply_spectral_norm(module: nn.Module) -> None:
    """Divide the weight of every linear and convolution layer by its largest singular value."""
    from torch.nn.utils.parametrizations import spectral_norm
    for child in list(module.modules()):
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            spectral_norm(child)


@torch.no_grad()
def layer_norms(module: nn.Module) -> list[float]:
    """Each linear and convolution layer's largest singular value (its weight reshaped to a matrix),
    read without touching spectral norm's power-iteration state."""
    was_training = module.training
    module.eval()
    try:
        norms = []
        for child in module.modules():
            if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                w = child.weight
                if isinstance(child, nn.ConvTranspose2d):
                    w = w.transpose(0, 1)
                norms.append(float(torch.linalg.matrix_norm(w.flatten(1).float(), ord=2)))
        return norms
    finally:
        module.train(was_training)


def lipschitz_bound(module: nn.Module) -> float:
    """The product of the layers' norms: an upper bound on D's Lipschitz constant when the
    activations are 1-Lipschitz and there is no batch norm."""
    return math.prod(layer_norms(module))


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, VirtualBatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(config: Config, data_shape: tuple, num_classes: int) -> tuple[Generator, nn.Module]:
    d_class = AutoencoderDiscriminator if get_loss(config.loss.name).energy else Discriminator
    return Generator(config, data_shape, num_classes), d_class(config, data_shape, num_classes)

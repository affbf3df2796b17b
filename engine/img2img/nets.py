"""The networks of the image-to-image families, written from the papers' descriptions and scaled to small images.

- UNet (pix2pix, Isola et al.): an encoder of 4x4 stride-2 convolutions (LeakyReLU 0.2, batch norm but on the
  first and innermost) down to 1x1, a decoder of 4x4 stride-2 transposed convolutions (ReLU, batch norm, dropout
  after the innermost `dropout_layers`, its masks drawn from the run's generator), each decoder layer fed the mirrored encoder layer's output; tanh out.
- ResnetGenerator (CycleGAN, Zhu et al.): c7s1-k, two stride-2 downs, `blocks` residual blocks, two ups, c7s1;
  instance norm, reflection padding, tanh out.
- PatchDiscriminator (pix2pix/CycleGAN): C64-C128-...(stride 2) then two stride-1 4x4 layers; one logit per
  patch. With `layers` stride-2 layers the patch (receptive field) is 16 px for 1, 34 for 2, 70 for 3.
- SRResNet (SRGAN, Ledig et al.): 9x9 conv + PReLU, residual blocks (conv-BN-PReLU-conv-BN), conv-BN and the long
  skip, a (conv, pixel shuffle x2, PReLU) per factor 2 of up-sampling, 9x9 conv; tanh out (images in [−1, 1]).
- SRDiscriminator: 3x3 conv blocks doubling channels every second layer with stride 2, LeakyReLU 0.2, BN, then
  dense layers to one logit.
- FeatureDecoder (DTN's g): a feature vector to an image by transposed convolutions (DCGAN style).
- ClassDiscriminator (DTN's ternary D): strided convolutions to `outputs` logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for norm scales (pix2pix / CycleGAN)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class UNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, size: int, filters: int = 32, dropout: float = 0.5,
                 dropout_layers: int = 3):
        super().__init__()
        depth = int(math.log2(size))
        if 2 ** depth != size:
            raise ValueError(f"a U-Net needs a power-of-two image size, not {size}")
        widths = [filters * min(2 ** i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        previous = in_channels
        for i, width in enumerate(widths):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
            previous = width
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # the innermost first
            inner = widths[i] if i == depth - 1 else widths[i] * 2  # skip concatenation doubles the channels
            out = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(inner, out, 4, 2, 1, bias=i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(out))
            self.up.append(nn.Sequential(*layers))
        self.dropout = dropout
        self.dropout_layers = min(dropout_layers, depth - 1)  # the innermost decoder layers: pix2pix's noise
        init_weights(self)

    def forward(self, x: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """In training, the dropout masks come from rng (the run's generator, so resume is exact)."""
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for i, layer in enumerate(self.up):
            if i:
                x = torch.cat([x, skips.pop()], 1)
            x = layer(x)
            if self.training and i < self.dropout_layers and self.dropout > 0:
                keep = torch.rand(x.shape, generator=rng, device=x.device) >= self.dropout
                x = x * keep / (1.0 - self.dropout)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width, affine=True),
                                  nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3),
                                  nn.InstanceNorm2d(width, affine=True))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, filters: int = 32, blocks: int = 6):
        super().__init__()
        f = filters
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, f, 7), nn.InstanceNorm2d(f, affine=True), nn.ReLU()]
        for mult in (1, 2):
            layers += [nn.Conv2d(f * mult, f * mult * 2, 3, 2, 1), nn.InstanceNorm2d(f * mult * 2, affine=True),
                       nn.ReLU()]
        layers += [ResidualBlock(f * 4) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(f * mult, f * mult // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(f * mult // 2, affine=True), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, filters: int = 32, layers: int = 2, norm: str = "batch"):
        super().__init__()
        make_norm = (lambda c: nn.BatchNorm2d(c)) if norm == "batch" else (lambda c: nn.InstanceNorm2d(c, affine=True))
        seq = [nn.Conv2d(in_channels, filters, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = filters
        for i in range(1, layers + 1):
            out = filters * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(width, out, 4, stride, 1, bias=False), make_norm(out), nn.LeakyReLU(0.2)]
            width = out
        seq.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        init_weights(self)

    def forward(self, x):
        return self.net(x)


class SRBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, channels: int, scale: int = 4, filters: int = 32, blocks: int = 4):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(channels, filters, 9, 1, 4), nn.PReLU(filters))
        self.blocks = nn.Sequential(*[SRBlock(filters) for _ in range(blocks)],
                                    nn.Conv2d(filters, filters, 3, 1, 1), nn.BatchNorm2d(filters))
        ups = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(filters, filters * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(filters)]
        self.tail = nn.Sequential(*ups, nn.Conv2d(filters, channels, 9, 1, 4), nn.Tanh())

    def forward(self, x):
        h = self.head(x)
        return self.tail(h + self.blocks(h))


class SRDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int, filters: int = 32, dense: int = 256):
        super().__init__()
        seq, width, side = [nn.Conv2d(channels, filters, 3, 1, 1), nn.LeakyReLU(0.2)], filters, size
        plan = [(filters, 2), (filters * 2, 1), (filters * 2, 2), (filters * 4, 1), (filters * 4, 2)]
        for out, stride in plan:
            seq += [nn.Conv2d(width, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width, side = out, (side + 1) // stride if stride == 2 else side
        seq += [nn.Flatten(), nn.Linear(width * side * side, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x):
        return self.net(x)


class FeatureDecoder(nn.Module):
    def __init__(self, features: int, channels: int, size: int, filters: int = 32):
        super().__init__()
        ups = int(math.log2(size // 4))
        width = filters * 2 ** (ups - 1) if ups else filters
        self.start = nn.Sequential(nn.Linear(features, width * 16), nn.BatchNorm1d(width * 16), nn.ReLU())
        self.width = width
        seq = []
        for i in range(ups):
            out = channels if i == ups - 1 else width // 2
            seq.append(nn.ConvTranspose2d(width, out, 4, 2, 1))
            seq += [nn.Tanh()] if i == ups - 1 else [nn.BatchNorm2d(out), nn.ReLU()]
            width = out
        self.net = nn.Sequential(*seq)
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(self.start(f).view(-1, self.width, 4, 4))


class ClassDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int, outputs: int = 3, filters: int = 32):
        super().__init__()
        seq, width, side = [], channels, size
        for i in range(int(math.log2(size // 4))):
            out = filters * 2 ** i
            seq += [nn.Conv2d(width, out, 4, 2, 1, bias=i == 0)]
            seq += [nn.LeakyReLU(0.2)] if i == 0 else [nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width, side = out, side // 2
        seq += [nn.Flatten(), nn.Linear(width * side * side, outputs)]
        self.net = nn.Sequential(*seq)
        init_weights(self)

    def forward(self, x):
        return self.net(x)

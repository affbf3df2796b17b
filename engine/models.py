"""Generators and discriminators: MLP and DCGAN bodies, label conditioning, AC-GAN and InfoGAN heads.

A generator takes noise z, optional InfoGAN codes and optional labels, and returns a
batch shaped like the data. A discriminator returns a DOut: the real/fake logit (or
critic value), the trunk's features, and the optional class and Q heads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from engine.config import Config


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
    return config.num_info_categorical + config.model.info_continuous


def start_side(image_size: int) -> int:
    return 7 if image_size == 28 else 4


class Generator(nn.Module):
    def __init__(self, config: Config, data_shape: tuple, num_classes: int):
        super().__init__()
        m = config.model
        self.data_shape = tuple(data_shape)
        self.noise_dim = m.noise_dim
        self.code_dim = code_dim(config)
        conditioned = (m.conditional or m.auxiliary_classifier) and num_classes > 0
        self.embed = nn.Embedding(num_classes, _embed_dim(num_classes)) if conditioned else None
        in_dim = m.noise_dim + self.code_dim + (self.embed.embedding_dim if self.embed is not None else 0)
        images = len(self.data_shape) == 3
        if m.architecture == "mlp":
            layers, width = [], in_dim
            for _ in range(m.depth):
                layers += [nn.Linear(width, m.hidden_width), _act(m.activation)]
                width = m.hidden_width
            layers.append(nn.Linear(width, math.prod(self.data_shape)))
            if images:
                layers.append(nn.Tanh())
            self.body = nn.Sequential(*layers)
        else:
            channels, size = self.data_shape[0], self.data_shape[1]
            side = start_side(size)
            ups = int(round(math.log2(size / side)))
            width = m.base_channels * 2 ** (ups - 1)
            layers = [nn.Linear(in_dim, width * side * side, bias=False), nn.Unflatten(1, (width, side, side)),
                      nn.BatchNorm2d(width), nn.ReLU()]
            for _ in range(ups - 1):
                layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                           nn.ReLU()]
                width //= 2
            layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
            self.body = nn.Sequential(*layers)
            self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, codes: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        parts = [z]
        if self.code_dim:
            parts.append(codes)
        if self.embed is not None:
            parts.append(self.embed(labels))
        x = self.body(torch.cat(parts, dim=1) if len(parts) > 1 else z)
        return x.view(x.shape[0], *self.data_shape)


class Discriminator(nn.Module):
    def __init__(self, config: Config, data_shape: tuple, num_classes: int):
        super().__init__()
        m = config.model
        self.data_shape = tuple(data_shape)
        if m.architecture == "mlp":
            layers, width = [nn.Flatten()], math.prod(self.data_shape)
            for _ in range(m.depth):
                layers += [nn.Linear(width, m.hidden_width), nn.LeakyReLU(0.2)]
                width = m.hidden_width
            self.trunk = nn.Sequential(*layers)
            features = width
        else:
            channels, size = self.data_shape[0], self.data_shape[1]
            side = start_side(size)
            downs = int(round(math.log2(size / side)))
            width = m.base_channels
            layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
            for _ in range(downs - 1):
                layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=not m.d_batchnorm))
                if m.d_batchnorm:
                    layers.append(nn.BatchNorm2d(width * 2))
                layers.append(nn.LeakyReLU(0.2))
                width *= 2
            layers.append(nn.Flatten())
            self.trunk = nn.Sequential(*layers)
            features = width * side * side
        self.head = nn.Linear(features, 1)
        self.projection = nn.Embedding(num_classes, features) if m.conditional and num_classes else None
        self.class_head = nn.Linear(features, num_classes) if m.auxiliary_classifier and num_classes else None
        q_out = code_dim(config) + m.info_continuous
        self.q_head = nn.Sequential(nn.Linear(features, 128), nn.LeakyReLU(0.2), nn.Linear(128, q_out)) \
            if q_out else None
        if m.architecture == "dcgan":
            self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        features = self.trunk(x)
        logit = self.head(features).squeeze(1)
        if self.projection is not None:
            logit = logit + (self.projection(labels) * features).sum(1)
        return DOut(
            logit,
            features,
            self.class_head(features) if self.class_head is not None else None,
            self.q_head(features) if self.q_head is not None else None,
        )


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(config: Config, data_shape: tuple, num_classes: int) -> tuple[Generator, Discriminator]:
    return Generator(config, data_shape, num_classes), Discriminator(config, data_shape, num_classes)

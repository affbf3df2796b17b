"""SEGAN's networks (Pascual et al. 2017), widths and depth settable so a CPU can train them.

G is a fully convolutional encoder-decoder on the raw waveform: strided 1-D convolutions (kernel 31, stride 2,
PReLU) halve the length at each layer down to a bottleneck, where a latent z of the same shape is stacked on the
code; transposed convolutions mirror the encoder back up, each taking the matching encoder layer's output as a
skip connection (concatenated), and a tanh gives the enhanced waveform. With zero_mean, each window's mean is
taken off the output (not in the paper): the target, pre-emphasised speech, has none, and a small offset there
becomes an offset 20 times larger once de-emphasised, the largest error of an early G. The paper's G has 11 layers (16384
samples -> 8 x 1024); the CPU preset uses 8 on 4096 samples.

D is the encoder's twin on two channels, (noisy, clean) or (noisy, enhanced), with batch norm and LeakyReLU(0.3)
(the paper uses virtual batch norm), a 1 x 1 convolution to one channel and a linear layer to one score.
"""

from __future__ import annotations

import torch
from torch import nn


def _pad(kernel: int) -> int:
    return (kernel - 1) // 2


class SeganGenerator(nn.Module):
    def __init__(self, channels: tuple, kernel: int = 31, latent: bool = True, zero_mean: bool = False):
        super().__init__()
        self.latent = latent
        self.zero_mean = zero_mean
        self.channels = tuple(channels)
        pad = _pad(kernel)
        widths = (1,) + self.channels
        self.encoder = nn.ModuleList(
            nn.Sequential(nn.Conv1d(widths[i], widths[i + 1], kernel, 2, pad), nn.PReLU(widths[i + 1]))
            for i in range(len(self.channels)))
        decoder = []
        for i in range(len(self.channels) - 1, -1, -1):
            # the deepest layer takes the code and z; the others their predecessor's output and a skip
            c_in = widths[i + 1] * 2 if (i == len(self.channels) - 1 and latent) or i < len(self.channels) - 1 \
                else widths[i + 1]
            c_out = widths[i] if i > 0 else 1
            # (L - 1) * 2 - 2 * pad + kernel + output_padding = 2 L
            decoder.append(nn.ConvTranspose1d(c_in, c_out, kernel, 2, pad, output_padding=kernel % 2))
        self.decoder = nn.ModuleList(decoder)
        self.decoder_act = nn.ModuleList(nn.PReLU(widths[i]) for i in range(len(self.channels) - 1, 0, -1))

    def code_shape(self, length: int) -> tuple:
        return (self.channels[-1], length >> len(self.channels))

    def forward(self, noisy: torch.Tensor, z: torch.Tensor | None = None, rng: torch.Generator | None = None):
        """noisy: B x 1 x T (T a multiple of 2 ** layers); z: B x C x T / 2 ** layers, drawn from rng when
        not given (the paper draws a new z each time)."""
        skips = []
        h = noisy
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)
        if self.latent:
            if z is None:
                z = torch.randn(h.shape, generator=rng, device=h.device, dtype=h.dtype)
            h = torch.cat([h, z], 1)
        skips.pop()
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = self.decoder_act[i](h)
                h = torch.cat([h, skips.pop()], 1)
        out = torch.tanh(h)
        # pre-emphasised speech has no DC, and de-emphasis multiplies any by 1 / (1 - 0.95) = 20
        return out - out.mean(-1, keepdim=True) if self.zero_mean else out


class SeganDiscriminator(nn.Module):
    def __init__(self, channels: tuple, kernel: int = 31, length: int = 4096):
        super().__init__()
        pad = _pad(kernel)
        widths = (2,) + tuple(channels)
        layers = []
        for i in range(len(channels)):
            layers += [nn.Conv1d(widths[i], widths[i + 1], kernel, 2, pad)]
            if i > 0:
                layers += [nn.BatchNorm1d(widths[i + 1])]
            layers += [nn.LeakyReLU(0.3)]
        layers += [nn.Conv1d(widths[-1], 1, 1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(length >> len(channels), 1)

    def forward(self, noisy: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([noisy, speech], 1)).flatten(1)).squeeze(1)

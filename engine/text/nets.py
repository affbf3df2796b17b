"""The networks of SeqGAN (Yu et al. 2017): an LSTM generator that samples tokens one at a time, and
a CNN discriminator over whole sequences (several filter widths, max over time, highway, dropout).

Sampling takes its randomness as uniforms u (one per position): token t is the first index whose
cumulative probability exceeds u_t. The same u and weights always give the same sequence, so the
fixed preview inputs and a checkpoint's samples are reproducible, as for image models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pick(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Inverse-CDF sampling: one token per row of logits from one uniform per row."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1)).squeeze(1).clamp_(max=logits.shape[-1] - 1)


class SeqGenerator(nn.Module):
    """Embedding + one LSTM layer + a softmax over the vocabulary; token `vocab` is the start symbol."""

    def __init__(self, vocab: int, length: int, embed: int, hidden: int):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.embed = nn.Embedding(vocab + 1, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) for each position of x given the tokens before it."""
        start = torch.full((x.shape[0], 1), self.vocab, dtype=torch.long, device=x.device)
        hidden, _ = self.lstm(self.embed(torch.cat([start, x[:, :-1]], 1)))
        return self.out(hidden)

    def token_nll(self, x: torch.Tensor) -> torch.Tensor:
        """−log p(x_t | x_<t) for every position, (B, T)."""
        logits = self.logits(x)
        return F.cross_entropy(logits.flatten(0, 1).float(), x.flatten(), reduction="none").view(x.shape)

    def cell(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One LSTM step on the layer's own weights (gate order i, f, g, o, as nn.LSTM)."""
        lstm = self.lstm
        gates = F.linear(self.embed(tokens), lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(
            h, lstm.weight_hh_l0, lstm.bias_hh_l0)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def start_state(self, n: int, device) -> tuple:
        zeros = torch.zeros(n, self.lstm.hidden_size, device=device)
        return torch.full((n,), self.vocab, dtype=torch.long, device=device), zeros, zeros.clone()

    @torch.no_grad()
    def sample(self, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Sequences (B, T) drawn with uniforms u (B, T)."""
        tokens, h, c = self.start_state(u.shape[0], u.device)
        out = []
        for t in range(u.shape[1]):
            h, c = self.cell(tokens, h, c)
            tokens = pick(self.out(h), u[:, t], temperature)
            out.append(tokens)
        return torch.stack(out, 1)

    @torch.no_grad()
    def prefix_states(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The state after reading the start symbol and x_1..x_t, for t = 1..T−1: (T−1, B, H) each."""
        tokens, h, c = self.start_state(x.shape[0], x.device)
        hs, cs = [], []
        h, c = self.cell(tokens, h, c)
        for t in range(x.shape[1] - 1):
            h, c = self.cell(x[:, t], h, c)
            hs.append(h)
            cs.append(c)
        return torch.stack(hs), torch.stack(cs)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One Monte-Carlo completion of every proper prefix of x: (T−1, B, T) sequences whose row t−1
        keeps x_1..x_t and samples the rest (u: (T−1, B, T) uniforms). The prefixes are ordered by
        length, so at position p only the first (p−1)·B rows are still sampling and the loop runs T−1
        times, not T(T−1)/2."""
        b, length = x.shape
        hs, cs = self.prefix_states(x)
        h, c = hs.flatten(0, 1).clone(), cs.flatten(0, 1).clone()
        seqs = x.repeat(length - 1, 1)
        flat_u = u.flatten(0, 1)
        for p in range(1, length):  # position p (0-based) is sampled by the rows of prefixes shorter than p+1
            k = p * b
            tokens = pick(self.out(h[:k]), flat_u[:k, p])
            seqs[:k, p] = tokens
            if p < length - 1:
                h[:k], c[:k] = self.cell(tokens, h[:k], c[:k])
        return seqs.view(length - 1, b, length)


class Highway(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1 - t) * x


class SeqDiscriminator(nn.Module):
    """Embedding, one convolution per filter width (ReLU, max over time), highway, dropout, one logit
    for 'real'."""

    def __init__(self, vocab: int, embed: int, widths: list, filters: list, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.convs = nn.ModuleList(nn.Conv1d(embed, int(n), int(w)) for w, n in zip(widths, filters))
        total = int(sum(filters))
        self.highway = Highway(total)
        self.dropout = dropout
        self.head = nn.Linear(total, 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One logit per sequence; in training, dropout masks come from `generator` (the run's, so a
        resumed run draws the same masks)."""
        e = self.embed(x).transpose(1, 2)
        features = self.highway(torch.cat([F.relu(conv(e)).amax(2) for conv in self.convs], 1))
        if self.training and self.dropout > 0:
            keep = torch.rand(features.shape, generator=generator, device=features.device) >= self.dropout
            features = features * keep / (1.0 - self.dropout)
        return self.head(features).squeeze(1)


def normal_init_(module: nn.Module, std: float = 1.0, generator: torch.Generator | None = None) -> nn.Module:
    """Every parameter drawn from N(0, std²): how the SeqGAN paper makes its oracle."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return module

"""Class descriptions for text-to-image models (StackGAN): the default Fashion-MNIST descriptions, their check,
the word vocabulary built from them, and the text encoder that turns a description into its embedding φ_t.

Descriptions are a list with one list of texts per class, in class order (a preset's [stackgan] descriptions).
Texts are split into lower-case words (letters and digits, with inner hyphens and apostrophes kept: "t-shirt",
"women's"); the vocabulary is every word of every description, sorted, so the same descriptions always give the
same word indices and a checkpoint's config alone rebuilds it. Index 0 pads a batch of texts to one length.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from engine.settings import ConfigError

FASHION_DESCRIPTIONS = [
    ["a short sleeved t-shirt", "a plain cotton top with short sleeves", "a loose t-shirt with a round neck",
     "a light summer top"],
    ["a pair of long trousers", "straight trousers with two long legs", "a pair of dark jeans",
     "long loose pants for the legs"],
    ["a warm knitted pullover with long sleeves", "a thick wool sweater", "a jumper with long sleeves and a round neck",
     "a cosy pullover for winter"],
    ["a long summer dress", "a short dress without sleeves", "a dress with a flared skirt",
     "an evening dress for women"],
    ["a long winter coat with buttons", "a warm coat with a collar and long sleeves", "a heavy jacket with a zip",
     "a coat with pockets for the cold"],
    ["an open sandal with thin straps", "a flat summer sandal", "a sandal with a high heel and straps",
     "light open shoes for the beach"],
    ["a shirt with a collar and buttons", "a checked shirt with long sleeves", "a formal shirt buttoned down the front",
     "a casual shirt with short sleeves"],
    ["a low sneaker for running", "a sports shoe with laces", "a white trainer with a flat sole",
     "a canvas sneaker for the street"],
    ["a leather bag with a handle", "a handbag with a shoulder strap", "a large tote bag", "a small purse with a zip"],
    ["an ankle boot with a high heel", "a leather boot that covers the ankle", "a short winter boot with laces",
     "a heavy boot with a thick sole"],
]
CLASSES = 10  # every labelled image data set (Fashion-MNIST, MNIST, CIFAR-10) has ten
WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
STOP = {"a", "an", "the", "with", "and", "of", "for", "to", "that", "two", "down", "without"}


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def check_descriptions(value, key: str = "stackgan.descriptions", classes: int = CLASSES) -> None:
    """ConfigError, one sentence naming the key, unless value is one non-empty list of texts per class."""
    shape = (f"{key} must be a list of {classes} lists of text, one list of descriptions per class in class order, "
             f"like [[\"a short sleeved t-shirt\", ...], [\"a pair of long trousers\", ...], ...]")
    if not isinstance(value, list) or not all(isinstance(texts, list) for texts in value):
        raise ConfigError(f"{shape}.")
    if len(value) != classes:
        raise ConfigError(f"{key} describes {len(value)} classes, but the data has {classes}; give one list of "
                          f"descriptions per class, in class order.")
    for index, texts in enumerate(value):
        if not texts:
            raise ConfigError(f"{key} gives class {index} no description; give every class at least one.")
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(f"{key} holds {text!r} for class {index}, which is not text; write each "
                                  f"description in quotes.")
            if not words(text):
                raise ConfigError(f"{key} holds an empty description ({text!r}) for class {index}; remove it or write "
                                  f"a few words.")


class TextBank:
    """The descriptions as word indices: a table of every description (padded with 0), which class each
    describes, and where each class's descriptions start; built from the descriptions alone."""

    def __init__(self, descriptions: list, device="cpu"):
        self.texts = [text for texts in descriptions for text in texts]
        counts = Counter(w for text in self.texts for w in words(text))
        self.vocab = sorted(counts)
        self.index = {w: i + 1 for i, w in enumerate(self.vocab)}
        self.known = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in STOP]
        self.length = max(len(words(text)) for text in self.texts)
        device = torch.device(device if torch.device(device).type != "meta" else "cpu")
        self.tokens = self.pad([self.ids(text) for text in self.texts], self.length).to(device)
        self.class_of = torch.tensor([c for c, texts in enumerate(descriptions) for _ in texts], device=device)
        self.counts = torch.tensor([len(texts) for texts in descriptions], device=device)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.lookup = {tuple(words(text)): int(c) for text, c in zip(self.texts, self.class_of.tolist())}

    def ids(self, text: str) -> list[int]:
        return [self.index[w] for w in words(text) if w in self.index]

    @staticmethod
    def pad(rows: list, length: int) -> torch.Tensor:
        out = torch.zeros(len(rows), max([length] + [len(r) for r in rows]), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def draw(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """One description of each label's class, uniformly among that class's (their indices in the table)."""
        counts = self.counts.to(labels.device)[labels]
        local = (torch.rand(labels.shape, generator=rng, device=rng.device).to(labels.device) * counts).long()
        return self.offsets.to(labels.device)[labels] + torch.minimum(local, counts - 1)

    def encode(self, texts: list[str]) -> dict:
        """{"tokens": N x L word indices, "labels": the class a text is a description of, else −1}; a ConfigError
        (one sentence) for an empty text or one with no word of the vocabulary."""
        rows, labels = [], []
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(f"{text!r} is not a description; a description is text, such as {self.texts[-1]!r}.")
            if not words(text):
                raise ConfigError(f"{text!r} is an empty description; type a few words, such as {self.texts[-1]!r}.")
            ids = self.ids(text)
            if not ids:
                raise ConfigError(f"{text!r} has no word the text encoder knows; known words include: "
                                  f"{', '.join(self.known[:14])}.")
            rows.append(ids)
            labels.append(self.lookup.get(tuple(words(text)), -1))
        return {"tokens": self.pad(rows, self.length), "labels": torch.tensor(labels, dtype=torch.long)}


class TextEncoder(nn.Module):
    """φ_t: word embeddings averaged over the description's words, then a two-layer MLP; `classify` predicts
    the described class from φ_t (the auxiliary loss that teaches the encoder from the first step)."""

    def __init__(self, vocab_size: int, word_dim: int, text_dim: int, classes: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size + 1, word_dim, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(word_dim, text_dim), nn.LeakyReLU(0.2), nn.Linear(text_dim, text_dim))
        self.classify = nn.Linear(text_dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens > 0).unsqueeze(2).float()
        mean = (self.embed(tokens) * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.mlp(mean)


class ConditioningAugmentation(nn.Module):
    """StackGAN's CA: μ and log σ² of a Gaussian around the text embedding by one linear layer; the condition
    is c = μ + σ ⊙ ε with ε ~ N(0, I) given (so a draw is fixed by its inputs)."""

    def __init__(self, text_dim: int, cond_dim: int):
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * cond_dim)

    def forward(self, phi: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.fc(phi).chunk(2, dim=1)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


def kl_to_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) averaged over the batch and the condition's dimensions (as the authors' code)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def class_loss(encoder: TextEncoder, phi: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = encoder.classify(phi)
    return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()

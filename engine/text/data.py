"""Token sequences to learn: the SeqGAN paper's oracle (a random LSTM whose samples are the data and
whose likelihood scores G), or the lines of a plain-text file, tokenised by word or by character.

Text lines are cut into tokens, kept when they have 1 to seq_len tokens, and padded with <eos> to
seq_len. A fixed tenth (seqgan.held_out) is held out for held-out NLL and BLEU. The built-in text is
the system's fortune cookies (Debian package `fortunes`), split at their '%' lines.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch

from engine.data.images import DataError
from engine.text.nets import SeqGenerator, normal_init_

FORTUNES = Path("/usr/share/games/fortunes")
EOS, UNK = "<eos>", "<unk>"
MAX_UNKNOWN = 0.10  # a vocabulary that leaves more of the text unknown than this is refused
_WORD = re.compile(r"\w+|[^\w\s]")


class Vocabulary:
    """Tokens by index; `level` is 'word', 'char' or 'oracle' (tokens are their own numbers)."""

    def __init__(self, tokens: list[str], level: str):
        self.tokens = list(tokens)
        self.level = level
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def oracle(cls, size: int) -> "Vocabulary":
        return cls([str(i) for i in range(size)], "oracle")

    def split(self, line: str) -> list[str]:
        return _WORD.findall(line.lower()) if self.level == "word" else list(line)

    def encode(self, tokens: list[str], length: int) -> list[int]:
        unk = self.index.get(UNK, 0)
        ids = [self.index.get(t, unk) for t in tokens[:length]]
        return ids + [self.index.get(EOS, 0)] * (length - len(ids))

    def pieces(self, ids) -> list[str]:
        """The tokens of one sequence, up to (not including) the first <eos> of text."""
        out = []
        for i in ids:
            token = self.tokens[int(i)] if 0 <= int(i) < len(self.tokens) else UNK
            if token == EOS and self.level != "oracle":
                break
            out.append(token)
        return out

    @property
    def joiner(self) -> str:
        """What goes between tokens when a sequence is written out: nothing between characters, else a space."""
        return "" if self.level == "char" else " "

    def decode(self, ids) -> str:
        return self.joiner.join(self.pieces(ids))


class SequenceData:
    """Training sequences (N, T) of token ids, an optional held-out set, the vocabulary and, for the
    oracle benchmark, the oracle itself. `sample` draws a batch as image data sets do."""
    kind = "text"
    num_classes = 0
    class_names = ()

    def __init__(self, name: str, train: torch.Tensor, held_out: torch.Tensor | None, vocab: Vocabulary,
                 oracle: SeqGenerator | None = None):
        self.name = name
        self.train = train
        self.held_out = held_out
        self.vocab = vocab
        self.oracle = oracle
        self.shape = (train.shape[1],)

    def __len__(self) -> int:
        return len(self.train)

    def to(self, device):
        self.train = self.train.to(device)
        if self.held_out is not None:
            self.held_out = self.held_out.to(device)
        if self.oracle is not None:
            self.oracle.to(device)
        return self

    def sample(self, n: int, rng: torch.Generator):
        pick = torch.randint(len(self.train), (n,), generator=rng, device=rng.device)
        return self.train[pick.to(self.train.device)], None

    def checkpoint_fields(self) -> dict:
        return {"vocab": self.vocab.tokens, "level": self.vocab.level}


class TokenSpace:
    """Stands in for the data when only the vocabulary and the length are needed (sampling a checkpoint)."""
    kind = "text"
    num_classes = 0
    class_names = ()
    oracle = None
    held_out = None

    def __init__(self, tokens: list, level: str, length: int):
        self.vocab = Vocabulary(tokens, level)
        self.shape = (length,)
        self.name = level

    def to(self, device):
        return self

    def sample(self, n, rng):
        return torch.zeros(n, self.shape[0], dtype=torch.long, device=rng.device), None


def make_oracle(s, progress=None) -> SequenceData:
    """The oracle LSTM from seqgan.oracle_seed, and seqgan.oracle_samples sequences drawn from it."""
    gen = torch.Generator().manual_seed(s.oracle_seed)
    with torch.random.fork_rng(devices=[]):
        oracle = SeqGenerator(s.vocab_size, s.seq_len, s.oracle_embed_dim, s.oracle_hidden_dim)
    normal_init_(oracle, 1.0, gen).eval().requires_grad_(False)
    chunks, done = [], 0
    while done < s.oracle_samples:
        n = min(1000, s.oracle_samples - done)
        chunks.append(oracle.sample(torch.rand(n, s.seq_len, generator=gen)))
        done += n
        if progress:
            progress("Drawing the oracle's sequences", done, s.oracle_samples)
    return SequenceData("oracle", torch.cat(chunks), None, Vocabulary.oracle(s.vocab_size), oracle)


def read_lines(path: str) -> list[str]:
    """The non-blank lines of a text file, or a one-sentence DataError."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"seqgan.text_file = {path!r} is not a file; give a plain-text file with one sequence per line.")
    raw = p.read_bytes()
    if not raw.strip():
        raise DataError(f"seqgan.text_file = {path!r} is empty; give a plain-text file with one sequence per line.")
    try:
        if b"\0" in raw[:65536]:
            raise UnicodeDecodeError("utf-8", raw[:1], 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"seqgan.text_file = {path!r} is not a UTF-8 text file (it holds binary data); "
                        f"give a plain-text file with one sequence per line.") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def fortune_lines(folder: Path | None = None) -> list[str]:
    """Every fortune cookie of the system, one per line (their line breaks made spaces)."""
    folder = folder if folder is not None else FORTUNES
    files = [f for f in sorted(folder.glob("*")) if f.is_file() and not f.is_symlink()
             and f.suffix not in (".dat", ".u8")] if folder.is_dir() else []
    if not files:
        raise DataError("The built-in text is the fortune cookies of the Debian package 'fortunes', which is not "
                        "installed; install it (apt-get install fortunes) or set seqgan.text_file to a text file.")
    out = []
    for f in files:
        text = f.read_bytes().decode("utf-8", errors="replace")
        out += [" ".join(part.split()) for part in re.split(r"^%\s*$", text, flags=re.M) if part.strip()]
    return out


def make_text(s, warn=None) -> SequenceData:
    """Lines of seqgan.text_file (or the fortunes) as token sequences with a held-out split."""
    lines = read_lines(s.text_file) if s.text_file else fortune_lines()
    source = repr(s.text_file) if s.text_file else "the fortunes"
    vocab = Vocabulary([], s.tokens)
    split = [vocab.split(line) for line in lines]
    kept = [tokens for tokens in split if 1 <= len(tokens) <= s.seq_len]
    if not kept:
        shortest = min(len(t) for t in split)
        raise DataError(f"No line of {source} has 1 to seqgan.seq_len = {s.seq_len} {s.tokens}s (the shortest has "
                        f"{shortest}); raise seqgan.seq_len.")
    if len(kept) < len(split) and warn:
        warn(f"Skipped {len(split) - len(kept)} of {len(split)} lines of {source} longer than {s.seq_len} {s.tokens}s.")
    counts = Counter(t for tokens in kept for t in tokens)
    common = counts.most_common(s.vocab_size - 2)
    total = sum(counts.values())
    unknown = 1.0 - sum(n for _, n in common) / total
    if unknown > MAX_UNKNOWN:
        covered, needed = 0, 0
        for needed, (_, n) in enumerate(counts.most_common(), start=1):
            covered += n
            if covered >= (1.0 - MAX_UNKNOWN) * total:
                break
        raise DataError(f"{source} has {len(counts)} distinct {s.tokens}s and seqgan.vocab_size = {s.vocab_size} "
                        f"leaves {unknown:.0%} of its tokens unknown; raise seqgan.vocab_size to at least "
                        f"{needed + 2}{' or use seqgan.tokens = char' if s.tokens == 'word' else ''}.")
    vocab = Vocabulary([EOS, UNK] + [t for t, _ in common], s.tokens)
    ids = torch.tensor([vocab.encode(tokens, s.seq_len) for tokens in kept], dtype=torch.long)
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))
    n_held = int(round(len(ids) * s.held_out))
    if len(ids) - n_held < 1 or n_held < 1:
        raise DataError(f"{source} has {len(ids)} usable lines, too few to hold out seqgan.held_out = {s.held_out} "
                        f"of them and train on the rest; give more lines.")
    return SequenceData("text", ids[order[n_held:]], ids[order[:n_held]], vocab)

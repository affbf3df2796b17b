"""How good a sequence model is: NLL-oracle (the oracle's mean per-token negative log-likelihood of
G's samples, the SeqGAN paper's measure), held-out NLL (G's of unseen lines), and BLEU-2/3/4 of G's
samples against the held-out lines as references (sentence BLEU with every held-out line a
reference, averaged over samples, smoothed as Chen & Cherry's method 1, as sequence-GAN papers do).
"""

from __future__ import annotations

import copy
import math
from collections import Counter

import torch


def ngrams(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class Bleu:
    """BLEU against a fixed set of references; the references' n-gram maxima are counted once."""

    def __init__(self, references: list[list[str]], max_n: int = 4):
        self.max_n = max_n
        self.lengths = sorted({len(r) for r in references})
        self.max_counts = []
        for n in range(1, max_n + 1):
            best: dict = {}
            for ref in references:
                for gram, count in ngrams(ref, n).items():
                    if count > best.get(gram, 0):
                        best[gram] = count
            self.max_counts.append(best)

    def sentence(self, hypothesis: list[str], n: int) -> float:
        if not hypothesis:
            return 0.0
        logs = []
        for k in range(1, n + 1):
            grams = ngrams(hypothesis, k)
            total = sum(grams.values())
            if total == 0:
                logs.append(math.log(0.1 / max(1, len(hypothesis))))
                continue
            best = self.max_counts[k - 1]
            clipped = sum(min(count, best.get(gram, 0)) for gram, count in grams.items())
            logs.append(math.log(clipped / total if clipped else 0.1 / total))
        closest = min(self.lengths, key=lambda length: (abs(length - len(hypothesis)), length))
        brevity = 1.0 if len(hypothesis) >= closest else math.exp(1.0 - closest / len(hypothesis))
        return brevity * math.exp(sum(logs) / n)

    def corpus(self, hypotheses: list[list[str]]) -> dict:
        return {f"bleu{n}": sum(self.sentence(h, n) for h in hypotheses) / max(1, len(hypotheses))
                for n in range(2, self.max_n + 1)}


@torch.no_grad()
def mean_nll(model, sequences: torch.Tensor, mask_after_eos: int | None = None, chunk: int = 1000) -> float:
    """Mean per-token −log p under `model` (a SeqGenerator); with mask_after_eos, positions after a
    sequence's first <eos> (padding) are left out."""
    total, count = 0.0, 0
    for part in sequences.split(chunk):
        nll = model.token_nll(part)
        if mask_after_eos is not None:
            eos = (part == mask_after_eos).long()
            keep = (eos.cumsum(1) - eos) == 0  # up to and including the first <eos>
            total += float(nll[keep].sum())
            count += int(keep.sum())
        else:
            total += float(nll.sum())
            count += nll.numel()
    return total / max(1, count)


class SequenceQuality:
    """The live quality of a SeqGAN run: NLL-oracle for the oracle benchmark, held-out NLL and BLEU for
    text; for G and, when it runs, the MLE-only continuation (names ending in _mle)."""

    def __init__(self, algorithm, n: int, seed: int):
        self.algorithm = algorithm
        data = algorithm.dataset
        self.oracle = copy.deepcopy(data.oracle).cpu() if data.oracle is not None else None
        self.held_out = data.held_out.cpu() if data.held_out is not None else None
        self.vocab = data.vocab
        self.bleu = None
        length = data.shape[0]
        self.u = torch.rand(n, length, generator=torch.Generator().manual_seed(seed + 7))

    def _models(self) -> dict:
        nets = self.algorithm.nets
        models = {"": nets["generator"]}
        if "mle_generator" in nets and self.algorithm.baseline_running():
            models["_mle"] = nets["mle_generator"]
        return models

    @torch.no_grad()
    def snapshot(self):
        """Training thread: samples of each model, and CPU copies of them for held-out NLL."""
        out = {}
        for suffix, model in self._models().items():
            was = model.training
            model.eval()
            try:
                samples = model.sample(self.u.to(next(model.parameters()).device)).cpu()  # at temperature 1
            finally:
                model.train(was)
            out[suffix] = (samples, copy.deepcopy(model).cpu().eval() if self.held_out is not None else None)
        return out

    def compute(self, snap) -> dict:
        values = {}
        for suffix, (samples, model) in snap.items():
            if self.oracle is not None:
                values["nll_oracle" + suffix] = mean_nll(self.oracle, samples)
            if self.held_out is not None:
                eos = self.vocab.index.get("<eos>")
                values["nll_test" + suffix] = mean_nll(model, self.held_out, eos)
                if self.bleu is None:
                    self.bleu = Bleu([self.vocab.pieces(row) for row in self.held_out.tolist()])
                scores = self.bleu.corpus([self.vocab.pieces(row) for row in samples.tolist()])
                values.update({name + suffix: value for name, value in scores.items()})
        return values

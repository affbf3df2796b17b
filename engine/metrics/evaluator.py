"""A small Fashion-MNIST classifier whose penultimate layer is the feature space for image metrics.

Trained by `gan-studio evaluator` (or `make evaluator`); its weights ship in
engine/resources/evaluator_fashion_mnist.pt with a SHA-256 and the test accuracy beside them in
engine/resources/evaluator_fashion_mnist.json. This is NOT Inception: numbers measured with it are
comparable across GAN Studio runs, not with published FID.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from torch import nn

from engine.resources import resource_path

RESOURCES = resource_path()  # engine/resources: shipped inside the package
WEIGHTS = RESOURCES / "evaluator_fashion_mnist.pt"
CARD = RESOURCES / "evaluator_fashion_mnist.json"
FEATURES = 128


class EvaluatorError(RuntimeError):
    pass


class Evaluator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU())
        self.classify = nn.Linear(FEATURES, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [−1, 1], N x 1 x 28 x 28 -> (features N x 128, logits N x 10)."""
        features = self.body(x)
        return features, self.classify(features)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_cached: Evaluator | None = None


def load_evaluator() -> Evaluator:
    """The shipped evaluator, verified against its checksum."""
    global _cached
    if _cached is not None:
        return _cached
    if not WEIGHTS.is_file() or not CARD.is_file():
        raise EvaluatorError(f"The evaluator's weights are missing ({WEIGHTS}); run `make evaluator` to train them.")
    card = json.loads(CARD.read_text(encoding="utf-8"))
    if sha256(WEIGHTS) != card["sha256"]:
        raise EvaluatorError(f"{WEIGHTS.name} does not match its checksum; run `make evaluator` to rebuild it.")
    model = Evaluator()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    model.requires_grad_(False)
    _cached = model
    return model


@torch.no_grad()
def embed(model: Evaluator, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    feats, logits = [], []
    for chunk in images.split(batch):
        f, l = model(chunk.float())
        feats.append(f)
        logits.append(l)
    return torch.cat(feats), torch.cat(logits)


def train_evaluator(epochs: int = 3, seed: int = 0, out: Path = WEIGHTS, log=print) -> dict:
    """Train on the Fashion-MNIST training set, measure on its test set, write weights and card."""
    from engine.checkpoint import atomic_write
    from engine.data.images import load_idx_dataset
    torch.manual_seed(seed)
    images, labels = load_idx_dataset("fashion_mnist")
    test_images, test_labels = load_idx_dataset("fashion_mnist", train=False)
    to_float = lambda x: x.float().div(127.5).sub(1.0)
    model = Evaluator()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            x = to_float(images[idx])
            x = torch.where(torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5, x, x.flip(-1))
            loss = nn.functional.cross_entropy(model(x)[1], labels[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        log(f"epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.3f}")
    model.eval()
    _, logits = embed(model, to_float(test_images))
    accuracy = float((logits.argmax(1) == test_labels).float().mean())
    state = model.state_dict()
    atomic_write(out, lambda handle: torch.save(state, handle))
    card = {"data": "Fashion-MNIST", "test_accuracy": round(accuracy, 4), "epochs": epochs, "seed": seed,
            "train_seconds": round(time.perf_counter() - start, 1), "sha256": sha256(out),
            "architecture": "conv32-pool-conv64-pool-fc128-fc10", "features": FEATURES}
    atomic_write(Path(out).with_suffix(".json"), lambda handle: handle.write(json.dumps(card, indent=1).encode()))
    log(f"test accuracy {accuracy:.4f}; wrote {out}")
    return card

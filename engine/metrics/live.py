"""Quality measured while training: a snapshot on the training thread (a forward pass of the sampling
networks on a fixed input batch, plus whatever a family's own probes copy), the numbers on a separate
metrics thread, so training only pauses for the snapshot.

QualityProbe measures what the data kind allows (2-D mixtures, painter curves, Fashion-MNIST in the
evaluator's feature space) for any family; a family adds its own probes (engine.algorithms.base,
quality_probes): CodeAccuracy and ClassifierAccuracy below are the GAN family's.
"""

from __future__ import annotations

import copy

import torch

from engine.device import inputs_to


class QualityProbe:
    """source: a trainer or a sampler (config, dataset, device, algorithm, generate(inputs))."""

    def __init__(self, source, extras=()):
        c = source.config
        dataset = source.dataset
        self.n = c.train.metrics_samples
        self.kind = None
        self.problem = ""  # why a measurement the data allows is off
        name = getattr(dataset, "name", c.data.dataset)  # a family's own data set has its own name, or none
        if name in ("ring8", "grid25") and hasattr(dataset, "centres"):
            self.kind = "mixture"
            self.centres = dataset.centres.cpu().numpy()
            self.std = dataset.std
        elif name == "painter" and dataset.kind == "curves":
            self.kind = "painter"
        elif name == "fashion_mnist" and dataset.kind == "images" and tuple(dataset.shape) == (1, 28, 28):
            from engine.metrics.evaluator import EvaluatorError, load_evaluator
            try:
                load_evaluator()
                self.kind = "images"
            except EvaluatorError as exc:  # said once by the trainer: the plots must not go quiet unexplained
                self.problem = f"Fréchet distance, precision, recall and class KL are off for this run: {exc}"
        self.inputs = None  # a family whose data the generic measures do not know measures itself (extras)
        if self.kind is not None:
            inputs = source.algorithm.random_inputs(self.n, torch.Generator().manual_seed(c.train.seed + 5))
            self.inputs = inputs_to(inputs, source.device)
        self.real = self.real_features = None
        if self.kind == "images":
            self.real, _ = dataset.sample(self.n, torch.Generator(device=source.device).manual_seed(c.train.seed + 4))
        self.extras = list(extras)
        self.enabled = self.kind is not None or bool(self.extras)

    @torch.no_grad()
    def snapshot(self, source) -> dict:
        """Runs on the training thread: just the forward passes, copied to the CPU."""
        snap = {"fake": source.generate(self.inputs).float().cpu()} if self.kind is not None else {}
        snap["extras"] = [probe.snapshot(source) if getattr(probe, "takes_source", False) else probe.snapshot()
                          for probe in self.extras]
        return snap

    def compute(self, snap: dict) -> dict:
        """Runs on the metrics thread."""
        from engine.metrics.lowdim import mixture_quality, painter_quality
        values = {}
        fake = snap.get("fake")
        if self.kind == "mixture":
            q = mixture_quality(fake.numpy(), self.centres, self.std)
            values.update(modes_captured=float(q["modes_captured"]), high_quality=q["high_quality"])
        elif self.kind == "painter":
            q = painter_quality(fake.numpy())
            values.update(valid_share=q["valid_share"], a_distance=q["a_distance"])
        elif self.kind == "images":
            from engine.metrics.evaluator import embed, load_evaluator
            from engine.metrics.images import image_quality
            if self.real_features is None:  # the real batch is fixed: embed it once
                self.real_features = embed(load_evaluator(), self.real.cpu())[0]
            values.update(image_quality(self.real, fake, self.real_features))
        for probe, part in zip(self.extras, snap["extras"]):
            values.update(probe.compute(part))
        return values


class CodeAccuracy:
    """InfoGAN: how well D's Q head's first categorical code matches the classes of held-out images, under the
    best one-to-one matching of codes to classes. It reads the whole test split (10,000 images for
    Fashion-MNIST, as clustering accuracy is reported; a fixed 1,000 of them put one model 2 points below its
    score on 5,000), or n training images where the data set has no test split on disk. The snapshot is a copy
    of D; the reading runs on the metrics thread."""

    def __init__(self, discriminator, config, dataset, categories: int, n: int):
        from engine.data import make_test_set
        from engine.data.images import DataError
        self.discriminator = discriminator
        self.categories = categories
        try:
            test = make_test_set(config)
            self.real, self.labels = test.scaled(torch.arange(len(test))), test.labels
        except (DataError, OSError):
            real, labels = dataset.sample(n, torch.Generator(device=dataset.device).manual_seed(config.train.seed + 4))
            self.real, self.labels = real.cpu(), labels.cpu()

    def snapshot(self):
        return copy.deepcopy(self.discriminator).cpu().eval()

    @torch.no_grad()
    def compute(self, d) -> dict:
        from engine.metrics.matching import matched_accuracy
        code = torch.cat([d(chunk).q[:, : self.categories].argmax(1) for chunk in self.real.split(500)]).cpu().numpy()
        classes = max(self.categories, int(self.labels.max()) + 1)
        return {"code_accuracy": matched_accuracy(code, self.labels.numpy(), classes)}


class ClassifierAccuracy:
    """Test accuracy of classifiers (networks with a class head) on held-out images of the data set."""

    def __init__(self, models: dict, config, n: int):
        from engine.data import make_test_set
        self.models = models
        test = make_test_set(config)
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(config.train.seed + 6))[:n]
        self.images, self.labels = test.scaled(pick), test.labels[pick]

    def snapshot(self):
        return {name: copy.deepcopy(model).cpu().eval() for name, model in self.models.items()}

    @torch.no_grad()
    def compute(self, copies) -> dict:
        values = {}
        for name, model in copies.items():
            guesses = torch.cat([model(chunk).class_logits.argmax(1) for chunk in self.images.split(500)])
            values[name] = float((guesses == self.labels).float().mean())
        return values

"""Quality measured while training: the trainer takes a snapshot on its own thread (a forward
pass of G on a fixed noise batch, for InfoGAN one of D's Q head on fixed real images, for the
semi-supervised GAN a copy of D and of the labels-only baseline), and the numbers are computed
on a separate metrics thread, so training only pauses for the snapshot."""

from __future__ import annotations

import copy

import numpy as np
import torch

from engine.data import synthetic


class QualityProbe:
    def __init__(self, trainer):
        c = trainer.config
        self.n = c.train.metrics_samples
        self.kind = None
        name = c.data.dataset
        if name in ("ring8", "grid25"):
            self.kind = "mixture"
            self.centres = trainer.dataset.centres.cpu().numpy()
            self.std = trainer.dataset.std
        elif name == "painter":
            self.kind = "painter"
        elif name == "fashion_mnist" and trainer.data_shape == (1, 28, 28):
            from engine.metrics.evaluator import EvaluatorError, load_evaluator
            try:
                load_evaluator()
                self.kind = "images"
            except EvaluatorError:
                self.kind = None
        rng = torch.Generator(device=trainer.device).manual_seed(c.train.seed + 4)
        self.latent = trainer._sample_latent(self.n, torch.Generator().manual_seed(c.train.seed + 5)).to(trainer.device)
        self.real = self.real_labels = self.real_features = None
        self.info = bool(c.model.info_categorical) and trainer.num_classes > 0 and trainer.dataset.kind == "images"
        if self.kind == "images" or self.info:
            real, labels = trainer.dataset.sample(self.n, rng)
            self.real, self.real_labels = real, labels
        self.test = None
        if trainer.semi_supervised:  # score both classifiers on held-out images
            from engine.data import make_test_set
            test = make_test_set(c)
            pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(c.train.seed + 6))[: self.n]
            self.test = (test.scaled(pick), test.labels[pick])
        self.enabled = self.kind is not None or self.info or self.test is not None

    @torch.no_grad()
    def snapshot(self, trainer) -> dict:
        """Runs on the training thread: just the forward passes, copied to the CPU."""
        fake = trainer.generate(self.latent).float().cpu()
        snap = {"fake": fake}
        if self.info:
            d = trainer.discriminator
            was_training = d.training
            d.eval()
            try:
                q = torch.cat([d(chunk).q for chunk in self.real.split(500)])
            finally:
                d.train(was_training)
            snap["code"] = q[:, : trainer.config.model.info_categorical[0]].argmax(1).cpu().numpy()
            snap["categories"] = trainer.config.model.info_categorical[0]
        if self.test is not None:
            snap["classifiers"] = {name: copy.deepcopy(model).cpu().eval() for name, model in
                                   (("test_accuracy", trainer.discriminator), ("baseline_accuracy", trainer.baseline))}
        return snap

    def compute(self, snap: dict) -> dict:
        """Runs on the metrics thread."""
        from engine.metrics.lowdim import mixture_quality, painter_quality
        values = {}
        fake = snap["fake"]
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
        if "code" in snap:
            from engine.metrics.matching import matched_accuracy
            classes = max(snap["categories"], int(self.real_labels.max()) + 1)
            values["code_accuracy"] = matched_accuracy(snap["code"], self.real_labels.cpu().numpy(), classes)
        if "classifiers" in snap:
            images, labels = self.test
            with torch.no_grad():
                for name, model in snap["classifiers"].items():
                    guesses = torch.cat([model(chunk).class_logits.argmax(1) for chunk in images.split(500)])
                    values[name] = float((guesses == labels).float().mean())
        return values

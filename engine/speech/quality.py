"""SEGAN's live scores on the held-out clips: G is copied on the training thread; the clips are enhanced and
scored on the metrics thread (engine.speech.metrics: SNR and segmental SNR of the noisy and the enhanced clip
against the clean one, their gains, and PESQ / STOI where those packages are installed)."""

from __future__ import annotations

import torch

from engine.algorithms.base import SamplingNetsProbe
from engine.speech.metrics import mean_scores, score_clip


class SpeechQuality(SamplingNetsProbe):
    def __init__(self, algorithm, n: int):
        self.algorithm = algorithm
        self.clips = algorithm.dataset.held[:max(1, n)]

    @torch.no_grad()
    def compute(self, nets: dict) -> dict:
        rate = self.algorithm.rate
        scores = [score_clip(clip.clean, clip.noisy, self.algorithm.enhance_array(clip.noisy, nets), rate)
                  for clip in self.clips]
        return mean_scores(scores)

"""What the families whose generator works in stages share: LAPGAN (a pyramid), StackGAN (stage I, stage II),
Composite GAN (parts), GRAN (a canvas drawn over steps).

A staged family writes `draw(inputs, nets) -> (images, stages)`: the final images (N x C x H x W in [−1, 1], what
every generic consumer gets: the quality metrics, the exports, ONNX) and the stages, a list of (label, tensor
N x C' x h x w in [−1, 1]) in drawing order (a stage smaller than the images is shown enlarged by pixel
repetition; a part with an alpha channel is shown over mid grey). `generate` returns the images and keeps the
stages of that call in `last_stages`, so the preview and `gan-studio sample --stages`, which draw right after
generating on the same thread, show the stages of exactly those images.

The preview is the usual grid of the final images with, under it, the stages of the first STAGE_ROWS samples,
one row each, labelled.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.algorithms.base import Algorithm
from engine.algorithms.translation import label_strip
from engine.images import make_grid, to_uint8_images

STAGE_ROWS = 6
MIN_TILE = 56  # pixels: a stage label such as "stage II" fits above a tile this wide


def shown(stage: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A stage as the final images look: enlarged to their size, an alpha channel composited over mid grey."""
    x = stage.float()
    channels = like.shape[1]
    if x.shape[1] == channels + 1:  # colour (or grey) and alpha, alpha in [−1, 1]
        alpha = (x[:, -1:] + 1) / 2
        x = x[:, :-1] * alpha
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    if x.shape[-2:] != like.shape[-2:]:
        x = F.interpolate(x, size=like.shape[-2:], mode="nearest")
    return x


class StagedAlgorithm(Algorithm):
    last_stages: list = []

    def draw(self, inputs: dict, nets: dict) -> tuple[torch.Tensor, list]:
        """(final images, [(label, stage), ...]) for the inputs; a staged family writes this."""
        raise NotImplementedError

    def generate(self, inputs: dict, nets: dict) -> torch.Tensor:
        images, stages = self.draw(inputs, nets)
        self.last_stages = stages
        return images

    def stage_rows(self, outputs: torch.Tensor, count: int | None = None) -> tuple[list, list]:
        """(labels, one picture per sample: its stages side by side) from the stages of the last `generate`."""
        stages = [(label, stage) for label, stage in self.last_stages if len(stage) == len(outputs)]
        n = len(outputs) if count is None else min(count, len(outputs))
        if not stages or n == 0:
            return [], []
        panels = torch.stack([shown(stage[:n], outputs[:n]) for _, stage in stages], 1)
        tiles = to_uint8_images(panels.flatten(0, 1)).reshape(n, len(stages), *outputs.shape[-2:], -1)
        return [label for label, _ in stages], [make_grid(tiles[i], columns=len(stages)) for i in range(n)]

    def stage_sheet(self, outputs: torch.Tensor, count: int | None = None, width: int = 0) -> np.ndarray | None:
        """The stage rows under their labels, in as many side-by-side blocks as fit in `width` pixels (0: one
        block); small images are enlarged so each tile is at least MIN_TILE pixels wide and its label fits."""
        labels, rows = self.stage_rows(outputs, count)
        if not rows:
            return None
        scale = max(1, -(-MIN_TILE // outputs.shape[-1]))
        rows = [row.repeat(scale, 0).repeat(scale, 1) for row in rows]
        row_width = rows[0].shape[1]
        tile = (row_width - 2 * scale) // len(labels) - 2 * scale  # make_grid's padding, enlarged
        strip = label_strip(row_width, labels, tile, 2 * scale)
        blocks = max(1, min(len(rows), (width + 8) // (row_width + 8))) if width else 1
        per_block = -(-len(rows) // blocks)
        parts = []
        for start in range(0, len(rows), per_block):
            column = rows[start:start + per_block]
            column += [np.full_like(rows[0], 40)] * (per_block - len(column))
            parts += [np.concatenate([strip, *column], 0), np.full((strip.shape[0] + per_block * rows[0].shape[0], 8, 3),
                                                                   40, np.uint8)]
        return np.concatenate(parts[:-1], 1)

    def preview(self, preview, outputs: torch.Tensor) -> dict:
        fields = preview.samples_event_fields(outputs)
        grid = fields["picture"]
        sheet = self.stage_sheet(outputs, STAGE_ROWS, grid.shape[1])
        if sheet is not None:
            width = max(grid.shape[1], sheet.shape[1])
            pad = lambda p: np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=40)
            gap = np.full((6, width, 3), 40, np.uint8)
            fields["picture"] = np.concatenate([pad(grid), gap, pad(sheet)], 0)
        return fields

"""What the studio draws from a batch of generated samples, by the kind of data: a grid of images,
2-D points over the real ones, or painter curves inside their valid band. Shared by every family."""

from __future__ import annotations

import numpy as np
import torch

from engine.images import make_grid, render_curves, render_points, to_uint8_images

REAL_POINTS = 512  # real points drawn under the generated ones in 2-D previews


def as_arrays(kind: str, outputs: torch.Tensor) -> np.ndarray:
    return to_uint8_images(outputs) if kind == "images" else outputs.float().cpu().numpy()


def render_picture(kind: str, samples: np.ndarray, real: np.ndarray | None = None, extent=None) -> np.ndarray:
    """One picture of a batch: a grid of images, a scatter of 2-D points over the real ones, or curves."""
    if kind == "images":
        return make_grid(samples)
    if kind == "points":
        return render_points(samples, real, extent)
    return render_curves(samples, np.linspace(-1, 1, samples.shape[1]))


class DataPreview:
    """Draws generated batches the way their data set looks; keeps a fixed batch of real points for 2-D data."""

    def __init__(self, dataset, seed: int, sample_count: int, device):
        self.kind = dataset.kind
        self.extent = getattr(dataset, "extent", None)
        self.real = None
        if self.kind in ("points", "curves"):  # drawn over the real ones
            real, _ = dataset.sample(min(REAL_POINTS, 4 * sample_count),
                                     torch.Generator(device=device).manual_seed(seed + 3))
            self.real = real.cpu().numpy()

    def samples_event_fields(self, outputs: torch.Tensor) -> dict:
        """The fields of an events.Samples for this batch (picture, and images or points)."""
        samples = as_arrays(self.kind, outputs)
        picture = render_picture(self.kind, samples, self.real, self.extent)
        if self.kind == "images":
            return {"kind": "images", "picture": picture, "images": samples}
        return {"kind": self.kind, "picture": picture, "points": samples, "real": self.real,
                "extent": tuple(self.extent)}

    def pictures(self, outputs: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
        """(one picture of all samples, a picture per sample); 2-D points make one picture only."""
        samples = as_arrays(self.kind, outputs)
        whole = render_picture(self.kind, samples, self.real, self.extent)
        if self.kind == "points":
            return whole, [whole]
        return whole, [render_picture(self.kind, samples[i:i + 1], self.real, self.extent)
                       for i in range(len(samples))]

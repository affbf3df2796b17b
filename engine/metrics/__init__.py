"""Quality measures that do not trust the losses."""

from engine.metrics.lowdim import mixture_quality, painter_quality

__all__ = ["mixture_quality", "painter_quality"]

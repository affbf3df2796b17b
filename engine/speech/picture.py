"""The speech preview picture, shown and saved as PNG at every sample step: one row per held-out clip, and in each
row a panel per version of it (e.g. noisy, enhanced, clean) side by side, each the waveform above its
spectrogram.

Waveforms share one vertical scale per row, the largest absolute sample over the row's panels: panels of a row
compare (the enhanced clip visibly quieter than the noisy one where noise was removed) and quiet speech still
fills its strip, which a fixed ±1 scale would flatten to a line. Spectrograms use a fixed [-80, 0] dB range (0 dB
full scale, see metrics.spectrogram_db) so that they compare across panels, rows and steps, coloured by a
magma-like ramp (perceptually ordered: dark is quiet, bright loud) interpolated from a few anchor colours."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from engine.speech.metrics import spectrogram_db
from engine.text.view import ui_font

BACKGROUND = (40, 40, 40)
WAVE_BACKGROUND = (24, 24, 24)
WAVE_COLOUR = (120, 190, 255)
AXIS_COLOUR = (60, 60, 60)
TEXT_COLOUR = (220, 220, 220)
LABEL_COLOUR = (170, 170, 170)
PAD, GAP, ROW_GAP, SPLIT = 4, 4, 8, 2  # outer margin, between panels, between rows, between wave and spectrogram
HEADER, LABEL = 18, 15  # heights of the panel names' strip and of a row's label strip
DB_RANGE = (-80.0, 0.0)
MIN_SCALE = 1e-3  # a row quieter than this is drawn at this scale: silence stays a flat line, not amplified hiss
# Anchor colours of the ramp, dark to bright (after matplotlib's magma, Smith & van der Walt 2015).
ANCHORS = np.array([(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122), (229, 80, 100),
                    (251, 135, 97), (254, 194, 135), (252, 253, 191)], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def colour_map() -> np.ndarray:
    """The ramp as a 256 × 3 uint8 lookup table, linear between the anchors."""
    where = np.linspace(0.0, 1.0, len(ANCHORS))
    steps = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(steps, where, ANCHORS[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def _columns(n: int, width: int) -> np.ndarray:
    """The first sample of each of `width` pixel columns spread over n samples (a column may repeat a sample)."""
    return np.minimum((np.arange(width) * n) // width, max(n - 1, 0))


def wave_strip(x: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """height × width × 3 uint8: per pixel column, a filled vertical line from the column's minimum to its maximum
    sample, ±scale being the strip's top and bottom."""
    strip = np.empty((height, width, 3), dtype=np.uint8)
    strip[:] = WAVE_BACKGROUND
    middle = (height - 1) / 2.0
    strip[int(round(middle))] = AXIS_COLOUR
    if x.size == 0:
        return strip
    starts = _columns(x.size, width)
    low, high = np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)
    top = np.clip(np.round(middle - high / scale * middle), 0, height - 1)
    bottom = np.clip(np.round(middle - low / scale * middle), 0, height - 1)
    rows = np.arange(height)[:, None]
    strip[(rows >= top[None, :]) & (rows <= bottom[None, :])] = WAVE_COLOUR
    return strip


def spectrogram_strip(x: np.ndarray, rate: int, width: int, height: int) -> np.ndarray:
    """height × width × 3 uint8: the dB spectrogram, low frequencies at the bottom; frequency bins averaged (in dB)
    into the rows, frames picked by nearest column."""
    db = spectrogram_db(x, rate, floor_db=DB_RANGE[0])
    bins, frames = db.shape
    edges = np.minimum((np.arange(height) * bins) // height, bins - 1)
    counts = np.diff(np.append(edges, bins)).clip(min=1)
    rows = np.add.reduceat(db, edges, axis=0) / counts[:, None] if bins >= height else db[edges]
    picked = rows[::-1][:, _columns(frames, width)]
    level = (picked - DB_RANGE[0]) / (DB_RANGE[1] - DB_RANGE[0])
    return colour_map()[np.clip(np.round(level * 255), 0, 255).astype(np.intp)]


def render_clips(clips: np.ndarray, rate: int, names: list[str], row_labels: list[str] | None = None,
                 panel_width: int = 240, wave_height: int = 48, spec_height: int = 64) -> np.ndarray:
    """The preview picture, H × W × 3 uint8. clips: N clips × K versions × T samples in [-1, 1] (NaN drawn as
    0); names: the K panel titles written over the columns; row_labels: one short label per clip (e.g.
    "white 5 dB") written above its row, or None for none. A name or label missing from a short list is blank."""
    clips = np.nan_to_num(np.asarray(clips, dtype=np.float32))
    if clips.ndim == 2:
        clips = clips[None]
    if clips.ndim != 3:
        raise ValueError(f"clips must be N × K × T, got shape {clips.shape}")
    count, panels, _ = clips.shape
    label = LABEL if row_labels is not None else 0
    row_height = label + wave_height + SPLIT + spec_height
    width = 2 * PAD + panels * panel_width + (panels - 1) * GAP
    height = HEADER + count * row_height + max(0, count - 1) * ROW_GAP + PAD
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for i in range(count):
        top = HEADER + i * (row_height + ROW_GAP) + label
        scale = max(float(np.max(np.abs(clips[i]))) if clips[i].size else 0.0, MIN_SCALE)
        for k in range(panels):
            left = PAD + k * (panel_width + GAP)
            canvas[top:top + wave_height, left:left + panel_width] = wave_strip(
                clips[i, k], scale, panel_width, wave_height)
            spec_top = top + wave_height + SPLIT
            canvas[spec_top:spec_top + spec_height, left:left + panel_width] = spectrogram_strip(
                clips[i, k], rate, panel_width, spec_height)
    picture = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(picture), ui_font(12)
    for k in range(panels):
        name = str(names[k]) if k < len(names) else ""
        if name:
            centre = PAD + k * (panel_width + GAP) + panel_width / 2.0
            draw.text((centre - draw.textlength(name, font=font) / 2.0, 3), name, fill=TEXT_COLOUR, font=font)
    for i in range(count if row_labels is not None else 0):
        text = str(row_labels[i]) if i < len(row_labels) else ""
        if text:
            draw.text((PAD + 2, HEADER + i * (row_height + ROW_GAP) + 1), text, fill=LABEL_COLOUR, font=font)
    return np.asarray(picture)

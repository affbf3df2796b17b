"""The picture of generated sequences: one row per sequence, each token on a tile shaded by its
reward (D's probability of 'real' for the sequence completed from that prefix): orange for 0 (fake),
white for 0.5, blue for 1 (real), the colours of the 2-D previews' D field."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAKE, MIDDLE, REAL = np.array([253, 174, 107]), np.array([255, 255, 255]), np.array([107, 174, 214])
ROW, PAD, WIDTH = 18, 4, 900


@functools.lru_cache(maxsize=2)
def _font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def shade(value: float) -> tuple:
    v = min(1.0, max(0.0, float(value)))
    colour = FAKE + (MIDDLE - FAKE) * (v / 0.5) if v < 0.5 else MIDDLE + (REAL - MIDDLE) * ((v - 0.5) / 0.5)
    return tuple(int(x) for x in colour)


def render_tokens(rows: list[list[str]], shades: list[list[float]] | None = None, joiner: str = " ",
                  title: str = "", width: int = WIDTH) -> np.ndarray:
    """rows: the tokens of each sequence; shades: a value in [0, 1] per token (None: plain)."""
    font = _font()
    top = ROW + PAD if title else PAD
    picture = Image.new("RGB", (width, top + ROW * max(1, len(rows)) + PAD), (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((PAD, PAD), title, fill=(90, 90, 90), font=font)
    gap = int(draw.textlength(joiner, font=font)) if joiner else 0
    for r, tokens in enumerate(rows):
        x, y = PAD, top + r * ROW
        for i, token in enumerate(tokens):
            text = token.replace("\n", " ") or " "
            w = max(4, int(draw.textlength(text, font=font)))
            if x + w > width - PAD - 12:
                draw.text((x, y + 1), "…", fill=(120, 120, 120), font=font)
                break
            if shades is not None and i < len(shades[r]):
                draw.rectangle((x - 1, y + 1, x + w, y + ROW - 2), fill=shade(shades[r][i]))
            draw.text((x, y + 2), text, fill=(20, 20, 20), font=font)
            x += w + max(gap, 1 if shades is not None else 0)
    return np.asarray(picture)

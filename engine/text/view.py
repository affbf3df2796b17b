"""The picture of generated sequences: each sequence on its own lines (wrapped at the picture's width),
each token on a tile shaded by its reward (D's probability of 'real' for the sequence completed from
that prefix): orange for 0 (fake), white for 0.5, blue for 1 (real), the colours of the 2-D previews'
D field. The studio draws the same as text (studio/samples.py); the picture is what is saved, scrubbed
and exported."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAKE, MIDDLE, REAL = np.array([253, 174, 107]), np.array([255, 255, 255]), np.array([107, 174, 214])
LINE, PAD, GAP, WIDTH = 18, 6, 6, 640


@functools.lru_cache(maxsize=4)
def ui_font(size: int = 13):
    """PIL's default font at `size` (the bitmap font where Pillow lacks FreeType), for labels drawn into pictures."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def shade(value: float) -> tuple:
    """The tile colour of a reward in [0, 1]."""
    v = min(1.0, max(0.0, float(value)))
    colour = FAKE + (MIDDLE - FAKE) * (v / 0.5) if v < 0.5 else MIDDLE + (REAL - MIDDLE) * ((v - 0.5) / 0.5)
    return tuple(int(x) for x in colour)


def render_tokens(rows: list[list[str]], shades=None, joiner: str = " ", title: str = "",
                  width: int = WIDTH) -> np.ndarray:
    """rows: the tokens of each sequence; shades: a value in [0, 1] per token (None: plain tokens)."""
    font = ui_font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    space = max(1, int(measure.textlength(joiner, font=font))) if joiner else (1 if shades is not None else 0)
    placed, y = [], PAD + (LINE + GAP if title else 0)
    for r, tokens in enumerate(rows):
        x = PAD
        for i, token in enumerate(tokens):
            text = token.replace("\n", " ") or " "
            w = max(4, int(measure.textlength(text, font=font)))
            if x + w > width - PAD and x > PAD:
                x, y = PAD, y + LINE
            value = shades[r][i] if shades is not None and i < len(shades[r]) else None
            placed.append((x, y, w, text, value))
            x += w + space
        y += LINE + GAP
    picture = Image.new("RGB", (width, max(y, PAD + LINE) + PAD), (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((PAD, PAD), title, fill=(90, 90, 90), font=font)
    for x, y, w, text, value in placed:
        if value is not None:
            draw.rectangle((x - 1, y + 1, x + w, y + LINE - 2), fill=shade(value))
        draw.text((x, y + 2), text, fill=(20, 20, 20), font=font)
    return np.asarray(picture)

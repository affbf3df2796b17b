"""Turning samples into pictures: image grids, scatter plots of 2-D points, painter curves.

Pillow only; everything returns uint8 arrays (H x W x 3) or writes PNG atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.checkpoint import atomic_write

FAKE_COLOUR = (230, 85, 13)
REAL_COLOUR = (49, 130, 189)


def to_uint8_images(batch: torch.Tensor) -> np.ndarray:
    """N x C x H x W in [−1, 1] -> N x H x W x C uint8."""
    arr = ((batch.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2, pad_value: int = 40) -> np.ndarray:
    """N x H x W x C uint8 -> one H' x W' x 3 uint8 picture."""
    n, h, w, c = images.shape
    if n == 1:  # a grid of one is the picture itself
        return images[0] if c == 3 else np.repeat(images[0], 3, axis=2)
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, 3), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        tile = images[i]
        grid[y:y + h, x:x + w] = tile if c == 3 else np.repeat(tile, 3, axis=2)
    return grid


# the pixels of a dot of radius 2, as offsets from its centre
_DOT = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if dy * dy + dx * dx <= 5]


def render_points(points: np.ndarray, real: np.ndarray | None, extent, size: int = 384) -> np.ndarray:
    """Real points, then generated ones over them, as dots on white. Stamped with numpy: drawing 1,024 dots
    one by one with Pillow held the training thread for 2 ms a snapshot."""
    img = np.full((size, size, 3), 255, np.uint8)
    x0, x1, y0, y1 = extent
    for pts, colour in ((real, REAL_COLOUR), (points, FAKE_COLOUR)):
        if pts is None or not len(pts):
            continue
        pts = np.asarray(pts, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # a NaN point is drawn nowhere
            xs = np.rint((pts[:, 0] - x0) / (x1 - x0) * (size - 1))
            ys = np.rint((1 - (pts[:, 1] - y0) / (y1 - y0)) * (size - 1))
        keep = np.isfinite(xs) & np.isfinite(ys) & (xs > -3) & (xs < size + 2) & (ys > -3) & (ys < size + 2)
        xs, ys = xs[keep].astype(np.int64), ys[keep].astype(np.int64)
        for dy, dx in _DOT:
            y, x = ys + dy, xs + dx
            inside = (y >= 0) & (y < size) & (x >= 0) & (x < size)
            img[y[inside], x[inside]] = colour
    return img


def render_curves(curves: np.ndarray, xs: np.ndarray, size: int = 384) -> np.ndarray:
    """Painter curves, with the band of valid curves (a = 1 and a = 2) drawn in blue."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    y0, y1 = -1.0, 3.5

    def line(ys):
        return [((x + 1) / 2 * (size - 1), (1 - (y - y0) / (y1 - y0)) * (size - 1)) for x, y in zip(xs, ys)]

    for a in (1.0, 2.0):
        draw.line(line(a * xs ** 2 + a - 1), fill=REAL_COLOUR, width=3)
    for curve in curves[:64]:
        draw.line(line(curve), fill=FAKE_COLOUR, width=1)
    return np.asarray(img)


def png_bytes(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: Path, picture: np.ndarray) -> Path:
    data = png_bytes(picture)
    return atomic_write(Path(path), lambda handle: handle.write(data))


def pad_to(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """An H x W x 3 picture grown to height x width with its top-left corner's colour (as it is, if it fits)."""
    if picture.shape[:2] == (height, width):
        return picture
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = picture[0, 0]
    canvas[:picture.shape[0], :picture.shape[1]] = picture
    return canvas


def save_gif(path: Path, pictures: list[np.ndarray], frame_ms: int) -> Path:
    """An animated GIF of H x W x 3 uint8 pictures, looping, written atomically. Pictures of different sizes
    (text previews wrap to more or fewer lines) are padded to the largest with their corner's colour."""
    height = max(p.shape[0] for p in pictures)
    width = max(p.shape[1] for p in pictures)
    frames = [Image.fromarray(pad_to(picture, height, width)).quantize(colors=255) for picture in pictures]
    return atomic_write(Path(path), lambda handle: frames[0].save(
        handle, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0))

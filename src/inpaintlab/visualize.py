"""Sample grids with labelled columns (input with the hole | model | ... | ground truth), shared
by training (MLflow, per epoch), evaluation (reports/samples.png) and the benchmarks.

Small images are enlarged (nearest neighbour, whole multiples) so a 64-px sample is big enough
to judge by eye; full-size samples are shown at their own resolution.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

MASK_COLOUR = (1.0, 1.0, 1.0)  # masked pixels are shown white in the "input" column
MIN_TILE = 192  # tiles smaller than this are enlarged by a whole factor
HEADER = 28  # pixels above the first row for the column labels
ROW_LABEL_SIZE = 15


def masked_view(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    colour = torch.tensor(MASK_COLOUR, dtype=image.dtype).view(1, 3, 1, 1)
    return image * (1 - mask) + colour * mask


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] in [0, 1] -> [N,H,W,3] uint8."""
    return (
        (images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255)
        .round()
        .astype(np.uint8)
    )


def sample_grid(
    columns: list[torch.Tensor | np.ndarray],
    labels: list[str] | None = None,
    row_labels: list[str] | None = None,
    pad: int = 4,
) -> np.ndarray:
    """columns: [N,3,H,W] tensors in [0, 1] or [N,H,W,3] uint8 arrays -> an HxWx3 uint8 grid,
    one row per image, one column per method, `labels` over the columns, `row_labels` written
    in the corner of each row's first tile."""
    pixels = [c if isinstance(c, np.ndarray) else to_uint8(c) for c in columns]
    n, h, w, _ = pixels[0].shape
    zoom = max(1, -(-MIN_TILE // max(h, w)))
    th, tw = h * zoom, w * zoom
    top = HEADER if labels else 0
    grid = np.full((top + n * (th + pad) + pad, len(pixels) * (tw + pad) + pad, 3), 255, np.uint8)
    for col, images in enumerate(pixels):
        for row in range(n):
            y, x = top + pad + row * (th + pad), pad + col * (tw + pad)
            grid[y : y + th, x : x + tw] = images[row].repeat(zoom, 0).repeat(zoom, 1)
    if not labels and not row_labels:
        return grid
    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    for col, label in enumerate(labels or []):
        draw.text((pad + col * (tw + pad) + 4, 4), label, fill=(0, 0, 0), font=font)
    small = ImageFont.load_default(size=ROW_LABEL_SIZE)
    for row, label in enumerate(row_labels or []):
        xy = (pad + 4, top + pad + row * (th + pad) + 4)
        draw.text(
            xy, label, fill=(255, 255, 255), font=small, stroke_width=2, stroke_fill=(0, 0, 0)
        )
    return np.asarray(canvas)

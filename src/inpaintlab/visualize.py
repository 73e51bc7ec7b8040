"""Sample grids (masked input | output | ground truth), shared by training and evaluation."""

from __future__ import annotations

import numpy as np
import torch

MASK_COLOUR = (1.0, 1.0, 1.0)  # masked pixels are shown white in the "masked input" column


def masked_view(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    colour = torch.tensor(MASK_COLOUR, dtype=image.dtype).view(1, 3, 1, 1)
    return image * (1 - mask) + colour * mask


def sample_grid(columns: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """columns: tensors [N,3,H,W] in [0,1] -> HxWx3 uint8 grid, one row per image, one column each."""
    n, _, h, w = columns[0].shape
    grid = np.full((n * (h + pad) + pad, len(columns) * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for col, images in enumerate(columns):
        pixels = (
            (images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255)
            .round()
            .astype(np.uint8)
        )
        for row in range(n):
            top, left = pad + row * (h + pad), pad + col * (w + pad)
            grid[top : top + h, left : left + w] = pixels[row]
    return grid

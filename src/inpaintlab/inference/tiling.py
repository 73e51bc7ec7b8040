"""One model call on a tile, and a large region run as overlapping tiles.

A tile whose sides are not multiples of 8 is padded at the bottom/right by reflection, the mask
reflected like the image: padding never turns unknown pixels into known-looking ones (which
matters for holes touching the border and for outpainting), and the padding is cropped off
afterwards. Small images are only padded, never upscaled.

A region larger than the tile side is cut into overlapping tiles (quarter-tile overlap), run in
raster order. Each tile keeps the generated pixels of its core (up to the middle of each
overlap), and later tiles see them as known context, so neighbouring tiles agree and every
generated pixel had context on all sides.
"""

from __future__ import annotations

import numpy as np

from inpaintlab.errors import ModelError, first_line
from inpaintlab.inference.runtime import SIZE_MULTIPLE, Runner


def pad_to(array: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    """Pad bottom/right by reflection (edge replication where a side is 1 pixel)."""
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    mode = "reflect" if min(array.shape[:2]) > 1 else "edge"
    return np.pad(array, widths, mode=mode)


def run_tile(run: Runner, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One model call on an HxWx3 uint8 tile and HxW bool mask -> HxWx3 uint8 (padded to 8)."""
    h, w = mask.shape
    pad_h, pad_w = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
    x = image.astype(np.float32) / 255.0
    m = mask.astype(np.float32)
    if pad_h or pad_w:
        x, m = pad_to(x, pad_h, pad_w), pad_to(m, pad_h, pad_w)
    x_in = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    try:
        y = np.asarray(run(x_in, np.ascontiguousarray(m[None, None])))
    except Exception as err:
        raise ModelError(f"the model failed on a {w}x{h} tile: {first_line(err)}") from None
    if y.shape != x_in.shape:
        raise ModelError(f"the model returned shape {list(y.shape)} for input {list(x_in.shape)}")
    y = np.nan_to_num(y[0].transpose(1, 2, 0)[:h, :w], nan=0.0)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def _spans(length: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis: (start, end, core_start, core_end), overlapping by a quarter tile
    (at least), cores meeting in the middle of each overlap."""
    if length <= tile:
        return [(0, length, 0, length)]
    count = -(-(length - tile) // (tile - tile // 4)) + 1  # tiles needed with quarter overlaps
    starts = [round(k * (length - tile) / (count - 1)) for k in range(count)]  # spread evenly
    bounds = (
        [0] + [(starts[k + 1] + starts[k] + tile) // 2 for k in range(len(starts) - 1)] + [length]
    )
    return [(s, s + tile, bounds[k], bounds[k + 1]) for k, s in enumerate(starts)]


def fill_tiles(run: Runner, canvas: np.ndarray, todo: np.ndarray, tile: int) -> None:
    """Generate every `todo` pixel of canvas in place, tile by tile in raster order; pixels a
    tile generated in its core are known context for the next tiles."""
    h, w = todo.shape
    for r0, r1, rc0, rc1 in _spans(h, tile):
        for c0, c1, cc0, cc1 in _spans(w, tile):
            if not todo[rc0:rc1, cc0:cc1].any():
                continue
            sub_image, sub_todo = canvas[r0:r1, c0:c1], todo[r0:r1, c0:c1]
            generated = run_tile(run, sub_image, sub_todo)
            core = np.zeros_like(sub_todo)
            core[rc0 - r0 : rc1 - r0, cc0 - c0 : cc1 - c0] = True
            core &= sub_todo
            sub_image[core] = generated[core]
            sub_todo[core] = False

"""How an image of any size is inpainted or outpainted with a model trained at size S.

The training scale first: the network learned to correct its fill on crops of S x S whose holes
reach at most about S/4 from a known pixel (a box of half the crop), so each hole is solved at
the scale where its reach is that: large holes at a lower working scale, thin ones at the
photo's own resolution; then the edge of a downscaled hole is generated again at full
resolution. Measured on real photos at 256 and 512 px (docs/results.md, 2026-12-01), this beats
running whole windows at full resolution by 0.2-0.5 dB per family once the network is trained
on per-image log errors (loss.hole_log_l2); with a network that barely corrects its fill
(pooled L2), full resolution had been ahead.

1. **Windows.** Each connected part of the mask gets a context window: its bounding box grown
   by max(its short side, S/4) on every side and to at least S x S, clipped to the image.
   Overlapping windows merge. A small hole in a large photo is therefore processed in a crop
   around it; the rest of the photo is not touched or resampled.
2. **Working scale** (`working_scale`): the largest at most 1 at which the hole's reach (the
   largest distance from a generated pixel to a known one) is at most TRAINING_REACH x S.
3. **Reach within it:** the window runs at full resolution, in one call when its sides fit
   `max_side` (default DEFAULT_MAX_SIDE = 1024 px), else in overlapping tiles (a tiled hole's
   reach is then far below the tile side).
4. **A larger reach:** the window is downscaled (INTER_AREA; a low-res pixel is generated if any
   of its pixels is), generated, upscaled (bicubic) and pasted into the hole; then a band S/4
   wide along the hole's edge is generated again at full resolution (one call on the band's
   bounding box grown by S/2, when that fits `max_side`), with the sharp original outside and
   the coarse fill inside as context, so the boundary between original and generated pixels
   shows no resolution seam. Tiles and padding: inference/tiling.py.

Outpainting grows the canvas in steps of at most 50% of the current side per axis (the depth of
the widest training border bands), each step being an inpainting of the new border. The
original pixels are never modified.
"""

from __future__ import annotations

import numpy as np

from inpaintlab.inference.runtime import SIZE_MULTIPLE, Runner
from inpaintlab.inference.tiling import fill_tiles

DEFAULT_MAX_SIDE = 1024  # px: the largest side run in one model call (~0.2 s on 2 CPU cores)
OUTPAINT_STEP = 0.5  # at most this fraction of the current side is added per axis and step
TRAINING_REACH = 0.25  # the hole reach, as a fraction of S, that the working scale keeps
REFINE_FRACTION = 0.25  # width of the full-resolution edge band after a downscaled pass, of S

Box = tuple[int, int, int, int]


def context_windows(mask: np.ndarray, image_size: int) -> list[Box]:
    """(y0, y1, x0, x1) windows around the mask's connected parts, merged where they overlap."""
    import cv2

    height, width = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count - 1 > 256:  # speckle: one window around everything
        ys, xs = np.nonzero(mask)
        parts = [
            (
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1),
            )
        ]
    else:
        parts = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count)]
    windows = []
    for x, y, w, h in parts:
        margin = max(min(w, h), image_size // 4)
        y0, y1 = _grow(y - margin, y + h + margin, image_size, height)
        x0, x1 = _grow(x - margin, x + w + margin, image_size, width)
        windows.append((y0, y1, x0, x1))
    merged = True
    while merged:
        merged, result = False, []
        for win in windows:
            for i, other in enumerate(result):
                if (
                    win[0] < other[1]
                    and other[0] < win[1]
                    and win[2] < other[3]
                    and other[2] < win[3]
                ):
                    result[i] = (
                        min(win[0], other[0]),
                        max(win[1], other[1]),
                        min(win[2], other[2]),
                        max(win[3], other[3]),
                    )
                    merged = True
                    break
            else:
                result.append(win)
        windows = result
    return sorted(windows)


def _grow(start: int, end: int, minimum: int, limit: int) -> tuple[int, int]:
    """Grow [start, end) to at least `minimum` long (centred), shifted inside [0, limit)."""
    if end - start < minimum:
        extra = minimum - (end - start)
        start, end = start - extra // 2, end + extra - extra // 2
    if start < 0:
        start, end = 0, end - start
    if end > limit:
        start, end = start - (end - limit), limit
    return max(0, start), min(limit, end)


def working_scale(todo: np.ndarray, image_size: int, reach: float = TRAINING_REACH) -> float:
    """Scale at which to run a window: the largest at most 1 at which the hole's reach (the
    largest distance from a generated pixel to a known one) is at most `reach` x S
    (TRAINING_REACH: the depth of the holes the network was trained on)."""
    import cv2

    if todo.all():
        return min(1.0, reach * image_size / (max(todo.shape) / 2))
    hole_reach = float(cv2.distanceTransform(todo.astype(np.uint8), cv2.DIST_L2, 5).max())
    return min(1.0, reach * image_size / max(hole_reach, 1.0))


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    run: Runner,
    image_size: int,
    max_side: int | None = None,
    reach: float = TRAINING_REACH,
    band: float = REFINE_FRACTION,
) -> np.ndarray:
    """Generate the pixels where mask is non-zero; all other pixels are returned unchanged.

    image: HxWx3 uint8; mask: HxW (bool or {0, 1}); see the module docstring for the strategy.
    reach, band: TRAINING_REACH and REFINE_FRACTION, for measuring others
    (benchmarks/strategy_variants.py).
    """
    import cv2

    max_side = _tile_side(max_side or DEFAULT_MAX_SIDE)
    out = image.copy()
    todo = np.asarray(mask) > 0
    if not todo.any():
        return out
    todo = todo.copy()
    for y0, y1, x0, x1 in context_windows(todo, image_size):
        win, win_todo = out[y0:y1, x0:x1], todo[y0:y1, x0:x1]
        if not win_todo.any():
            continue
        scale = working_scale(win_todo, image_size, reach)
        if scale >= 1.0:
            fill_tiles(run, win, win_todo, max_side)
            continue
        h, w = win_todo.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(win, size, interpolation=cv2.INTER_AREA)
        small_todo = cv2.resize(win_todo.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        fill_tiles(run, small, small_todo, max_side)
        upscaled = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        win[win_todo] = upscaled[win_todo]
        # refine: regenerate a band along the hole's edge at full resolution, with the sharp
        # original outside and the coarse fill inside as context, so the edge shows no seam
        distance = cv2.distanceTransform(win_todo.astype(np.uint8), cv2.DIST_L2, 5)
        edge_band = win_todo & (distance <= band * image_size)
        win_todo[...] = False
        # only the band's bounding box and S/2 of context around it: the coarse fill inside is
        # context enough, and on a 25% box at 256 px this call costs half the window's
        if not edge_band.any():  # nothing known in the window (or band 0): the coarse pass stands
            continue
        ys, xs = np.nonzero(edge_band)
        grow = image_size // 2
        b0, b1 = max(0, ys.min() - grow), min(h, ys.max() + 1 + grow)
        c0, c1 = max(0, xs.min() - grow), min(w, xs.max() + 1 + grow)
        fill_tiles(run, win[b0:b1, c0:c1], edge_band[b0:b1, c0:c1], max_side)
    return out


def _tile_side(side: int) -> int:
    return max(2 * SIZE_MULTIPLE, side // SIZE_MULTIPLE * SIZE_MULTIPLE)


def _split(first: int, second: int, limit: int) -> tuple[int, int]:
    """Share at most `limit` pixels of growth between two opposite sides, proportionally."""
    if first + second <= limit:
        return first, second
    a = min(first, round(limit * first / (first + second)))
    return a, min(second, limit - a)


def outpaint(
    image: np.ndarray,
    extend: tuple[int, int, int, int],
    run: Runner,
    image_size: int,
    max_side: int | None = None,
    step: float = OUTPAINT_STEP,
) -> np.ndarray:
    """Extend image by (left, top, right, bottom) pixels, in steps of at most `step` of the
    current side per axis; the original pixels are unchanged in the result."""
    import cv2

    left, top, right, bottom = extend
    current = image
    while left or top or right or bottom:
        h, w = current.shape[:2]
        dl, dr = _split(left, right, max(1, int(step * w)))
        dt, db = _split(top, bottom, max(1, int(step * h)))
        canvas = cv2.copyMakeBorder(current, dt, db, dl, dr, cv2.BORDER_REPLICATE)
        mask = np.ones(canvas.shape[:2], dtype=bool)
        mask[dt : dt + h, dl : dl + w] = False
        current = inpaint(canvas, mask, run, image_size, max_side)
        left, top, right, bottom = left - dl, top - dt, right - dr, bottom - db
    return current

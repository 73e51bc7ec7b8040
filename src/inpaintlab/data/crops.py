"""Where a training crop lies in a photo: the geometry `ScaleCrop` (datamodule.py) draws for
every training sample and prepare draws, seeded per photo, for the fixed val crops.

Plain Python (no albumentations, no torch): the prepare stage's worker processes import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def scale_crop_box(
    height: int,
    width: int,
    size: Sequence[int],
    scale: Sequence[float],
    ratio: Sequence[float],
    uniform: Callable[[float, float], float],
    randint: Callable[[int, int], int],
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a crop of a height x width photo: its area drawn
    log-uniformly in [scale[0], scale[1]] x the photo's area, so every zoom octave is equally
    frequent; its aspect log-uniformly in `ratio`; each side at least `size` (out_h, out_w) where
    the photo allows it, so a crop is never enlarged; clipped to the photo instead of retried.
    uniform(a, b) and randint(a, b) (both ends included) are the random source."""
    out_h, out_w = size
    area = height * width
    high = max(1.0, scale[1] * area)
    low = min(high, max(1.0, scale[0] * area, out_h * out_w))
    target = math.exp(uniform(math.log(low), math.log(high)))
    aspect = math.exp(uniform(math.log(ratio[0]), math.log(ratio[1])))
    crop_w = min(width, max(min(out_w, width), round(math.sqrt(target * aspect))))
    crop_h = min(height, max(min(out_h, height), round(math.sqrt(target / aspect))))
    top = randint(0, height - crop_h)
    left = randint(0, width - crop_w)
    return left, top, left + crop_w, top + crop_h

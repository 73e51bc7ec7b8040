"""Where to generate, as users write it: a box `X,Y,W,H` (pixels) to fill, or an extension
`L,T,R,B` (pixels, or N% of the original width for L/R and height for T/B) to outpaint.

The parsers raise ValueError with a one-line message (argparse and the server wrap it in their
own error types); applying a box to an image that it misses is a UserError.
"""

from __future__ import annotations

import numpy as np

from inpaintlab.errors import UserError

Box = tuple[int, int, int, int]
Extend = tuple[tuple[float, bool], ...]  # (value, is_percent) for left, top, right, bottom


def parse_box(text: str) -> Box:
    """'X,Y,W,H' in whole pixels."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected X,Y,W,H in whole pixels, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be positive, got {text!r}")
    return x, y, w, h


def parse_extend(text: str) -> Extend:
    """'L,T,R,B', each in pixels or a percentage ('50%') of the original side."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"expected L,T,R,B (pixels or N%), got {text!r}")
    values = []
    for part in parts:
        part = part.strip()
        try:
            value = float(part[:-1]) if part.endswith("%") else int(part)
        except ValueError:
            raise ValueError(f"expected L,T,R,B (whole pixels or N%), got {text!r}") from None
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"extension amounts must be >= 0, got {text!r}")
        values.append((float(value), part.endswith("%")))
    return tuple(values)


def resolve_extend(extend: Extend, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixels to add on (left, top, right, bottom); % of the width for L/R, height for T/B."""
    sides = (width, height, width, height)
    return tuple(
        round(v * side / 100) if pct else int(v)
        for (v, pct), side in zip(extend, sides, strict=True)
    )


def box_mask(height: int, width: int, box: Box) -> np.ndarray:
    """HxW bool mask of the part of box inside the image."""
    x, y, w, h = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x0 >= x1 or y0 >= y1:
        raise UserError(f"--box {x},{y},{w},{h} lies outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask

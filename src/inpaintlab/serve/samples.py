"""The page's bundled sample photos: synthetic landscapes rendered on first use (no files, no
downloads; `inpaintlab.data.synthetic` is numpy and Pillow only)."""

from __future__ import annotations

import functools

# name -> seed of render_landscape; a 512 x 384 crop of the 512 x 512 rendering
SAMPLES = {"meadow": 2, "lake": 11, "sunset": 16}
WIDTH, HEIGHT = 512, 384


@functools.cache
def sample_png(name: str) -> bytes:
    """PNG bytes of a sample (KeyError for an unknown name)."""
    from inpaintlab.data.synthetic import render_landscape
    from inpaintlab.serve.engine import encode_png

    seed = SAMPLES[name]
    top = (WIDTH - HEIGHT) // 2
    return encode_png(render_landscape(seed, WIDTH)[top : top + HEIGHT])

"""Built-in synthetic landscape dataset: procedurally drawn "photos" for inpainting/outpainting.

The pictures are built so that filling a hole needs structure, not colour statistics: ridge
lines and horizons to continue, mirrored reflections to complete, textures (fields, forests,
clouds) to extend. Palettes are hue-shifted at random so colour alone is not predictive.

Design rules, so a dataset is reproducible and cheap to rebuild:

* Every random draw has a shape that does not depend on ``size``; only the sampling grid does.
  The same seed therefore gives the same scene at every resolution (``size=64`` looks like a
  downscaled ``size=256``).
* Pixels are computed with float32 ``+ - * /``, ``sqrt``, ``floor``, ``min``/``max`` and
  gathers only (no ``exp``/``sin``/``pow``, no summing reductions, no BLAS): these are exactly
  rounded, so pixel values should not depend on the CPU's SIMD code paths.
* numpy and Pillow only: importing this package must stay fast (no torch).

Layout: `scene.py` draws one picture layer by layer (`sky.py`, `land.py`, `lake.py`, colours
from `palette.py`, noise and compositing from `noise.py`); this module is the public API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inpaintlab.data.synthetic.scene import render
from inpaintlab.files import atomic_file

__all__ = ["image_seed", "render_landscape", "write_dataset"]

FILE_PATTERN = "landscape_{:05d}.png"
MIN_SIZE = 16
# zlib level 4: ~5 ms per 256 px image; level 6 takes twice as long for ~6% smaller files
PNG_COMPRESS_LEVEL = 4


def _check_int(name: str, value: object, minimum: int) -> int:
    """Integer argument >= minimum, or a one-line ValueError (the CLI prints it as is)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def image_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` of a dataset, so one image can be re-rendered on its own."""
    a, b = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return (int(a) << 31) ^ int(b)


def render_landscape(seed: int, size: int = 256) -> np.ndarray:
    """HxWx3 uint8 RGB image, deterministic for (seed, size); the scene is the same at every
    size, only the resolution changes."""
    size = _check_int("size", size, MIN_SIZE)
    seed = _check_int("seed", seed, 0)
    return render(np.random.default_rng(seed), size)


def write_dataset(
    out_dir: str | Path,
    count: int = 1000,
    size: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> list[Path]:
    """Write count PNGs named landscape_00000.png ... into out_dir; returns the paths.

    Image i depends only on (seed, i, size), so a larger count extends a dataset without
    changing its first images. Each file is written under a temporary name and renamed, so an
    interrupted run never leaves a truncated PNG; other files in out_dir are left alone.
    """
    count = _check_int("count", count, 1)
    size = _check_int("size", size, MIN_SIZE)
    seed = _check_int("seed", seed, 0)
    from tqdm import tqdm  # lazily: only needed when writing

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in tqdm(range(count), desc="synth", unit="img", disable=not progress):
        arr = render_landscape(image_seed(seed, i), size)
        path = out / FILE_PATTERN.format(i)
        with atomic_file(path) as handle:
            Image.fromarray(arr).save(
                handle, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL
            )
        paths.append(path)
    return paths

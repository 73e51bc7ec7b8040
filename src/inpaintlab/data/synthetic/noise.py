"""Float32 building blocks of the landscapes: value noise, fractal noise, compositing.

Only exactly rounded float32 operations (``+ - * /``, ``sqrt``, ``floor``, ``min``/``max``,
gathers), so pixel values do not depend on the CPU's SIMD code paths.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
NOISE_GAIN = 5.0  # ~1 / std of centred value noise (smoothstep-interpolated uniforms)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(e0)) * F32(1.0 / (e1 - e0)), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _axis(n_px: int, cells: int, smooth: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cell index and interpolation weight of each pixel centre along one axis."""
    u = (np.arange(n_px, dtype=F32) + 0.5) * F32(cells / n_px)
    i0 = np.minimum(u.astype(np.int32), cells - 1)
    t = u - i0.astype(F32)
    if smooth:
        t = t * t * (3.0 - 2.0 * t)
    return i0, t


def _noise2d(grid: np.ndarray, h: int, w: int, r0: int, r1: int) -> np.ndarray:
    """Value noise: a (gy+1, gx+1) lattice smoothly interpolated to rows r0:r1 of h x w."""
    iy, ty = _axis(h, grid.shape[0] - 1, True)
    iy, ty = iy[r0:r1], ty[r0:r1]
    ix, tx = _axis(w, grid.shape[1] - 1, True)
    g0 = grid[iy]
    rows = g0 + (grid[iy + 1] - g0) * ty[:, None]
    a = rows[:, ix]
    return a + (rows[:, ix + 1] - a) * tx


def noise1d(grid: np.ndarray, n: int, smooth: bool) -> np.ndarray:
    """A 1-D lattice interpolated to n pixel centres (smoothstep or linear)."""
    i0, t = _axis(n, grid.shape[0] - 1, smooth)
    a = grid[i0]
    return a + (grid[i0 + 1] - a) * t


class Fbm:
    """Fractal value noise (about zero mean, unit std). The lattices are drawn up front, so the
    random stream depends neither on size nor on which scene elements get shown; evaluation is
    lazy and limited to the rows that need it."""

    def __init__(self, rng: np.random.Generator, cy: int, cx: int, octaves: int, gain: float):
        self.cy, self.cx, self.gain = cy, cx, gain
        self.grids = [rng.random(((cy << k) + 1, (cx << k) + 1), dtype=F32) for k in range(octaves)]

    def rows(self, h: int, w: int, r0: int = 0, r1: int | None = None) -> np.ndarray:
        """Rows r0:r1 of the h x w field; octaves finer than ~2 px are skipped."""
        r1 = h if r1 is None else r1
        out = np.zeros((r1 - r0, w), dtype=F32)
        norm, wk = 0.0, 1.0
        for k, g in enumerate(self.grids):
            if k and ((self.cy << k) > h // 2 or (self.cx << k) > w // 2):
                break
            out += (_noise2d(g, h, w, r0, r1) - 0.5) * F32(wk)
            norm += wk * wk
            wk *= self.gain
        return out * F32(NOISE_GAIN / np.sqrt(norm))


def fbm1d(
    rng: np.random.Generator, n: int, cells: int, octaves: int, gain: float, smooth: bool
) -> tuple[np.ndarray, np.ndarray]:
    """1-D fractal noise (unit-ish std) and its coarse part (first three octaves)."""
    grids = [rng.random((cells << k) + 1, dtype=F32) for k in range(octaves)]
    out = np.zeros(n, dtype=F32)
    coarse = None
    norm, wk = 0.0, 1.0
    for k, g in enumerate(grids):
        if k and (cells << k) > n // 2:
            break
        if k == 3:
            coarse = out
        out = out + (noise1d(g, n, smooth) - 0.5) * F32(wk)
        norm += wk * wk
        wk *= gain
    coarse = out if coarse is None else coarse
    s = F32(3.5 / np.sqrt(norm))
    return out * s, coarse * s


def over(img: np.ndarray, alpha: np.ndarray, color: np.ndarray, r0: int = 0) -> None:
    """Alpha-composite colour (3,) or (rows, w, 3) over the rows of img from r0, in place."""
    dst = img[r0 : r0 + alpha.shape[0]]
    dst += (color - dst) * alpha[..., None]


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a + (b - a) * F32(t)).astype(F32)

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
* numpy and Pillow only: importing this module must stay fast (no torch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["image_seed", "render_landscape", "write_dataset"]

F32 = np.float32
FILE_PATTERN = "landscape_{:05d}.png"
MIN_SIZE = 16
# zlib level 4: ~5 ms per 256 px image; level 6 takes twice as long for ~6% smaller files
PNG_COMPRESS_LEVEL = 4
_NOISE_GAIN = 5.0  # ~1 / std of centred value noise (smoothstep-interpolated uniforms)

# Base palettes (linear-ish sRGB in [0, 1]); each image jitters and hue-rotates one of them.
_PALETTES: dict[str, dict[str, tuple[float, float, float]]] = {
    "day": {
        "zenith": (0.17, 0.36, 0.76),
        "horizon": (0.70, 0.82, 0.94),
        "sun": (1.00, 0.97, 0.86),
        "cloud_lit": (0.98, 0.98, 0.99),
        "cloud_shade": (0.62, 0.67, 0.78),
        "rock": (0.22, 0.27, 0.30),
        "ground": (0.33, 0.52, 0.16),
        "ground2": (0.62, 0.58, 0.24),
        "forest": (0.07, 0.17, 0.08),
        "water": (0.08, 0.22, 0.32),
    },
    "dusk": {
        "zenith": (0.20, 0.14, 0.38),
        "horizon": (0.98, 0.62, 0.32),
        "sun": (1.00, 0.84, 0.52),
        "cloud_lit": (1.00, 0.70, 0.48),
        "cloud_shade": (0.40, 0.24, 0.38),
        "rock": (0.22, 0.13, 0.22),
        "ground": (0.30, 0.25, 0.12),
        "ground2": (0.45, 0.30, 0.14),
        "forest": (0.07, 0.04, 0.07),
        "water": (0.14, 0.09, 0.18),
    },
    "overcast": {
        "zenith": (0.52, 0.55, 0.60),
        "horizon": (0.78, 0.80, 0.82),
        "sun": (0.92, 0.92, 0.88),
        "cloud_lit": (0.86, 0.87, 0.89),
        "cloud_shade": (0.48, 0.50, 0.55),
        "rock": (0.30, 0.33, 0.35),
        "ground": (0.33, 0.42, 0.26),
        "ground2": (0.46, 0.45, 0.32),
        "forest": (0.13, 0.19, 0.15),
        "water": (0.30, 0.35, 0.38),
    },
    "night": {
        "zenith": (0.01, 0.02, 0.07),
        "horizon": (0.10, 0.14, 0.30),
        "sun": (0.95, 0.95, 0.86),
        "cloud_lit": (0.34, 0.37, 0.50),
        "cloud_shade": (0.05, 0.06, 0.12),
        "rock": (0.05, 0.06, 0.11),
        "ground": (0.06, 0.09, 0.10),
        "ground2": (0.09, 0.10, 0.12),
        "forest": (0.01, 0.02, 0.04),
        "water": (0.02, 0.04, 0.10),
    },
}
_MOODS = ("day", "dusk", "overcast", "night")
_MOOD_P = (0.42, 0.25, 0.19, 0.14)
_KEYS = tuple(_PALETTES["day"])
# per mood: (sun probability, cloud coverage low, high, haze far, glow strength)
_MOOD_PARAMS = {
    "day": (0.75, 0.0, 0.7, 0.60, 0.35),
    "dusk": (0.85, 0.1, 0.8, 0.50, 0.70),
    "overcast": (0.25, 0.6, 1.0, 0.70, 0.15),
    "night": (0.70, 0.0, 0.6, 0.40, 0.25),
}


def _check_int(name: str, value: object, minimum: int) -> int:
    """Integer argument >= minimum, or a one-line ValueError (the CLI prints it as is)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def image_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` of a dataset, so one image can be re-rendered on its own."""
    a, b = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return (int(a) << 31) ^ int(b)


# --- small numeric helpers (float32, exactly rounded ops only) ---------------------------------


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
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


def _noise1d(grid: np.ndarray, n: int, smooth: bool) -> np.ndarray:
    i0, t = _axis(n, grid.shape[0] - 1, smooth)
    a = grid[i0]
    return a + (grid[i0 + 1] - a) * t


class _Fbm:
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
        return out * F32(_NOISE_GAIN / np.sqrt(norm))


def _fbm1d(
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
        out = out + (_noise1d(g, n, smooth) - 0.5) * F32(wk)
        norm += wk * wk
        wk *= gain
    coarse = out if coarse is None else coarse
    s = F32(3.5 / np.sqrt(norm))
    return out * s, coarse * s


def _over(img: np.ndarray, alpha: np.ndarray, color: np.ndarray, r0: int = 0) -> None:
    """Alpha-composite colour (3,) or (rows, w, 3) over the rows of img from r0, in place."""
    dst = img[r0 : r0 + alpha.shape[0]]
    dst += (color - dst) * alpha[..., None]


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a + (b - a) * F32(t)).astype(F32)


# --- palette -----------------------------------------------------------------------------------


def _palette(rng: np.random.Generator) -> tuple[str, dict[str, np.ndarray]]:
    """Pick a time of day, jitter it, then rotate hue and scale saturation (YIQ) so that the
    same structure appears in many colourings."""
    mood = _MOODS[int(rng.choice(len(_MOODS), p=_MOOD_P))]
    base = np.array([_PALETTES[mood][k] for k in _KEYS], dtype=np.float64)
    jitter = rng.uniform(-0.05, 0.05, size=base.shape)
    gain = rng.uniform(0.85, 1.15)
    # rotation angle: mostly small, sometimes anywhere (cos/sin from a rational parametrisation)
    t_small = rng.uniform(-0.36, 0.36)
    v = rng.uniform(-1.0, 1.0, size=2)
    wild = rng.random() < 0.15
    sat = rng.uniform(0.65, 1.35)
    if wild:
        length = float(np.sqrt(v[0] * v[0] + v[1] * v[1])) + 1e-9
        c, s = float(v[0]) / length, float(v[1]) / length
    else:
        t2 = t_small * t_small
        c, s = (1.0 - t2) / (1.0 + t2), 2.0 * t_small / (1.0 + t2)
    cols = np.clip(base + jitter, 0.0, 1.0) * gain
    r, g, b = cols[:, 0], cols[:, 1], cols[:, 2]  # explicit sums, not BLAS: exact rounding
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.596 * r - 0.274 * g - 0.322 * b
    q = 0.211 * r - 0.523 * g + 0.312 * b
    i, q = (c * i - s * q) * sat, (s * i + c * q) * sat
    rgb = np.stack(
        [y + 0.956 * i + 0.621 * q, y - 0.272 * i - 0.647 * q, y - 1.106 * i + 1.703 * q], axis=1
    )
    rgb = np.clip(rgb, 0.0, 1.0).astype(F32)
    return mood, {k: rgb[j] for j, k in enumerate(_KEYS)}


# --- scene elements ----------------------------------------------------------------------------


def _trees(
    rng: np.random.Generator, xs: np.ndarray, n: int, scale: float, light: float
) -> tuple[np.ndarray, np.ndarray]:
    """A tree line: silhouette height above its base per column (max over n cones/domes), and
    how much the front tree of each column faces the light (-1..1), so trees read as shapes."""
    px = rng.uniform(-0.05, 1.05, n).astype(F32)
    hh = (rng.uniform(0.4, 1.0, n) * scale).astype(F32)
    ww = rng.uniform(0.22, 0.5, n).astype(F32)
    kind = rng.random()
    half = (hh * ww)[:, None]
    u = (xs[None, :] - px[:, None]) / half
    d = np.minimum(np.abs(u), 1.0)
    cone = hh[:, None] * (1.0 - d)
    dome = hh[:, None] * np.sqrt(1.0 - d * d) * F32(0.8)
    if kind < 0.45:
        prof = cone
    elif kind < 0.7:
        prof = dome
    else:
        prof = np.where((np.arange(n) % 3 == 0)[:, None], dome, cone)
    front = prof.argmax(axis=0)
    cols = np.arange(xs.shape[0])
    side = np.clip(u[front, cols], -1.0, 1.0) * F32(light)
    return prof[front, cols], side


def _draw_trees(
    img: np.ndarray,
    yc: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    side: np.ndarray,
    tex: _Fbm,
    color: np.ndarray,
    haze_col: np.ndarray,
    haze: float,
    cover: np.ndarray | None = None,
) -> None:
    """Composite a tree band between top(x) and bottom(x), present where cover(x) > 0:
    lit/shaded halves per tree, leafy texture, darker towards the ground, hazed by distance."""
    h = img.shape[0]
    r0 = max(0, int(np.floor(float(top.min()) * h)))
    r1 = min(h, int(np.ceil(float(bottom.max()) * h)) + 1)
    if r1 <= r0:
        return
    y = yc[r0:r1]
    a = np.clip((y - top[None, :]) * F32(h) + 0.5, 0.0, 1.0)
    a *= np.clip((bottom[None, :] - y) * F32(h) + 0.5, 0.0, 1.0)
    if cover is not None:
        a *= np.minimum(cover * F32(4.0), 1.0)[None, :]
    depth = y - top[None, :]
    ground = _smoothstep(0.0, 0.12, depth)
    shade = (
        0.8
        + side[None, :] * F32(0.3) * (1.0 - ground)
        + tex.rows(h, img.shape[1], r0, r1) * F32(0.12)
    )
    shade = shade * (1.0 - ground * F32(0.3))
    col = color * shade[..., None]
    col = col + (haze_col[None] - col) * F32(haze)
    _over(img, a, col, r0)


def _render(rng: np.random.Generator, size: int) -> np.ndarray:
    h = w = size
    ys = (np.arange(h, dtype=F32) + 0.5) / F32(h)  # row centres in [0, 1]
    xs = (np.arange(w, dtype=F32) + 0.5) / F32(w)
    yc = ys[:, None]
    mood, pal = _palette(rng)
    sun_p, cov_lo, cov_hi, haze_far, glow_k = _MOOD_PARAMS[mood]

    # layout (all in image fractions)
    has_lake = rng.random() < 0.5
    horizon = float(rng.uniform(0.50, 0.68))
    water_y = horizon + float(rng.uniform(-0.02, 0.05))

    # --- sky: vertical gradient -----------------------------------------------------------
    t = np.clip(yc * F32(1.0 / horizon), 0.0, 1.0)
    curve = float(rng.uniform(0.0, 1.0))
    t = t * (1.0 - F32(curve)) + t * t * F32(curve)
    img = np.empty((h, w, 3), dtype=F32)
    img[:] = (pal["zenith"] + (pal["horizon"] - pal["zenith"]) * t[..., None])[:, :1, :]

    # --- stars (night only; drawn always so the stream is size-independent) ----------------
    star_xy = rng.random((160, 2), dtype=F32)
    star_b = rng.uniform(0.3, 1.0, 160).astype(F32)
    if mood == "night":
        n_st = max(20, min(160, (160 * size * size) // (256 * 256)))
        sy = (star_xy[:n_st, 1] * F32(horizon * h)).astype(np.int32)
        sx = (star_xy[:n_st, 0] * F32(w)).astype(np.int32)
        img[sy, sx] = np.maximum(img[sy, sx], star_b[:n_st, None] * F32(0.9))

    # --- sun / moon with a soft glow ------------------------------------------------------
    has_sun = rng.random() < sun_p
    sun_x = float(rng.uniform(0.1, 0.9))
    if mood == "dusk":
        sun_y = horizon - float(rng.uniform(0.02, 0.25))
    else:
        sun_y = float(rng.uniform(0.08, max(0.1, horizon - 0.12)))
    sun_r = float(rng.uniform(0.022, 0.055)) * (0.7 if mood == "night" else 1.0)
    glow_r = sun_r * float(rng.uniform(2.5, 6.0))
    dx = xs[None, :] - F32(sun_x)
    dy = yc - F32(sun_y)
    d2 = dx * dx + dy * dy
    glow = np.zeros((h, w), dtype=F32)
    if has_sun:
        glow = F32(glow_k) / (1.0 + d2 * F32(1.0 / (glow_r * glow_r)))
        img += glow[..., None] * pal["sun"]
        disc = np.clip((F32(sun_r) - np.sqrt(d2)) * F32(w) + 0.5, 0.0, 1.0)
        _over(img, disc, np.minimum(pal["sun"] * F32(1.15), 1.0).astype(F32))

    # --- clouds: thresholded fractal noise with soft edges, lit from above -----------------
    coverage = float(rng.uniform(cov_lo, cov_hi))
    cloud_noise = _Fbm(rng, 4, 2, 5, float(rng.uniform(0.45, 0.6)))
    soft = F32(0.25 + 0.4 * rng.random())
    opacity = F32(0.75 + 0.25 * rng.random())
    if coverage > 0.03:
        cloud_rows = max(2, int(np.ceil(horizon * h)))
        n = cloud_noise.rows(h, w, 0, cloud_rows)
        thr = F32(1.3 - 2.6 * coverage)
        a = _smoothstep(-1.0, 1.0, (n - thr) / soft)
        a *= _smoothstep(0.0, 0.18, F32(horizon) - yc[:cloud_rows])  # thin out at the horizon
        a *= opacity
        shift = max(1, int(round(0.02 * h)))
        above = np.concatenate([n[:1].repeat(shift, 0), n[:-shift]], axis=0)[: n.shape[0]]
        lit = np.clip(0.55 + (n - above) * F32(1.5) - (n - thr) * F32(0.15), 0.0, 1.0)
        col = pal["cloud_shade"] + (pal["cloud_lit"] - pal["cloud_shade"]) * lit[..., None]
        col = col + glow[:cloud_rows, :, None] * pal["sun"] * F32(0.6)
        _over(img, a, col)

    # aerial-perspective target: the horizon colour plus the sun's glow (no stars, no disc)
    hrow = min(h - 1, int(horizon * h))
    haze_col = np.minimum(pal["horizon"] + glow[hrow, :, None] * pal["sun"], 1.0).astype(F32)

    # shared 2-D texture for slopes (cheaper than one field per layer)
    tex = _Fbm(rng, 6, 6, 5, 0.55).rows(h, w)
    tex_dx = np.empty_like(tex)
    tex_dx[:, 1:-1] = tex[:, 2:] - tex[:, :-2]
    tex_dx[:, 0] = tex_dx[:, 1]
    tex_dx[:, -1] = tex_dx[:, -2]

    # --- mountain ridges: far (hazy, light) to near (dark, saturated) -----------------------
    n_layers = int(rng.integers(2, 6))
    light_dir = F32(1.0 if sun_x < 0.5 else -1.0)
    rock = pal["rock"]
    ground = pal["ground"]
    snow = np.minimum(pal["cloud_lit"] * F32(1.05), 1.0).astype(F32)
    for k in range(5):
        prof, coarse = _fbm1d(rng, w, 3, 8, float(rng.uniform(0.45, 0.62)), smooth=False)
        peak_x = float(rng.uniform(0.1, 0.9))
        peak_w = float(rng.uniform(0.25, 0.7))
        peak_k = float(rng.uniform(0.0, 1.0))
        jitter = float(rng.uniform(-0.04, 0.04))
        amp_j = float(rng.uniform(0.7, 1.3))
        fog_depth = float(rng.uniform(0.05, 0.2))
        green = float(rng.uniform(0.0, 1.0))
        snowy = rng.random() < 0.35
        tex_off = int(float(rng.random()) * w)  # a fraction of the width: size-independent
        if k >= n_layers:
            continue
        f = k / max(1, n_layers - 1)  # 0 far .. 1 near
        base = horizon - 0.30 + 0.22 * f + jitter
        amp = (0.10 - 0.05 * f) * amp_j
        env = 1.0 - ((xs - F32(peak_x)) * F32(1.0 / peak_w)) ** 2
        env = np.maximum(env, 0.0) * F32(peak_k * 1.5)
        ridge = F32(base) - F32(amp) * (prof * F32(0.5) + env)
        ridge = np.clip(ridge, 0.04, 0.98)
        r0 = int(np.floor(float(ridge.min()) * h))
        depth = yc[r0:] - ridge[None, :]
        alpha = np.clip(depth * F32(h) + 0.5, 0.0, 1.0)
        # depth below the smooth ridge: fog and face shading without per-column streaks
        smooth_ridge = F32(base) - F32(amp) * (coarse * F32(0.5) + env)
        depth_s = np.maximum(yc[r0:] - smooth_ridge[None, :], 0.0)
        haze = haze_far * (1.0 - f) * np.sqrt(1.0 - f) + 0.05
        body = _mix(rock, ground * F32(0.8), green * f)
        body = body * F32(1.0 - 0.35 * f)
        # slope shading: faces of the coarse ridge facing the sun are lit, fading with depth
        slope = np.empty(w, dtype=F32)
        slope[1:] = (coarse[1:] - coarse[:-1]) * F32(w * amp * 0.5)
        slope[0] = slope[1]
        face = np.clip(-slope * light_dir * F32(4.0), -1.0, 1.0)
        t_l = np.roll(tex, tex_off, axis=1)[r0:]
        warp = (xs[None, :] * F32(w) + t_l * F32(0.04 * w)).astype(np.int32)
        face_l = face[np.clip(warp, 0, w - 1)]
        fall = 1.0 / (1.0 + depth_s * F32(1.0 / 0.06))
        relief = np.roll(tex_dx, tex_off, axis=1)[r0:] * light_dir
        shade = face_l * fall * F32(0.3) + t_l * F32(0.06) + relief * F32(0.08 * w / 256)
        col = body * (1.0 + shade[..., None])
        if snowy and k < max(1, n_layers - 1):
            line = F32(base - amp * 0.6) + t_l * F32(0.02)
            sn = _smoothstep(0.0, 0.01, line - yc[r0:])
            sn = sn * (0.75 + 0.25 * np.clip(face_l, 0, 1))
            col = col + (snow * (0.8 + 0.2 * shade[..., None]) - col) * sn[..., None]
        fog = _smoothstep(0.0, fog_depth, depth_s) * F32(0.35 * (1.0 - f) + 0.1)
        hz = np.clip(F32(haze) + fog, 0.0, 1.0)[..., None]
        col = col + (haze_col[None] - col) * hz
        _over(img, alpha, col, r0)

    # --- far tree line along the shore / field edge ---------------------------------------
    tl_h, tl_side = _trees(rng, xs, 220, 0.035, float(light_dir))
    tl_jag, _ = _fbm1d(rng, w, 64, 3, 0.6, smooth=False)
    tl_cover = _fbm1d(rng, w, 3, 2, 0.5, smooth=True)[0]
    tl_thr = float(rng.uniform(-1.5, 1.0))
    has_treeline = rng.random() < 0.65
    edge_y = water_y if has_lake else horizon + float(rng.uniform(-0.02, 0.06))
    tree_tex = _Fbm(rng, 16, 48, 3, 0.6)
    if has_treeline:
        cover = _smoothstep(-0.3, 0.3, tl_cover - F32(tl_thr))
        top = F32(edge_y + 0.004) - np.maximum(tl_h * cover + tl_jag * F32(0.002), 0.0)
        bottom = np.full(w, edge_y + 0.03, dtype=F32)
        tl_haze = haze_far * 0.35
        _draw_trees(
            img, yc, top, bottom, tl_side, tree_tex, pal["forest"], haze_col, tl_haze, cover
        )

    # --- lake: mirrored scene, rippled, darkened and tinted ----------------------------------
    rip_row = rng.random(65, dtype=F32)
    rip_row2 = rng.random(257, dtype=F32)
    rip_amp = float(rng.uniform(0.002, 0.012))
    refl_k = float(rng.uniform(0.55, 0.85))
    wind_f = _Fbm(rng, 24, 2, 3, 0.5)
    ripples = _Fbm(rng, 96, 12, 2, 0.6)  # thin horizontal wavelets
    streaks = rng.random((12, 4), dtype=F32)
    n_streaks = int(rng.integers(3, 9))
    if has_lake:
        rw = int(round(water_y * h))
        rows = np.arange(rw, h)
        wind = wind_f.rows(h, w, rw, h)
        dist = (rows - rw + 0.5).astype(F32) / F32(h)  # distance below the shore line
        grow = 0.3 + dist * F32(6.0)
        sh = (_noise1d(rip_row, h, True)[rw:] - 0.5) + (_noise1d(rip_row2, h, False)[rw:] - 0.5)
        sh = sh * grow * F32(rip_amp * w * 2.0)
        src = 2 * rw - 1 - rows + np.round(sh * F32(0.3)).astype(np.int64)
        src = np.clip(src, 0, rw - 1)
        xf = np.arange(w, dtype=F32)[None, :] + sh[:, None]
        x0 = np.floor(xf)
        fx = (xf - x0)[..., None]
        x0 = np.clip(x0.astype(np.int64), 0, w - 1)
        x1 = np.minimum(x0 + 1, w - 1)
        a0 = img[src[:, None], x0]
        refl = a0 + (img[src[:, None], x1] - a0) * fx
        fres = np.clip(F32(refl_k) - dist * F32(1.2), 0.25, 0.95)
        fres = fres[:, None] * (1.0 + wind * F32(0.08))
        water = pal["water"] * (0.9 + wind[..., None] * F32(0.1))
        wavelets = ripples.rows(h, w, rw, h) * (F32(0.03) + dist[:, None] * F32(0.3))
        refl = refl * np.clip(0.92 + wavelets, 0.5, 1.5)[..., None]
        img[rw:] = water + (refl - water) * fres[..., None]
        # shore line: a thin slightly dark band
        img[rw : rw + 1] *= F32(0.85)
        # highlight streaks (glitter), clustered under the sun when there is one
        hl = (pal["sun"] if has_sun else pal["horizon"]) * F32(0.9)
        for sx_, sy_, sl_, sb_ in streaks[:n_streaks]:
            cy = water_y + 0.02 + float(sy_) * (1.0 - water_y - 0.02) * 0.9
            cx = sun_x + (float(sx_) - 0.5) * 0.25 if has_sun else float(sx_)
            half = (0.02 + 0.08 * float(sl_)) * (0.5 + (cy - water_y) * 2.0)
            ry = int(cy * h)
            if ry >= h:
                continue
            ax = 1.0 - np.abs(xs - F32(cx)) * F32(1.0 / half)
            ax = np.clip(ax, 0.0, 1.0) * F32(0.25 + 0.5 * float(sb_))
            img[ry] += ax[:, None] * (hl - img[ry]) * F32(0.9)
    # --- foreground: fields with perspective stripes, and/or a near forest ------------------
    fg_mode = float(rng.random())
    fg_edge, _ = _fbm1d(rng, w, 2, 4, 0.5, smooth=True)
    fg_y0 = float(rng.uniform(0.82, 0.96)) if has_lake else edge_y + float(rng.uniform(0.0, 0.06))
    fg_amp = float(rng.uniform(0.005, 0.03))
    patches = _Fbm(rng, 2, 3, 3, 0.5)
    grass = _Fbm(rng, 64, 40, 2, 0.8)
    stripe_kind = float(rng.random())
    stripe_f = float(rng.uniform(8, 30))
    vx = float(rng.uniform(-0.5, 1.5))
    near_base = float(rng.uniform(0.03, 0.3))
    near_band = float(rng.uniform(0.015, 0.08))
    near_h, near_side = _trees(rng, xs, 90, 0.16, float(light_dir))
    near_jag, _ = _fbm1d(rng, w, 96, 2, 0.6, smooth=False)
    near_cover = _fbm1d(rng, w, 2, 2, 0.5, smooth=True)[0]
    near_thr = float(rng.uniform(-0.8, 1.2))
    near_tex = _Fbm(rng, 24, 64, 3, 0.6)
    show_field = not has_lake or fg_mode < 0.45
    show_forest = fg_mode > 0.55 if has_lake else fg_mode > 0.4
    if show_field:
        top = F32(fg_y0) + fg_edge * F32(fg_amp)
        r0 = max(0, int(np.floor(float(top.min()) * h)))
        a = np.clip((yc[r0:] - top[None, :]) * F32(h) + 0.5, 0.0, 1.0)
        g2 = _smoothstep(-1.0, 1.0, patches.rows(h, w, r0))[..., None]
        col = ground + (pal["ground2"] - ground) * g2
        near = yc[r0:] - F32(fg_y0)
        grain = F32(0.08) + np.clip(near, 0.0, 1.0) * F32(0.3)  # coarser texture up close
        col = col * (1.0 + grass.rows(h, w, r0) * grain)[..., None]
        dv = np.maximum(yc[r0:] - F32(fg_y0 - 0.03), F32(0.01))
        if stripe_kind < 0.4:  # furrows converging to a vanishing point
            q = (xs[None, :] - F32(vx)) / dv * F32(stripe_f * 0.02)
        elif stripe_kind < 0.75:  # horizontal bands, denser towards the horizon
            q = F32(stripe_f * 0.015) / dv
        else:
            q = None
        if q is not None:
            tri = np.abs(q - np.floor(q) - 0.5) * 2.0  # triangle wave 0..1
            fade = _smoothstep(0.0, 0.08, dv)
            col = col * (1.0 + ((tri - 0.5) * F32(0.35) * fade)[..., None])
        col = col * (1.0 - np.clip(near, 0.0, 1.0) * F32(0.35))[..., None]
        col = (
            col
            + (haze_col[None] - col)
            * (F32(haze_far * 0.25) * (1.0 - _smoothstep(0, 0.2, near)))[..., None]
        )
        _over(img, a, col, r0)
    if show_forest:
        # a hedge / wood across the field, or a fringe of near trees along the bottom edge
        base_y = fg_y0 + near_base if show_field else fg_y0 + 0.03
        bottom_y = base_y + near_band if show_field and base_y < 0.97 else 1.1
        scale = float(np.clip(0.45 * (base_y - horizon + 0.05), 0.04, 0.25)) / 0.16
        cover = _smoothstep(-0.3, 0.3, near_cover - F32(near_thr))
        hgt = near_h * F32(scale) * cover
        top = F32(base_y) - np.maximum(hgt + near_jag * F32(0.004 * scale), 0.0)
        bottom = F32(bottom_y) + fg_edge * F32(0.01)
        hedge = cover if bottom_y < 1.0 else None  # a hedge only where there are trees
        near_haze = haze_far * 0.3 * float(1.0 - np.clip((base_y - horizon) / 0.3, 0.0, 1.0))
        _draw_trees(
            img, yc, top, bottom, near_side, near_tex, pal["forest"], haze_col, near_haze, hedge
        )

    # --- global grade: exposure and a faint vignette ---------------------------------------
    expo = F32(rng.uniform(0.9, 1.1))
    vig = (xs[None, :] - 0.5) ** 2 + (yc - 0.5) ** 2
    img *= (expo * (1.0 - vig * F32(0.25)))[..., None]
    return np.clip(img * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def render_landscape(seed: int, size: int = 256) -> np.ndarray:
    """HxWx3 uint8 RGB image, deterministic for (seed, size); the scene is the same at every
    size, only the resolution changes."""
    size = _check_int("size", size, MIN_SIZE)
    seed = _check_int("seed", seed, 0)
    return _render(np.random.default_rng(seed), size)


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
        tmp = out / f".{path.name}.{os.getpid()}.tmp"
        try:
            Image.fromarray(arr).save(
                tmp, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL
            )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(path)
    return paths

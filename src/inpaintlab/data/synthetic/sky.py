"""The sky: a vertical gradient, stars at night, a sun or moon with its glow, clouds, and the
haze colour that distant land fades to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from inpaintlab.data.synthetic.noise import F32, Fbm, over, smoothstep

if TYPE_CHECKING:
    from inpaintlab.data.synthetic.scene import Scene

N_STARS = 160  # drawn always (so the stream does not depend on the mood), shown at night


def gradient(rng: np.random.Generator, s: Scene) -> None:
    """Zenith to horizon colour, with a random curvature."""
    t = np.clip(s.yc * F32(1.0 / s.horizon), 0.0, 1.0)
    curve = float(rng.uniform(0.0, 1.0))
    t = t * (1.0 - F32(curve)) + t * t * F32(curve)
    s.img[:] = (s.pal["zenith"] + (s.pal["horizon"] - s.pal["zenith"]) * t[..., None])[:, :1, :]


def stars(rng: np.random.Generator, s: Scene) -> None:
    """Single bright pixels above the horizon, as many per area at every size (night only)."""
    star_xy = rng.random((N_STARS, 2), dtype=F32)
    star_b = rng.uniform(0.3, 1.0, N_STARS).astype(F32)
    if s.mood == "night":
        n_st = max(20, min(N_STARS, (N_STARS * s.h * s.w) // (256 * 256)))
        sy = (star_xy[:n_st, 1] * F32(s.horizon * s.h)).astype(np.int32)
        sx = (star_xy[:n_st, 0] * F32(s.w)).astype(np.int32)
        s.img[sy, sx] = np.maximum(s.img[sy, sx], star_b[:n_st, None] * F32(0.9))


def sun(rng: np.random.Generator, s: Scene) -> None:
    """A sun (or moon) disc with a soft glow; sets s.has_sun, s.sun_x and s.glow."""
    s.has_sun = rng.random() < s.params.sun_p
    s.sun_x = float(rng.uniform(0.1, 0.9))
    if s.mood == "dusk":
        sun_y = s.horizon - float(rng.uniform(0.02, 0.25))
    else:
        sun_y = float(rng.uniform(0.08, max(0.1, s.horizon - 0.12)))
    sun_r = float(rng.uniform(0.022, 0.055)) * (0.7 if s.mood == "night" else 1.0)
    glow_r = sun_r * float(rng.uniform(2.5, 6.0))
    dx = s.xs[None, :] - F32(s.sun_x)
    dy = s.yc - F32(sun_y)
    d2 = dx * dx + dy * dy
    s.glow = np.zeros((s.h, s.w), dtype=F32)
    if s.has_sun:
        s.glow = F32(s.params.glow_k) / (1.0 + d2 * F32(1.0 / (glow_r * glow_r)))
        s.img += s.glow[..., None] * s.pal["sun"]
        disc = np.clip((F32(sun_r) - np.sqrt(d2)) * F32(s.w) + 0.5, 0.0, 1.0)
        over(s.img, disc, np.minimum(s.pal["sun"] * F32(1.15), 1.0).astype(F32))


def clouds(rng: np.random.Generator, s: Scene) -> None:
    """Thresholded fractal noise with soft edges, lit from above, thinning out at the horizon."""
    h, w, pal = s.h, s.w, s.pal
    coverage = float(rng.uniform(s.params.cover_lo, s.params.cover_hi))
    cloud_noise = Fbm(rng, 4, 2, 5, float(rng.uniform(0.45, 0.6)))
    soft = F32(0.25 + 0.4 * rng.random())
    opacity = F32(0.75 + 0.25 * rng.random())
    if coverage <= 0.03:
        return
    cloud_rows = max(2, int(np.ceil(s.horizon * h)))
    n = cloud_noise.rows(h, w, 0, cloud_rows)
    thr = F32(1.3 - 2.6 * coverage)
    a = smoothstep(-1.0, 1.0, (n - thr) / soft)
    a *= smoothstep(0.0, 0.18, F32(s.horizon) - s.yc[:cloud_rows])  # thin out at the horizon
    a *= opacity
    shift = max(1, int(round(0.02 * h)))
    above = np.concatenate([n[:1].repeat(shift, 0), n[:-shift]], axis=0)[: n.shape[0]]
    lit = np.clip(0.55 + (n - above) * F32(1.5) - (n - thr) * F32(0.15), 0.0, 1.0)
    col = pal["cloud_shade"] + (pal["cloud_lit"] - pal["cloud_shade"]) * lit[..., None]
    col = col + s.glow[:cloud_rows, :, None] * pal["sun"] * F32(0.6)
    over(s.img, a, col)


def haze(s: Scene) -> None:
    """The aerial-perspective target: the horizon colour plus the sun's glow (no stars, no disc)."""
    hrow = min(s.h - 1, int(s.horizon * s.h))
    s.haze_col = np.minimum(s.pal["horizon"] + s.glow[hrow, :, None] * s.pal["sun"], 1.0).astype(
        F32
    )

"""A lake below the shore line: the scene above mirrored, rippled, darkened and tinted, with
glitter streaks under the sun."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from inpaintlab.data.synthetic.noise import F32, Fbm, noise1d

if TYPE_CHECKING:
    from inpaintlab.data.synthetic.scene import Scene

N_STREAKS = 12  # drawn always; 3-8 are shown


def lake(rng: np.random.Generator, s: Scene) -> None:
    rip_row = rng.random(65, dtype=F32)
    rip_row2 = rng.random(257, dtype=F32)
    rip_amp = float(rng.uniform(0.002, 0.012))
    refl_k = float(rng.uniform(0.55, 0.85))
    wind_f = Fbm(rng, 24, 2, 3, 0.5)
    ripples = Fbm(rng, 96, 12, 2, 0.6)  # thin horizontal wavelets
    streaks = rng.random((N_STREAKS, 4), dtype=F32)
    n_streaks = int(rng.integers(3, 9))
    if not s.has_lake:
        return
    img, h, w, pal = s.img, s.h, s.w, s.pal
    rw = int(round(s.water_y * h))
    rows = np.arange(rw, h)
    wind = wind_f.rows(h, w, rw, h)
    dist = (rows - rw + 0.5).astype(F32) / F32(h)  # distance below the shore line
    grow = 0.3 + dist * F32(6.0)
    sh = (noise1d(rip_row, h, True)[rw:] - 0.5) + (noise1d(rip_row2, h, False)[rw:] - 0.5)
    sh = sh * grow * F32(rip_amp * w * 2.0)
    # the reflection: the row mirrored about the shore line, shifted sideways by the ripples
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
    _glitter(s, streaks[:n_streaks])


def _glitter(s: Scene, streaks: np.ndarray) -> None:
    """Highlight streaks on the water, clustered under the sun when there is one."""
    img, h, water_y = s.img, s.h, s.water_y
    hl = (s.pal["sun"] if s.has_sun else s.pal["horizon"]) * F32(0.9)
    for sx_, sy_, sl_, sb_ in streaks:
        cy = water_y + 0.02 + float(sy_) * (1.0 - water_y - 0.02) * 0.9
        cx = s.sun_x + (float(sx_) - 0.5) * 0.25 if s.has_sun else float(sx_)
        half = (0.02 + 0.08 * float(sl_)) * (0.5 + (cy - water_y) * 2.0)
        ry = int(cy * h)
        if ry >= h:
            continue
        ax = 1.0 - np.abs(s.xs - F32(cx)) * F32(1.0 / half)
        ax = np.clip(ax, 0.0, 1.0) * F32(0.25 + 0.5 * float(sb_))
        img[ry] += ax[:, None] * (hl - img[ry]) * F32(0.9)

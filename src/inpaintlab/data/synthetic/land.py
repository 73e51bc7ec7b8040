"""The land: mountain ridges, tree lines (far along the shore, near as a hedge or a fringe),
and the foreground field with its perspective stripes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inpaintlab.data.synthetic.noise import F32, Fbm, fbm1d, mix, over, smoothstep

if TYPE_CHECKING:
    from inpaintlab.data.synthetic.scene import Scene

N_RIDGES = 5  # drawn always; 2-5 of them are shown


# --- mountains ---------------------------------------------------------------------------------


@dataclass
class _Ridge:
    """The random draws of one mountain ridge."""

    prof: np.ndarray  # ridge line noise per column
    coarse: np.ndarray  # its smooth part: fog and face shading without per-column streaks
    peak_x: float
    peak_w: float
    peak_k: float
    jitter: float
    amp_j: float
    fog_depth: float
    green: float
    snowy: bool
    tex_off: int

    @classmethod
    def draw(cls, rng: np.random.Generator, w: int) -> _Ridge:
        prof, coarse = fbm1d(rng, w, 3, 8, float(rng.uniform(0.45, 0.62)), smooth=False)
        peak_x = float(rng.uniform(0.1, 0.9))
        peak_w = float(rng.uniform(0.25, 0.7))
        peak_k = float(rng.uniform(0.0, 1.0))
        jitter = float(rng.uniform(-0.04, 0.04))
        amp_j = float(rng.uniform(0.7, 1.3))
        fog_depth = float(rng.uniform(0.05, 0.2))
        green = float(rng.uniform(0.0, 1.0))
        snowy = rng.random() < 0.35
        tex_off = int(float(rng.random()) * w)  # a fraction of the width: size-independent
        return cls(
            prof, coarse, peak_x, peak_w, peak_k, jitter, amp_j, fog_depth, green, snowy, tex_off
        )


def mountains(rng: np.random.Generator, s: Scene) -> None:
    """Ridges from far (hazy, light) to near (dark, saturated), faces lit from the sun's side."""
    h, w = s.h, s.w
    # shared 2-D texture for slopes (cheaper than one field per layer)
    tex = Fbm(rng, 6, 6, 5, 0.55).rows(h, w)
    tex_dx = np.empty_like(tex)
    tex_dx[:, 1:-1] = tex[:, 2:] - tex[:, :-2]
    tex_dx[:, 0] = tex_dx[:, 1]
    tex_dx[:, -1] = tex_dx[:, -2]
    n_layers = int(rng.integers(2, 6))
    for k in range(N_RIDGES):
        ridge = _Ridge.draw(rng, w)
        if k < n_layers:
            _draw_ridge(s, ridge, k, n_layers, tex, tex_dx)


def _draw_ridge(
    s: Scene, r: _Ridge, k: int, n_layers: int, tex: np.ndarray, tex_dx: np.ndarray
) -> None:
    h, w, xs, yc, light_dir = s.h, s.w, s.xs, s.yc, s.light_dir
    snow = np.minimum(s.pal["cloud_lit"] * F32(1.05), 1.0).astype(F32)
    f = k / max(1, n_layers - 1)  # 0 far .. 1 near
    base = s.horizon - 0.30 + 0.22 * f + r.jitter
    amp = (0.10 - 0.05 * f) * r.amp_j
    env = 1.0 - ((xs - F32(r.peak_x)) * F32(1.0 / r.peak_w)) ** 2
    env = np.maximum(env, 0.0) * F32(r.peak_k * 1.5)
    ridge = F32(base) - F32(amp) * (r.prof * F32(0.5) + env)
    ridge = np.clip(ridge, 0.04, 0.98)
    r0 = int(np.floor(float(ridge.min()) * h))
    depth = yc[r0:] - ridge[None, :]
    alpha = np.clip(depth * F32(h) + 0.5, 0.0, 1.0)
    # depth below the smooth ridge: fog and face shading without per-column streaks
    smooth_ridge = F32(base) - F32(amp) * (r.coarse * F32(0.5) + env)
    depth_s = np.maximum(yc[r0:] - smooth_ridge[None, :], 0.0)
    haze = s.params.haze_far * (1.0 - f) * np.sqrt(1.0 - f) + 0.05
    body = mix(s.pal["rock"], s.pal["ground"] * F32(0.8), r.green * f)
    body = body * F32(1.0 - 0.35 * f)
    # slope shading: faces of the coarse ridge facing the sun are lit, fading with depth
    slope = np.empty(w, dtype=F32)
    slope[1:] = (r.coarse[1:] - r.coarse[:-1]) * F32(w * amp * 0.5)
    slope[0] = slope[1]
    face = np.clip(-slope * light_dir * F32(4.0), -1.0, 1.0)
    t_l = np.roll(tex, r.tex_off, axis=1)[r0:]
    warp = (xs[None, :] * F32(w) + t_l * F32(0.04 * w)).astype(np.int32)
    face_l = face[np.clip(warp, 0, w - 1)]
    fall = 1.0 / (1.0 + depth_s * F32(1.0 / 0.06))
    relief = np.roll(tex_dx, r.tex_off, axis=1)[r0:] * light_dir
    shade = face_l * fall * F32(0.3) + t_l * F32(0.06) + relief * F32(0.08 * w / 256)
    col = body * (1.0 + shade[..., None])
    if r.snowy and k < max(1, n_layers - 1):
        line = F32(base - amp * 0.6) + t_l * F32(0.02)
        sn = smoothstep(0.0, 0.01, line - yc[r0:])
        sn = sn * (0.75 + 0.25 * np.clip(face_l, 0, 1))
        col = col + (snow * (0.8 + 0.2 * shade[..., None]) - col) * sn[..., None]
    fog = smoothstep(0.0, r.fog_depth, depth_s) * F32(0.35 * (1.0 - f) + 0.1)
    hz = np.clip(F32(haze) + fog, 0.0, 1.0)[..., None]
    col = col + (s.haze_col[None] - col) * hz
    over(s.img, alpha, col, r0)


# --- trees -------------------------------------------------------------------------------------


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


@dataclass
class _TreeLine:
    """The random draws of a tree line: silhouette, jagged top, where it is present."""

    height: np.ndarray
    side: np.ndarray
    jag: np.ndarray
    cover_noise: np.ndarray
    threshold: float

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        s: Scene,
        n: int,
        scale: float,
        jag: tuple[int, int],
        cover_cells: int,
        threshold: tuple[float, float],
    ) -> _TreeLine:
        height, side = _trees(rng, s.xs, n, scale, float(s.light_dir))
        jagged, _ = fbm1d(rng, s.w, jag[0], jag[1], 0.6, smooth=False)
        cover = fbm1d(rng, s.w, cover_cells, 2, 0.5, smooth=True)[0]
        return cls(height, side, jagged, cover, float(rng.uniform(*threshold)))

    def cover(self) -> np.ndarray:
        """0..1 per column: where the tree line stands."""
        return smoothstep(-0.3, 0.3, self.cover_noise - F32(self.threshold))


def _draw_trees(
    s: Scene,
    top: np.ndarray,
    bottom: np.ndarray,
    side: np.ndarray,
    tex: Fbm,
    haze: float,
    cover: np.ndarray | None = None,
) -> None:
    """Composite a tree band between top(x) and bottom(x), present where cover(x) > 0:
    lit/shaded halves per tree, leafy texture, darker towards the ground, hazed by distance."""
    img, h = s.img, s.h
    r0 = max(0, int(np.floor(float(top.min()) * h)))
    r1 = min(h, int(np.ceil(float(bottom.max()) * h)) + 1)
    if r1 <= r0:
        return
    y = s.yc[r0:r1]
    a = np.clip((y - top[None, :]) * F32(h) + 0.5, 0.0, 1.0)
    a *= np.clip((bottom[None, :] - y) * F32(h) + 0.5, 0.0, 1.0)
    if cover is not None:
        a *= np.minimum(cover * F32(4.0), 1.0)[None, :]
    depth = y - top[None, :]
    ground = smoothstep(0.0, 0.12, depth)
    shade = (
        0.8
        + side[None, :] * F32(0.3) * (1.0 - ground)
        + tex.rows(h, img.shape[1], r0, r1) * F32(0.12)
    )
    shade = shade * (1.0 - ground * F32(0.3))
    col = s.pal["forest"] * shade[..., None]
    col = col + (s.haze_col[None] - col) * F32(haze)
    over(img, a, col, r0)


def far_trees(rng: np.random.Generator, s: Scene) -> None:
    """A far tree line along the shore or the field's edge; sets s.edge_y."""
    line = _TreeLine.draw(rng, s, 220, 0.035, (64, 3), 3, (-1.5, 1.0))
    has_treeline = rng.random() < 0.65
    s.edge_y = s.water_y if s.has_lake else s.horizon + float(rng.uniform(-0.02, 0.06))
    tex = Fbm(rng, 16, 48, 3, 0.6)
    if has_treeline:
        cover = line.cover()
        top = F32(s.edge_y + 0.004) - np.maximum(line.height * cover + line.jag * F32(0.002), 0.0)
        bottom = np.full(s.w, s.edge_y + 0.03, dtype=F32)
        _draw_trees(s, top, bottom, line.side, tex, s.params.haze_far * 0.35, cover)


# --- foreground --------------------------------------------------------------------------------


def foreground(rng: np.random.Generator, s: Scene) -> None:
    """Fields with perspective stripes, and/or a near forest: a hedge or wood across the field,
    or a fringe of near trees along the bottom edge."""
    fg_mode = float(rng.random())
    fg_edge, _ = fbm1d(rng, s.w, 2, 4, 0.5, smooth=True)
    if s.has_lake:
        fg_y0 = float(rng.uniform(0.82, 0.96))
    else:
        fg_y0 = s.edge_y + float(rng.uniform(0.0, 0.06))
    fg_amp = float(rng.uniform(0.005, 0.03))
    patches = Fbm(rng, 2, 3, 3, 0.5)
    grass = Fbm(rng, 64, 40, 2, 0.8)
    stripe_kind = float(rng.random())
    stripe_f = float(rng.uniform(8, 30))
    vx = float(rng.uniform(-0.5, 1.5))
    near_base = float(rng.uniform(0.03, 0.3))
    near_band = float(rng.uniform(0.015, 0.08))
    near = _TreeLine.draw(rng, s, 90, 0.16, (96, 2), 2, (-0.8, 1.2))
    near_tex = Fbm(rng, 24, 64, 3, 0.6)
    show_field = not s.has_lake or fg_mode < 0.45
    show_forest = fg_mode > 0.55 if s.has_lake else fg_mode > 0.4
    if show_field:
        top = F32(fg_y0) + fg_edge * F32(fg_amp)
        _draw_field(s, top, fg_y0, patches, grass, stripe_kind, stripe_f, vx)
    if show_forest:
        base_y = fg_y0 + near_base if show_field else fg_y0 + 0.03
        bottom_y = base_y + near_band if show_field and base_y < 0.97 else 1.1
        scale = float(np.clip(0.45 * (base_y - s.horizon + 0.05), 0.04, 0.25)) / 0.16
        cover = near.cover()
        hgt = near.height * F32(scale) * cover
        top = F32(base_y) - np.maximum(hgt + near.jag * F32(0.004 * scale), 0.0)
        bottom = F32(bottom_y) + fg_edge * F32(0.01)
        hedge = cover if bottom_y < 1.0 else None  # a hedge only where there are trees
        fade = float(1.0 - np.clip((base_y - s.horizon) / 0.3, 0.0, 1.0))
        _draw_trees(s, top, bottom, near.side, near_tex, s.params.haze_far * 0.3 * fade, hedge)


def _draw_field(
    s: Scene,
    top: np.ndarray,
    fg_y0: float,
    patches: Fbm,
    grass: Fbm,
    stripe_kind: float,
    stripe_f: float,
    vx: float,
) -> None:
    """Ground below top(x): two-tone patches, grass grain that coarsens up close, furrows or
    bands in perspective, darker and less hazy towards the viewer."""
    h, w, xs, yc, pal = s.h, s.w, s.xs, s.yc, s.pal
    ground = pal["ground"]
    r0 = max(0, int(np.floor(float(top.min()) * h)))
    a = np.clip((yc[r0:] - top[None, :]) * F32(h) + 0.5, 0.0, 1.0)
    g2 = smoothstep(-1.0, 1.0, patches.rows(h, w, r0))[..., None]
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
        fade = smoothstep(0.0, 0.08, dv)
        col = col * (1.0 + ((tri - 0.5) * F32(0.35) * fade)[..., None])
    col = col * (1.0 - np.clip(near, 0.0, 1.0) * F32(0.35))[..., None]
    col = (
        col
        + (s.haze_col[None] - col)
        * (F32(s.params.haze_far * 0.25) * (1.0 - smoothstep(0, 0.2, near)))[..., None]
    )
    over(s.img, a, col, r0)

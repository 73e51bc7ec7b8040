"""Colours of a landscape: a time of day (mood), its palette, jittered and hue-rotated."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from inpaintlab.data.synthetic.noise import F32

# Base palettes (linear-ish sRGB in [0, 1]); each image jitters and hue-rotates one of them.
PALETTES: dict[str, dict[str, tuple[float, float, float]]] = {
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
MOODS = ("day", "dusk", "overcast", "night")
MOOD_P = (0.42, 0.25, 0.19, 0.14)
KEYS = tuple(PALETTES["day"])


class MoodParams(NamedTuple):
    sun_p: float  # probability of a sun (or moon)
    cover_lo: float  # cloud coverage range
    cover_hi: float
    haze_far: float  # aerial perspective of the farthest layer
    glow_k: float  # strength of the sun's glow


MOOD_PARAMS = {
    "day": MoodParams(0.75, 0.0, 0.7, 0.60, 0.35),
    "dusk": MoodParams(0.85, 0.1, 0.8, 0.50, 0.70),
    "overcast": MoodParams(0.25, 0.6, 1.0, 0.70, 0.15),
    "night": MoodParams(0.70, 0.0, 0.6, 0.40, 0.25),
}


def palette(rng: np.random.Generator) -> tuple[str, dict[str, np.ndarray]]:
    """Pick a time of day, jitter it, then rotate hue and scale saturation (YIQ) so that the
    same structure appears in many colourings."""
    mood = MOODS[int(rng.choice(len(MOODS), p=MOOD_P))]
    base = np.array([PALETTES[mood][k] for k in KEYS], dtype=np.float64)
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
    return mood, {k: rgb[j] for j, k in enumerate(KEYS)}

"""One landscape, drawn layer by layer from the back: sky, mountains, trees, lake, foreground.

Every layer makes all of its random draws whether or not it is shown, in a fixed order, so the
random stream (and with it every later layer) does not depend on what earlier layers showed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inpaintlab.data.synthetic import lake, land, sky
from inpaintlab.data.synthetic.noise import F32
from inpaintlab.data.synthetic.palette import MOOD_PARAMS, MoodParams, palette


@dataclass
class Scene:
    """The picture being drawn (composited in place), its sampling grid, and what later layers
    read of earlier ones. Positions are fractions of the image."""

    img: np.ndarray  # h x w x 3 float32
    xs: np.ndarray  # column centres in [0, 1]
    yc: np.ndarray  # row centres in [0, 1], shape (h, 1)
    mood: str
    pal: dict[str, np.ndarray]
    params: MoodParams
    has_lake: bool
    horizon: float
    water_y: float
    # set by the sky
    has_sun: bool = False
    sun_x: float = 0.0
    glow: np.ndarray | None = None  # h x w: the sun's glow (zeros without a sun)
    haze_col: np.ndarray | None = None  # w x 3: aerial-perspective target colour per column
    # set by the far tree line: the shore or the field's far edge
    edge_y: float = 0.0

    @property
    def h(self) -> int:
        return self.img.shape[0]

    @property
    def w(self) -> int:
        return self.img.shape[1]

    @property
    def light_dir(self) -> np.float32:
        """+1 when the light comes from the left, -1 from the right."""
        return F32(1.0 if self.sun_x < 0.5 else -1.0)


def layout(rng: np.random.Generator, size: int) -> Scene:
    """Colours and the large-scale layout: time of day, lake or not, horizon and shore line."""
    h = w = size
    ys = (np.arange(h, dtype=F32) + 0.5) / F32(h)  # row centres in [0, 1]
    xs = (np.arange(w, dtype=F32) + 0.5) / F32(w)
    mood, pal = palette(rng)
    has_lake = rng.random() < 0.5
    horizon = float(rng.uniform(0.50, 0.68))
    water_y = horizon + float(rng.uniform(-0.02, 0.05))
    img = np.empty((h, w, 3), dtype=F32)
    return Scene(img, xs, ys[:, None], mood, pal, MOOD_PARAMS[mood], has_lake, horizon, water_y)


def grade(rng: np.random.Generator, s: Scene) -> np.ndarray:
    """Exposure and a faint vignette, then 8-bit RGB."""
    expo = F32(rng.uniform(0.9, 1.1))
    vig = (s.xs[None, :] - 0.5) ** 2 + (s.yc - 0.5) ** 2
    s.img *= (expo * (1.0 - vig * F32(0.25)))[..., None]
    return np.clip(s.img * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def render(rng: np.random.Generator, size: int) -> np.ndarray:
    """size x size x 3 uint8 RGB; every draw comes from rng, in the order of the layers."""
    s = layout(rng, size)
    sky.gradient(rng, s)
    sky.stars(rng, s)
    sky.sun(rng, s)
    sky.clouds(rng, s)
    sky.haze(s)
    land.mountains(rng, s)
    land.far_trees(rng, s)
    lake.lake(rng, s)
    land.foreground(rng, s)
    return grade(rng, s)

"""Mask generators for inpainting and outpainting, in the style of LaMa's.

A mask is a float32 array of shape (H, W) holding exactly 0.0 (known pixel) or 1.0 (pixel to
generate). Every generator is a small dataclass with explicit parameters and is called as
``generator(rng, height, width)``; all randomness comes from the ``rng`` it is given, so a seed
fixes the mask. Sizes are fractions of the image, so one config serves 32, 64 and 256 px alike.

The numbers of every mask family are written once, in ``conf/mask/family/*.yaml``: the training
samplers (``conf/mask/*.yaml``, built with ``hydra.utils.instantiate``) compose them, and the fixed
evaluation families the prepare stage draws val/test masks from (``EVAL_FAMILIES``) are built
from the same files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MaskGenerator = Callable[[np.random.Generator, int, int], np.ndarray]
SIDES = ("left", "right", "top", "bottom")
# conf/mask/family/, beside src/ (as the stage apps' config_path="../../conf")
FAMILY_DIR = Path(__file__).resolve().parents[3] / "conf" / "mask" / "family"


def _check_size(height: int, width: int) -> None:
    if height < 2 or width < 2:
        raise ValueError(f"mask size must be at least 2x2, got {height}x{width}")


def _check_fraction_range(name: str, low: float, high: float, *, upper: float = 1.0) -> None:
    if not 0 <= low <= high <= upper:
        raise ValueError(f"{name}: need 0 <= min <= max <= {upper}, got [{low}, {high}]")


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; expected one of {SIDES}")


def _band(mask: np.ndarray, side: str, depth: int) -> None:
    """Set a band of `depth` pixels along one border to 1, in place."""
    if side == "left":
        mask[:, :depth] = 1
    elif side == "right":
        mask[:, mask.shape[1] - depth :] = 1
    elif side == "top":
        mask[:depth, :] = 1
    else:
        mask[mask.shape[0] - depth :, :] = 1


@dataclass
class BoxMask:
    """1..max_boxes rectangular holes kept `margin` away from the borders (pure inpainting)."""

    min_size: float = 0.2
    max_size: float = 0.6
    margin: float = 0.05
    max_boxes: int = 1

    def __post_init__(self) -> None:
        _check_fraction_range("BoxMask size", self.min_size, self.max_size)
        if not 0 <= self.margin < 0.5 or self.min_size + 2 * self.margin > 1:
            raise ValueError(
                f"BoxMask: margin {self.margin} leaves no room for boxes of {self.min_size}"
            )
        if self.max_boxes < 1:
            raise ValueError(f"BoxMask: max_boxes must be >= 1, got {self.max_boxes}")

    def _margin_px(self, size: int) -> int:
        # At least one clear pixel whenever a margin is asked for, so tiny images keep the promise.
        return max(1, round(self.margin * size)) if self.margin > 0 else 0

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        _check_size(height, width)
        mask = np.zeros((height, width), np.float32)
        my, mx = self._margin_px(height), self._margin_px(width)
        room_h, room_w = height - 2 * my, width - 2 * mx
        if room_h < 1 or room_w < 1:
            raise ValueError(f"BoxMask: margin {self.margin} leaves no room in {height}x{width}")
        for _ in range(int(rng.integers(1, self.max_boxes + 1))):
            bh = int(np.clip(round(rng.uniform(self.min_size, self.max_size) * height), 1, room_h))
            bw = int(np.clip(round(rng.uniform(self.min_size, self.max_size) * width), 1, room_w))
            top = my + int(rng.integers(0, room_h - bh + 1))
            left = mx + int(rng.integers(0, room_w - bw + 1))
            mask[top : top + bh, left : left + bw] = 1
        return mask


@dataclass
class StrokeMask:
    """LaMa-style free-form brush strokes: random walks of thick line segments with round joints.

    Widths and segment lengths are fractions of min(H, W); each stroke keeps one brush width and
    turns by at most `max_turn` radians per vertex, bouncing off the image borders.
    """

    min_width: float = 0.04
    max_width: float = 0.10
    min_strokes: int = 1
    max_strokes: int = 5
    max_vertices: int = 6
    max_length: float = 0.3
    min_length: float = 0.05
    max_turn: float = 1.5

    def __post_init__(self) -> None:
        _check_fraction_range("StrokeMask width", self.min_width, self.max_width)
        _check_fraction_range("StrokeMask length", self.min_length, self.max_length, upper=2.0)
        if not 1 <= self.min_strokes <= self.max_strokes:
            raise ValueError(
                f"StrokeMask: need 1 <= min_strokes <= max_strokes, got {self.min_strokes}, {self.max_strokes}"
            )
        if self.max_vertices < 1 or self.max_turn < 0:
            raise ValueError("StrokeMask: max_vertices must be >= 1 and max_turn >= 0")

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        _check_size(height, width)
        canvas = np.zeros((height, width), np.uint8)
        scale = min(height, width)
        for _ in range(int(rng.integers(self.min_strokes, self.max_strokes + 1))):
            thickness = max(1, round(rng.uniform(self.min_width, self.max_width) * scale))
            x, y = rng.uniform(0, width - 1), rng.uniform(0, height - 1)
            angle = rng.uniform(0, 2 * math.pi)
            cv2.circle(canvas, (round(x), round(y)), thickness // 2, 1, -1)
            for vertex in range(int(rng.integers(1, self.max_vertices + 1))):
                if vertex:
                    angle += rng.uniform(-self.max_turn, self.max_turn)
                length = rng.uniform(self.min_length, self.max_length) * scale
                nx = _reflect(x + length * math.cos(angle), width - 1)
                ny = _reflect(y + length * math.sin(angle), height - 1)
                if (nx, ny) != (x, y):
                    # Keep walking away from a border we bounced off.
                    angle = math.atan2(ny - y, nx - x)
                cv2.line(canvas, (round(x), round(y)), (round(nx), round(ny)), 1, thickness)
                cv2.circle(canvas, (round(nx), round(ny)), thickness // 2, 1, -1)
                x, y = nx, ny
        return canvas.astype(np.float32)


def _reflect(value: float, upper: float) -> float:
    """Mirror a coordinate back into [0, upper] so strokes bounce instead of hugging the border."""
    if value < 0:
        value = -value
    if value > upper:
        value = 2 * upper - value
    return float(np.clip(value, 0, upper))


@dataclass
class OutpaintMask:
    """Bands along 1..max_sides distinct borders, each min_frac..max_frac of that side's extent."""

    sides: Sequence[str] = SIDES
    min_frac: float = 0.1
    max_frac: float = 0.5
    max_sides: int = 1

    def __post_init__(self) -> None:
        # Hydra hands lists over; a tuple keeps eq and repr stable.
        self.sides = tuple(self.sides)
        if not self.sides or len(set(self.sides)) != len(self.sides):
            raise ValueError(
                f"OutpaintMask: sides must be non-empty and distinct, got {self.sides}"
            )
        for side in self.sides:
            _check_side(side)
        _check_fraction_range("OutpaintMask frac", self.min_frac, self.max_frac)
        if self.max_sides < 1:
            raise ValueError(f"OutpaintMask: max_sides must be >= 1, got {self.max_sides}")

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        _check_size(height, width)
        mask = np.zeros((height, width), np.float32)
        count = int(rng.integers(1, min(self.max_sides, len(self.sides)) + 1))
        for index in rng.choice(len(self.sides), size=count, replace=False):
            side = self.sides[int(index)]
            extent = width if side in ("left", "right") else height
            depth = int(
                np.clip(round(rng.uniform(self.min_frac, self.max_frac) * extent), 1, extent - 1)
            )
            _band(mask, side, depth)
        return mask


@dataclass
class FixedOutpaintMask:
    """The same band every call (Boundless protocol: right 25% / right 50%)."""

    side: str = "right"
    frac: float = 0.25

    def __post_init__(self) -> None:
        _check_side(self.side)
        if not 0 < self.frac < 1:
            raise ValueError(f"FixedOutpaintMask: frac must be in (0, 1), got {self.frac}")

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        _check_size(height, width)
        mask = np.zeros((height, width), np.float32)
        extent = width if self.side in ("left", "right") else height
        _band(mask, self.side, int(np.clip(round(self.frac * extent), 1, extent - 1)))
        return mask


@dataclass
class MixedMask:
    """Draws one family per call with probability proportional to its weight."""

    generators: Mapping[str, MaskGenerator]
    weights: Mapping[str, float]
    last_family: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.generators = dict(self.generators)
        self.weights = {name: float(weight) for name, weight in self.weights.items()}
        if set(self.generators) != set(self.weights):
            raise ValueError(
                f"MixedMask: generators {sorted(self.generators)} and weights {sorted(self.weights)} differ"
            )
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(
                f"MixedMask: weights must be >= 0 with a positive sum, got {self.weights}"
            )
        self._names = list(self.generators)
        total = sum(self.weights.values())
        self._probs = np.array([self.weights[n] / total for n in self._names])

    def choose(self, rng: np.random.Generator) -> str:
        """Draw a family name; AreaLimit uses it to retry within one family (keeps the weights)."""
        name = self._names[int(rng.choice(len(self._names), p=self._probs))]
        self.last_family = name
        return name

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[str, np.ndarray]:
        """(family name, mask): lets callers log or stratify by the family actually drawn."""
        name = self.choose(rng)
        return name, self.generators[name](rng, height, width)

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return self.sample(rng, height, width)[1]


@dataclass
class AreaLimit:
    """Resample until the masked fraction lies in [min_area, max_area]; repair after max_tries.

    The repair keeps the mask's shape recognisable (a too-large mask loses whole columns or rows
    from one side; a too-small one gains a box), and the result is never empty nor full.
    """

    generator: MaskGenerator
    min_area: float = 0.01
    max_area: float = 0.6
    max_tries: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.min_area < self.max_area < 1:
            raise ValueError(
                f"AreaLimit: need 0 <= min_area < max_area < 1, got [{self.min_area}, {self.max_area}]"
            )
        if self.max_tries < 1:
            raise ValueError(f"AreaLimit: max_tries must be >= 1, got {self.max_tries}")

    def _ok(self, area: float) -> bool:
        return area > 0 and self.min_area <= area <= self.max_area

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[str, np.ndarray]:
        """(family name, mask); the name comes from the wrapped generator's own `sample` if any.

        A MixedMask's family is drawn once and only its mask is retried: re-drawing the family on
        each rejection would starve families that are often too large (e.g. multi-side outpaint).
        """
        _check_size(height, width)
        name, draw = type(self.generator).__name__, self.generator
        if isinstance(self.generator, MixedMask):
            name = self.generator.choose(rng)
            draw = self.generator.generators[name]
        for _ in range(self.max_tries):
            if draw is self.generator and hasattr(draw, "sample"):
                name, mask = draw.sample(rng, height, width)
            else:
                mask = draw(rng, height, width)
            mask = (np.asarray(mask) > 0.5).astype(np.float32)
            if self._ok(mask_area(mask)):
                return name, mask
        return name, self._repair(rng, mask)

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return self.sample(rng, height, width)[1]

    def _repair(self, rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
        height, width = mask.shape
        pixels = height * width
        if mask_area(mask) < max(self.min_area, 1 / pixels):
            # Add a box of about min_area (at least one pixel) somewhere random.
            side = math.sqrt(max(self.min_area, 1 / pixels))
            bh, bw = (
                min(height - 1, math.ceil(side * height)),
                min(width - 1, math.ceil(side * width)),
            )
            top, left = int(rng.integers(0, height - bh + 1)), int(rng.integers(0, width - bw + 1))
            mask[top : top + bh, left : left + bw] = 1
        if mask_area(mask) > self.max_area:
            # Erase whole columns (or rows) from one random side until the area fits.
            side = SIDES[int(rng.integers(4))]
            view = mask if side in ("left", "right") else mask.T
            if side in ("right", "bottom"):
                view = view[:, ::-1]
            per_line = view.sum(axis=0)
            remaining = per_line.sum() - np.cumsum(per_line)
            cut = int(np.argmax(remaining <= self.max_area * pixels)) + 1
            view[:, :cut] = 0  # view shares memory with mask
        if mask.all():  # only reachable when max_area * pixels rounds to every pixel
            mask[0, 0] = 0
        if not mask.any():
            mask[height // 2, width // 2] = 1
        return mask


def mask_area(mask: np.ndarray) -> float:
    """Fraction of pixels to generate (works for float or uint8 masks)."""
    mask = np.asarray(mask)
    return float(np.count_nonzero(mask > 0.5)) / mask.size if mask.size else 0.0


def area_bin(area: float, width: float = 0.1, top: float = 0.6) -> str:
    """Percent label of the area bin ("0-10", ..., "50-60", "60-100") for per-area reporting."""
    if not 0 <= area <= 1 + 1e-9:
        raise ValueError(f"mask area must be in [0, 1], got {area}")
    if not 0 < width <= top:
        raise ValueError(f"bin width must be in (0, {top}], got {width}")
    pct = lambda value: f"{round(value * 100, 6):g}"  # noqa: E731 - 0.30000000000000004 -> "30"
    if area >= top - 1e-9:
        return f"{pct(top)}-100"
    index = math.floor(area / width + 1e-9)
    return f"{pct(index * width)}-{pct(min((index + 1) * width, top))}"


def make_masks(
    generator: MaskGenerator, count: int, height: int, width: int, seed: int, start: int = 0
) -> np.ndarray:
    """(count, H, W) float32: masks start .. start + count - 1, mask i from rng [seed, i], so
    it is fixed whatever `count` is and a long series can be made in chunks."""
    out = np.zeros((count, height, width), np.float32)
    for j in range(count):
        out[j] = generator(np.random.default_rng([seed, start + j]), height, width)
    return out


def family(name: str) -> MaskGenerator:
    """The generator that conf/mask/family/<name>.yaml defines (the one place its numbers live)."""
    import hydra
    from omegaconf import OmegaConf

    path = FAMILY_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown mask family {name!r}: no {path}")
    return hydra.utils.instantiate(OmegaConf.load(path))


def _eval_families() -> dict[str, MaskGenerator]:
    """The fixed evaluation families (data.eval_families names them): family files, each in the
    area limit of family/area_limit.yaml. `irregular` mixes the three stroke families in equal
    parts, as `mask=irregular` does for training. Changing a family file changes the val/test
    masks prepare writes (dvc.yaml lists conf/mask/family as a prepare dependency)."""
    import hydra
    from omegaconf import OmegaConf

    limit = hydra.utils.instantiate(OmegaConf.load(FAMILY_DIR / "area_limit.yaml"), _partial_=True)
    strokes = {width: family(f"strokes_{width}") for width in ("thin", "medium", "thick")}
    return {
        "box": limit(family("box")),
        "irregular": limit(MixedMask(strokes, dict.fromkeys(strokes, 1.0))),
        "irregular_thin": limit(strokes["thin"]),
        "irregular_medium": limit(strokes["medium"]),
        "irregular_thick": limit(strokes["thick"]),
        "outpaint": limit(family("outpaint")),
        "outpaint_right25": limit(family("outpaint_right25")),
        "outpaint_right50": limit(family("outpaint_right50")),
    }


def __getattr__(name: str) -> Any:
    """`EVAL_FAMILIES` is built on first use (it reads the family files; training never needs it)."""
    if name == "EVAL_FAMILIES":
        families = globals()["EVAL_FAMILIES"] = _eval_families()
        return families
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

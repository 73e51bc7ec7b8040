"""Mask generators: binary output, determinism, geometry, area limits, families, Hydra configs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import hydra
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from inpaintlab.data.masks import (
    EVAL_FAMILIES,
    AreaLimit,
    BoxMask,
    FixedOutpaintMask,
    MixedMask,
    OutpaintMask,
    StrokeMask,
    area_bin,
    family,
    make_masks,
    mask_area,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
SIZES = [(32, 32), (64, 64), (256, 256), (48, 80)]
GENERATORS = {
    "box": BoxMask(),
    "box3": BoxMask(min_size=0.1, max_size=0.5, max_boxes=3),
    "thin": family("strokes_thin"),
    "medium": family("strokes_medium"),
    "thick": family("strokes_thick"),
    "outpaint": OutpaintMask(),
    "outpaint4": OutpaintMask(max_sides=4),
    "fixed": FixedOutpaintMask(),
    "mixed": MixedMask({"a": BoxMask(), "b": family("strokes_thin")}, {"a": 1, "b": 1}),
    "limited": AreaLimit(OutpaintMask(max_sides=4)),
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_valid(mask: np.ndarray, height: int, width: int) -> None:
    assert isinstance(mask, np.ndarray)
    assert mask.dtype == np.float32
    assert mask.shape == (height, width)
    assert set(np.unique(mask).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_binary_float32_of_requested_shape(name: str, height: int, width: int) -> None:
    for seed in range(5):
        mask = GENERATORS[name](rng(seed), height, width)
        assert_valid(mask, height, width)
        assert mask.any(), f"{name} drew an empty mask at {height}x{width}"


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_mask_and_seeds_differ(name: str) -> None:
    generator = GENERATORS[name]
    first, again = generator(rng(3), 64, 64), generator(rng(3), 64, 64)
    np.testing.assert_array_equal(first, again)
    if name != "fixed":
        others = [generator(rng(seed), 64, 64) for seed in range(4, 10)]
        assert any(not np.array_equal(first, other) for other in others)


def test_make_masks_deterministic_and_independent_of_count() -> None:
    generator = EVAL_FAMILIES["irregular"]
    few = make_masks(generator, 3, 64, 48, seed=11)
    many = make_masks(generator, 8, 64, 48, seed=11)
    assert few.shape == (3, 64, 48) and few.dtype == np.float32
    np.testing.assert_array_equal(few, many[:3])
    np.testing.assert_array_equal(many, make_masks(generator, 8, 64, 48, seed=11))
    np.testing.assert_array_equal(many[5], generator(np.random.default_rng([11, 5]), 64, 48))
    assert not np.array_equal(many, make_masks(generator, 8, 64, 48, seed=12))
    assert len({m.tobytes() for m in many}) == len(many)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_box_respects_margin_and_size(height: int, width: int) -> None:
    generator = BoxMask(min_size=0.2, max_size=0.6, margin=0.1, max_boxes=1)
    my, mx = max(1, round(0.1 * height)), max(1, round(0.1 * width))
    for seed in range(50):
        mask = generator(rng(seed), height, width)
        assert not mask[:my].any() and not mask[height - my :].any()
        assert not mask[:, :mx].any() and not mask[:, width - mx :].any()
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert mask.sum() == box_h * box_w  # one solid rectangle
        assert 0.2 * height - 1 <= box_h <= 0.6 * height + 1
        assert 0.2 * width - 1 <= box_w <= 0.6 * width + 1


def test_box_count_varies_up_to_max_boxes() -> None:
    import cv2

    generator = BoxMask(min_size=0.05, max_size=0.1, margin=0.05, max_boxes=3)
    counts = {
        cv2.connectedComponents(generator(rng(s), 256, 256).astype(np.uint8))[0] - 1
        for s in range(60)
    }
    assert 1 in counts and 3 in counts and max(counts) <= 3


def _bands(mask: np.ndarray) -> dict[str, int]:
    """Depth of each fully-masked border band (0 where that border is not a full band)."""
    height, width = mask.shape

    def run(lines: np.ndarray) -> int:
        full = lines.all(axis=1)
        return int(np.argmin(full)) if not full.all() else len(full)

    return {
        "left": run(mask.T),
        "right": run(mask.T[::-1]),
        "top": run(mask),
        "bottom": run(mask[::-1]),
    }


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_outpaint_single_band_touches_border_with_depth_in_bounds(height: int, width: int) -> None:
    generator = OutpaintMask(min_frac=0.1, max_frac=0.5, max_sides=1)
    seen = set()
    for seed in range(80):
        mask = generator(rng(seed), height, width)
        bands = {side: depth for side, depth in _bands(mask).items() if depth}
        assert len(bands) == 1
        side, depth = next(iter(bands.items()))
        extent = width if side in ("left", "right") else height
        assert 0.1 * extent - 1 <= depth <= 0.5 * extent + 1
        # Nothing but the band.
        assert mask.sum() == depth * (height if side in ("left", "right") else width)
        seen.add(side)
    assert seen == {"left", "right", "top", "bottom"}


def test_outpaint_respects_sides_and_max_sides() -> None:
    only_lr = OutpaintMask(sides=["left", "right"], min_frac=0.1, max_frac=0.3, max_sides=2)
    for seed in range(40):
        mask = only_lr(rng(seed), 64, 64)
        assert (mask == mask[:1]).all()  # vertical bands only: every column is all 0 or all 1
        assert mask[:, 20:44].sum() == 0  # a 10-30% band never reaches the middle columns
        assert mask[:, 0].all() or mask[:, -1].all()
    all_round = OutpaintMask(max_sides=4, min_frac=0.1, max_frac=0.2)
    numbers = {sum(d > 0 for d in _bands(all_round(rng(s), 64, 64)).values()) for s in range(80)}
    assert numbers == {1, 2, 3, 4}
    with pytest.raises(ValueError):
        OutpaintMask(sides=["middle"])


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_fixed_outpaint_right25_masks_exactly_right_quarter(height: int, width: int) -> None:
    mask = FixedOutpaintMask(side="right", frac=0.25)(rng(0), height, width)
    cols = round(0.25 * width)
    assert mask[:, width - cols :].all()
    assert not mask[:, : width - cols].any()
    half = FixedOutpaintMask(side="right", frac=0.5)(rng(1), height, width)
    assert mask_area(half) == pytest.approx(round(0.5 * width) / width)
    top = FixedOutpaintMask(side="top", frac=0.25)(rng(0), height, width)
    assert top[: round(0.25 * height)].all() and not top[round(0.25 * height) :].any()


def test_stroke_presets_ordered_thin_medium_thick() -> None:
    def mean_area(generator: StrokeMask) -> float:
        return float(make_masks(generator, 50, 128, 128, seed=5).mean())

    thin, medium, thick = (
        mean_area(family("strokes_thin")),
        mean_area(family("strokes_medium")),
        mean_area(family("strokes_thick")),
    )
    assert 0.02 < thin < medium < thick < 0.6
    assert family("strokes_thin").max_width <= family("strokes_medium").min_width
    assert family("strokes_medium").max_width <= family("strokes_thick").min_width
    assert family("strokes_thin").max_strokes > family("strokes_thick").max_strokes


def test_stroke_width_scales_with_image_and_is_at_least_one_pixel() -> None:
    fat = StrokeMask(
        min_width=0.2,
        max_width=0.2,
        min_strokes=1,
        max_strokes=1,
        max_vertices=1,
        min_length=0.0,
        max_length=0.0,
    )  # a single dot of diameter 20% of the image
    for size in (32, 64, 256):
        assert mask_area(fat(rng(0), size, size)) == pytest.approx(np.pi * 0.1**2, rel=0.35)
    hair = StrokeMask(
        min_width=0.001,
        max_width=0.001,
        min_strokes=1,
        max_strokes=1,
        max_vertices=1,
        min_length=0.5,
        max_length=0.5,
    )
    assert hair(rng(0), 32, 32).sum() >= 10  # thickness clamps to 1 px and still draws a line


def test_area_limit_respects_limits_and_never_empty_or_full() -> None:
    limited = AreaLimit(
        OutpaintMask(max_sides=4, min_frac=0.1, max_frac=0.5), min_area=0.05, max_area=0.4
    )
    for seed in range(300):
        area = mask_area(limited(rng(seed), 32, 48))
        assert 0.05 <= area <= 0.4


class _Constant:
    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return np.full((height, width), self.value, np.float32)


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_area_limit_repairs_empty_and_full_masks(value: float, height: int, width: int) -> None:
    limited = AreaLimit(_Constant(value), min_area=0.01, max_area=0.6, max_tries=3)
    for seed in range(10):
        mask = limited(rng(seed), height, width)
        assert_valid(mask, height, width)
        assert 0.01 <= mask_area(mask) <= 0.6
    with pytest.raises(ValueError):
        AreaLimit(_Constant(0.0), min_area=0.1, max_area=1.0)


def test_area_limit_trims_too_large_mask_into_band() -> None:
    big_box = BoxMask(min_size=0.9, max_size=0.9, margin=0.0)
    mask = AreaLimit(big_box, max_area=0.5, max_tries=2)(rng(0), 64, 64)
    assert 0.45 <= mask_area(mask) <= 0.5
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert mask.sum() == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)  # still one rectangle


def test_mixed_frequencies_match_weights() -> None:
    mixed = MixedMask(
        {"box": BoxMask(), "out": FixedOutpaintMask(), "thin": family("strokes_thin")},
        {"box": 2.0, "out": 1.0, "thin": 1.0},
    )
    generator = rng(123)
    counts = Counter(mixed.sample(generator, 32, 32)[0] for _ in range(2000))
    assert counts["box"] / 2000 == pytest.approx(0.5, abs=0.04)
    assert counts["out"] / 2000 == pytest.approx(0.25, abs=0.04)
    assert counts["thin"] / 2000 == pytest.approx(0.25, abs=0.04)
    assert mixed.last_family in counts


def test_mixed_sample_matches_call_and_family_generator() -> None:
    mixed = MixedMask({"out": FixedOutpaintMask(frac=0.5), "box": BoxMask()}, {"out": 1, "box": 1})
    for seed in range(20):
        name, mask = mixed.sample(rng(seed), 40, 40)
        np.testing.assert_array_equal(mask, mixed(rng(seed), 40, 40))
        assert (mask_area(mask) == 0.5) == (name == "out")
    with pytest.raises(ValueError):
        MixedMask({"a": BoxMask()}, {"b": 1.0})
    with pytest.raises(ValueError):
        MixedMask({"a": BoxMask()}, {"a": 0.0})


def test_area_limit_keeps_mixed_weights_when_a_family_is_often_rejected() -> None:
    # Four-sided outpainting exceeds 60% about half the time; retrying must not re-pick the family.
    mixed = MixedMask({"out": OutpaintMask(max_sides=4), "box": BoxMask()}, {"out": 1, "box": 1})
    limited, generator = AreaLimit(mixed, max_area=0.6), rng(7)
    counts = Counter(limited.sample(generator, 32, 32)[0] for _ in range(1000))
    assert counts["out"] / 1000 == pytest.approx(0.5, abs=0.05)


def test_area_limit_sample_passes_family_through() -> None:
    limited = AreaLimit(
        MixedMask({"out": FixedOutpaintMask(), "box": BoxMask()}, {"out": 0, "box": 1})
    )
    assert limited.sample(rng(0), 32, 32)[0] == "box"


def test_eval_families_registry() -> None:
    required = {
        "box",
        "irregular",
        "outpaint",
        "irregular_thin",
        "irregular_medium",
        "irregular_thick",
        "outpaint_right25",
        "outpaint_right50",
    }
    assert required <= set(EVAL_FAMILIES)
    for name, generator in EVAL_FAMILIES.items():
        masks = make_masks(generator, 40, 64, 64, seed=0)
        areas = masks.reshape(len(masks), -1).mean(axis=1)
        assert ((areas > 0) & (areas <= 0.6)).all(), name
        assert set(np.unique(masks).tolist()) == {0.0, 1.0}
    outpaint = make_masks(EVAL_FAMILIES["outpaint"], 40, 64, 64, seed=0)
    assert all(any(_bands(m).values()) for m in outpaint)
    box = make_masks(EVAL_FAMILIES["box"], 40, 64, 64, seed=0)
    assert not box[:, 0].any() and not box[:, :, -1].any()
    right50 = make_masks(EVAL_FAMILIES["outpaint_right50"], 2, 64, 64, seed=0)
    assert right50[:, :, 32:].all() and not right50[:, :, :32].any()


def test_mask_area_and_area_bin() -> None:
    mask = np.zeros((10, 10), np.float32)
    mask[:3] = 1
    assert mask_area(mask) == pytest.approx(0.3)
    assert mask_area(mask.astype(np.uint8)) == pytest.approx(0.3)
    assert area_bin(0.0) == "0-10"
    assert area_bin(0.05) == "0-10"
    assert area_bin(mask_area(mask)) == "30-40"  # 0.3 must not fall into 20-30 by float error
    assert area_bin(0.1) == "10-20"
    assert area_bin(0.5999) == "50-60"
    assert area_bin(0.6) == "60-100"
    assert area_bin(0.95) == "60-100"
    assert area_bin(0.25, width=0.2) == "20-40"
    assert [area_bin(a / 100 + 0.005) for a in range(0, 60, 10)] == [
        "0-10",
        "10-20",
        "20-30",
        "30-40",
        "40-50",
        "50-60",
    ]
    with pytest.raises(ValueError):
        area_bin(1.5)


def _load(name: str, *overrides: str):
    """The training sampler `mask=name` as the stage apps compose it."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return hydra.utils.instantiate(compose("config", [f"mask={name}", *overrides]).mask)


@pytest.mark.parametrize("name", ["mixed", "box", "irregular", "outpaint"])
def test_mask_configs_instantiate_and_draw_valid_masks(name: str) -> None:
    generator = _load(name)
    assert isinstance(generator, AreaLimit)
    for height, width in SIZES:
        masks = make_masks(generator, 10, height, width, seed=1)
        for mask in masks:
            assert_valid(mask, height, width)
            assert 0.01 <= mask_area(mask) <= 0.6


def test_mask_families_are_defined_once_for_training_and_evaluation() -> None:
    """The training samplers compose the family files that EVAL_FAMILIES is built from."""
    sampler = _load("mixed")
    mixed = sampler.generator
    assert isinstance(mixed, MixedMask) and type(mixed.generators) is dict
    assert set(mixed.generators) == {
        "box",
        "irregular_thin",
        "irregular_medium",
        "irregular_thick",
        "outpaint",
    }
    assert sum(mixed.weights.values()) == pytest.approx(1.0)
    for width in ("thin", "medium", "thick"):
        stroke = family(f"strokes_{width}")
        assert mixed.generators[f"irregular_{width}"] == stroke
        assert EVAL_FAMILIES[f"irregular_{width}"].generator == stroke
        assert EVAL_FAMILIES["irregular"].generator.generators[width] == stroke
    assert mixed.generators["outpaint"] == family("outpaint") == EVAL_FAMILIES["outpaint"].generator
    assert mixed.generators["box"] == family("boxes") == _load("box").generator
    assert EVAL_FAMILIES["box"].generator == family("box")
    irregular = _load("irregular")
    assert irregular == EVAL_FAMILIES["irregular"]  # the same sampler (area limit included)
    assert all(f.min_area == sampler.min_area == 0.01 for f in EVAL_FAMILIES.values())
    assert all(f.max_area == sampler.max_area == 0.6 for f in EVAL_FAMILIES.values())
    with pytest.raises(ValueError, match="unknown mask family 'nope'"):
        family("nope")
    generator = rng(0)
    families = Counter(sampler.sample(generator, 32, 32)[0] for _ in range(400))
    assert set(families) == set(mixed.generators)


def test_family_numbers_are_overridden_as_before() -> None:
    mixed = _load("mixed", "mask.generator.generators.irregular_thin.max_strokes=20").generator
    assert mixed.generators["irregular_thin"].max_strokes == 20
    assert mixed.generators["irregular_medium"] == family("strokes_medium")
    strokes = _load("irregular", "mask.generator.generators.thick.max_width=0.3").generator
    assert strokes.generators["thick"].max_width == 0.3

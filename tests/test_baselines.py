"""The classical baselines: every method fills only the hole, sees only the known pixels, is
deterministic, and fills a smooth image close to the truth."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from inpaintlab.baselines import (
    BASELINE_NAMES,
    BASELINES,
    MID_GREY,
    classical_inpaint,
    classical_inpaint_many,
)


def ramp(h: int = 64, w: int = 64) -> np.ndarray:
    """A linear gradient per channel (what a smooth fill should continue exactly)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([20 + 2 * x, 230 - 3 * y, 30 + 1.5 * (x + y)], -1).round().astype(np.uint8)


def textured(h: int = 48, w: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)


def box(h: int, w: int, top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[top : top + size, left : left + size] = 1
    return mask


def scribble(h: int = 48, w: int = 40) -> np.ndarray:
    """Two holes (a box and a stroke): more than one region, not axis-aligned."""
    mask = box(h, w, 6, 5, 10)
    cv2.line(mask, (8, 40), (34, 22), 1.0, 3)
    return mask


def test_contrib_cv2_installed() -> None:
    # A bare `cv2.xphoto` imports even from opencv-python-headless (contrib's leftover
    # cv2/xphoto/__init__.pyi makes a namespace package): the function is the test.
    assert hasattr(cv2.xphoto, "inpaint") and hasattr(cv2.xphoto, "INPAINT_FSR_FAST"), (
        "cv2 is opencv-python-headless's, not opencv-contrib-python-headless's: "
        "rerun `make install` (see the Makefile's install step)"
    )


def test_names() -> None:
    assert BASELINE_NAMES == ("telea", "ns", "fsr", "biharmonic", "patchmatch")
    assert tuple(BASELINES) == BASELINE_NAMES


def test_unknown_method() -> None:
    image, mask = textured(), scribble()
    with pytest.raises(ValueError, match="unknown baseline 'lama'.*telea, ns, fsr, biharmonic"):
        classical_inpaint(image, mask, "lama")


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        classical_inpaint(textured().astype(np.float32), scribble(), "telea")
    with pytest.raises(ValueError, match="mask must be HxW"):
        classical_inpaint(textured(), scribble()[:-1], "telea")


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_fills_only_the_hole(method: str) -> None:
    image, mask = textured(), scribble()
    out = classical_inpaint(image, mask, method)
    assert out.shape == image.shape and out.dtype == np.uint8
    known = mask == 0
    assert np.array_equal(out[known], image[known])
    # it did fill: a hole of zeros would not be filled with (near) zeros from this image
    assert out[~known].mean() > 60


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_smooth_image_filled_close_to_truth(method: str) -> None:
    image, mask = ramp(), box(64, 64, 20, 20, 24)
    hole = mask == 1
    error = np.abs(classical_inpaint(image, mask, method).astype(np.float64) - image)[hole]
    grey_error = np.abs(float(MID_GREY) - image[hole]).mean()
    assert grey_error > 25
    assert error.mean() < 0.3 * grey_error, (method, error.mean(), grey_error)
    if method == "biharmonic":  # the biharmonic equation holds exactly on a linear ramp
        assert error.mean() < 0.5 and error.max() <= 2, (error.mean(), error.max())


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_deterministic(method: str) -> None:
    image, mask = textured(), scribble()
    first = classical_inpaint(image, mask, method)
    classical_inpaint(textured(seed=1), box(48, 40, 10, 10, 20), method)  # state in between
    if method == "patchmatch":  # its seed is global to the process: someone else may set it
        from patchmatch import patch_match

        patch_match.set_random_seed(12345)
    assert np.array_equal(classical_inpaint(image, mask, method), first)


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_does_not_see_the_hole(method: str) -> None:
    # cv2.inpaint (telea, ns) reads some hidden pixels of a hole that touches the image border
    image, mask = textured(), scribble()
    mask[:, :4] = 1
    hole = mask == 1
    other = image.copy()
    other[hole] = textured(seed=2)[hole]
    assert np.array_equal(
        classical_inpaint(image, mask, method), classical_inpaint(other, mask, method)
    )


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_empty_mask_returns_a_copy(method: str) -> None:
    image = textured()
    out = classical_inpaint(image, np.zeros(image.shape[:2], np.float32), method)
    assert np.array_equal(out, image) and out is not image
    out[0, 0] = 0 if image[0, 0, 0] else 1
    assert not np.array_equal(out, image)  # a copy, not a view


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_full_mask_is_mid_grey(method: str) -> None:
    image = textured()
    out = classical_inpaint(image, np.ones(image.shape[:2], np.uint8), method)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out == MID_GREY).all()  # nothing known: no fill can do better, none may leak


@pytest.mark.parametrize("method", BASELINE_NAMES)
@pytest.mark.parametrize("shape", [(1, 2), (2, 2), (2, 1), (3, 5), (5, 3), (7, 7)])
def test_tiny_images(method: str, shape: tuple[int, int]) -> None:
    image = textured(*shape, seed=3)
    mask = np.zeros(shape, np.float32)
    mask[shape[0] // 2, shape[1] // 2] = 1
    out = classical_inpaint(image, mask, method)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], image[mask == 0])


def test_import_is_light() -> None:
    code = (
        "import sys, inpaintlab.baselines; "
        "print(sorted(m for m in ('torch', 'skimage', 'patchmatch', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("method", BASELINE_NAMES)
def test_quiet(method: str, capfd: pytest.CaptureFixture[str]) -> None:
    classical_inpaint(textured(), scribble(), method)
    assert capfd.readouterr() == ("", "")


def test_mask_with_channel_axis() -> None:
    image, mask = textured(), scribble()
    assert np.array_equal(
        classical_inpaint(image, mask[..., None], "telea"), classical_inpaint(image, mask, "telea")
    )


def test_many_in_worker_processes_equals_one_by_one():
    """The process pool changes the wall time, never the outputs or their order."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    masks = [np.zeros((24, 32), bool) for _ in range(3)]
    for i, mask in enumerate(masks):
        mask[4 + i : 14 + i, 6:20] = True
    alone = [classical_inpaint(im, m, "biharmonic") for im, m in zip(images, masks, strict=True)]
    pooled, ms = classical_inpaint_many(images, masks, "biharmonic", workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(alone, pooled, strict=True))
    assert ms > 0

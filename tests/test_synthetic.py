"""Synthetic landscapes: shape, byte-level determinism, per-image seeding, atomic writes, and
that the pictures carry structure (coherent, horizontally layered, size-consistent scenes) that
a constant or random-noise generator would not."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from inpaintlab.data.synthetic import image_seed, render_landscape, write_dataset


@pytest.fixture(scope="module")
def batch() -> list[np.ndarray]:
    """32 images at 128 px: enough variety for the statistical checks, fast to render."""
    return [render_landscape(s, 128).astype(np.float32) for s in range(32)]


@pytest.mark.parametrize("size", [16, 50, 256])
def test_shape_and_dtype(size: int) -> None:
    img = render_landscape(3, size)
    assert img.shape == (size, size, 3)
    assert img.dtype == np.uint8


def test_render_is_deterministic() -> None:
    assert np.array_equal(render_landscape(11, 64), render_landscape(11, 64))


def test_write_dataset_is_byte_identical(tmp_path) -> None:
    a = write_dataset(tmp_path / "a", count=4, size=48, seed=7, progress=False)
    b = write_dataset(tmp_path / "b", count=4, size=48, seed=7, progress=False)
    assert [p.name for p in a] == [f"landscape_{i:05d}.png" for i in range(4)]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_different_seeds_give_different_images(tmp_path) -> None:
    imgs = [render_landscape(s, 48).tobytes() for s in range(12)]
    assert len(set(imgs)) == len(imgs)
    a = write_dataset(tmp_path / "a", count=2, size=32, seed=0, progress=False)
    b = write_dataset(tmp_path / "b", count=2, size=32, seed=1, progress=False)
    assert a[0].read_bytes() != b[0].read_bytes()
    assert a[0].read_bytes() != a[1].read_bytes()


def test_image_i_does_not_depend_on_count(tmp_path) -> None:
    three = write_dataset(tmp_path / "three", count=3, size=32, seed=5, progress=False)
    five = write_dataset(tmp_path / "five", count=5, size=32, seed=5, progress=False)
    assert len(five) == 5
    for p3, p5 in zip(three, five[:3], strict=True):
        assert p3.read_bytes() == p5.read_bytes()


def test_dataset_image_can_be_rerendered_alone(tmp_path) -> None:
    paths = write_dataset(tmp_path, count=3, size=40, seed=9, progress=False)
    decoded = np.asarray(Image.open(paths[2]).convert("RGB"))
    assert np.array_equal(decoded, render_landscape(image_seed(9, 2), 40))


def test_write_is_atomic_and_leaves_other_files(tmp_path) -> None:
    out = tmp_path / "nested" / "raw"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    paths = write_dataset(out, count=2, size=16, seed=0, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == [
        "landscape_00000.png",
        "landscape_00001.png",
        "notes.txt",
    ]
    assert all(p.parent == out for p in paths)


def test_creates_missing_out_dir(tmp_path) -> None:
    out = tmp_path / "a" / "b"
    write_dataset(str(out), count=1, size=16, progress=False)
    assert (out / "landscape_00000.png").is_file()


def test_progress_bar_goes_to_stderr(tmp_path, capsys) -> None:
    write_dataset(tmp_path / "p", count=2, size=16, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2/2" in captured.err
    write_dataset(tmp_path / "q", count=2, size=16, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0}, {"count": -3}, {"count": 2.5}, {"size": 15}, {"size": 0}, {"seed": -1}],
)
def test_bad_arguments_raise(tmp_path, kwargs: dict) -> None:
    out = tmp_path / "never"
    with pytest.raises(ValueError) as err:
        write_dataset(out, progress=False, **kwargs)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_render_rejects_tiny_size() -> None:
    with pytest.raises(ValueError):
        render_landscape(0, 8)


def test_images_are_not_trivial(batch: list[np.ndarray]) -> None:
    stds = np.array([im.std() for im in batch])
    assert stds.min() > 6.0
    assert np.median(stds) > 25.0
    means = np.array([im.reshape(-1, 3).mean(0) for im in batch])
    assert means.std(axis=0).min() > 12.0  # overall colour varies from image to image
    assert len(set(means.argmax(axis=1).tolist())) >= 2  # not always the same dominant channel


def test_images_are_spatially_coherent(batch: list[np.ndarray]) -> None:
    """Neighbouring pixels are far more alike than random pixel pairs (noise: ratio ~1)."""
    rng = np.random.default_rng(0)
    for im in batch:
        g = im.mean(axis=2).ravel()
        adjacent = np.abs(np.diff(im.mean(axis=2), axis=1)).mean()
        i, j = rng.integers(0, g.size, (2, 4000))
        assert adjacent < 0.2 * np.abs(g[i] - g[j]).mean()


def test_scenes_are_layered_horizontally(batch: list[np.ndarray]) -> None:
    """Sky, ridges, water and fields are horizontal bands: brightness changes much more from
    row to row than from column to column."""
    for im in batch:
        g = im.mean(axis=2)
        assert g.mean(axis=1).std() > 2.0 * g.mean(axis=0).std()


def test_sky_is_smoother_than_foreground(batch: list[np.ndarray]) -> None:
    """Mean absolute horizontal gradient of the top rows (sky) is below that of the bottom rows
    (fields, forests, ripples) over the batch; single night or lake images may not follow."""
    top = np.mean([np.abs(np.diff(im[:13], axis=1)).mean() for im in batch])
    bottom = np.mean([np.abs(np.diff(im[-32:], axis=1)).mean() for im in batch])
    assert top < 0.85 * bottom


def test_same_scene_at_every_size() -> None:
    """size=64 is (nearly) a downscaled size=256 of the same seed, and far from another seed."""
    for seed in range(4):
        big = render_landscape(seed, 256).astype(np.float32)
        small = render_landscape(seed, 64).astype(np.float32)
        down = big.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
        other = render_landscape(seed + 100, 64).astype(np.float32)
        same_err = np.abs(down - small).mean()
        assert same_err < 6.0
        assert same_err < 0.35 * np.abs(other - small).mean()


def test_module_does_not_import_torch() -> None:
    code = "import sys, inpaintlab.data.synthetic; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

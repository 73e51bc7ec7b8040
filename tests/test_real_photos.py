"""benchmarks/real_photos.py builds its test set offline: the photos bundled in the installed wheels
(the `bench` extra) are found without any network, and the crops are deterministic, correctly sized
RGB images written in the prepare stage's test layout. No model, no training."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "real_photos", ROOT / "benchmarks" / "real_photos.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_photos"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


real_photos = _load_benchmark()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("real_photos tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def photos():
    found, missing = real_photos.find_photos()
    assert not missing, f"bundled photos missing (make install installs the bench extra): {missing}"
    return found


def test_bundled_photos_are_found_and_are_real_photos(photos):
    expected = sum(len(files) for _, files in real_photos.BUNDLED.values())
    assert len(photos) == expected == 12
    assert [p.name for p in photos] == sorted(p.name for p in photos)
    suffixes = {p.path.suffix for p in photos}
    assert suffixes == {".png", ".jpg"}  # mixed formats, as a user's folder would be
    for photo in photos:
        image = real_photos.load_rgb(photo.path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 300


@pytest.mark.parametrize("size", [32, 64])
def test_crops_are_deterministic_sized_rgb(photos, size):
    crops = real_photos.build_crops(photos, size)
    again = real_photos.build_crops(photos, size)
    per_photo = len(real_photos.SCALES) * real_photos.CROPS_PER_SCALE
    assert len(crops) == len(photos) * per_photo == 96
    for (crop, image), (crop2, image2) in zip(crops, again, strict=True):
        assert crop == crop2 and np.array_equal(image, image2)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
    names = [crop.name for crop, _ in crops]
    assert len(set(names)) == len(names)
    # a photo's crops do not depend on which other photos are there
    alone = real_photos.build_crops(photos[3:4], size)
    assert [c for c, _ in alone] == [c for c, _ in crops[3 * per_photo : 4 * per_photo]]
    # another seed moves them
    moved = real_photos.crop_boxes("skimage/astronaut.png", 512, 512, size, seed=1)
    assert moved != real_photos.crop_boxes("skimage/astronaut.png", 512, 512, size, seed=0)


def test_crop_boxes_stay_inside_the_photo():
    for height, width in [(300, 451), (640, 427), (100, 100), (70, 500)]:
        for crop in real_photos.crop_boxes("x/y.png", height, width, 64):
            short = min(height, width)
            assert crop.side == min(short, max(64, round(crop.scale * short)))
            assert 0 <= crop.top <= height - crop.side and 0 <= crop.left <= width - crop.side


def test_test_set_has_the_prepare_layout(photos, tmp_path):
    crops = real_photos.build_crops(photos[:2], 32, per_scale=2)
    out = tmp_path / "real"
    real_photos.write_test_set(out, crops, ["box", "outpaint"], 1234)
    files = sorted((out / "test").glob("*.png"))
    assert len(files) == len(crops) == 8
    for path, (_, image) in zip(files, crops, strict=True):
        assert np.array_equal(cv2.imread(str(path))[..., ::-1], image)  # lossless, RGB order
    with np.load(out / "masks_test.npz") as masks:
        assert sorted(masks.files) == ["box", "outpaint"]
        assert masks["box"].shape == (8, 32, 32) and masks["box"].dtype == np.uint8
        assert masks["box"].any()


def test_training_crops_are_deterministic_square_views_of_the_photo(photos, tmp_path):
    photo = next(p for p in photos if p.name == "skimage/coffee.png")
    image = real_photos.load_rgb(photo.path)
    boxes = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        boxes.append(real_photos.write_training_crops(photo, tmp_path / folder, 5))
    assert boxes[0] == boxes[1]
    files = sorted((tmp_path / "a").glob("*.png"))
    assert [f.name for f in files] == [f"skimage_coffee_{i:04d}.png" for i in range(5)]
    short = min(image.shape[:2])
    for path, (top, left, side) in zip(files, boxes[0], strict=True):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
        assert short // 5 <= side <= short
        crop = cv2.imread(str(path))[..., ::-1]  # a window of the photo, pixel for pixel
        assert np.array_equal(crop, image[top : top + side, left : left + side])
    assert len({side for _, _, side in boxes[0]}) > 1


def test_full_size_squares_never_upscale_and_cover_the_long_side():
    wide = np.arange(300 * 900 * 3, dtype=np.uint32).reshape(300, 900, 3).astype(np.uint8)
    squares = real_photos.full_size_squares(wide, 256)
    assert len(squares) == 3 and all(s.shape == (256, 256, 3) for s in squares)
    assert not np.array_equal(squares[0], squares[-1])  # start and end of the long side
    assert real_photos.full_size_squares(wide, 512) == []  # short side 300 < 512: not upscaled
    assert len(real_photos.full_size_squares(wide[:, :300], 256)) == 1


def test_full_size_sets_have_the_prepare_layout(photos, tmp_path):
    crops = real_photos.build_crops(photos[:1], 32, per_scale=1)
    full = real_photos.full_size_images(photos[:2], [64])
    out = tmp_path / "bench"
    real_photos.write_test_set(out, crops, ["box", "outpaint"], 1234, full)
    files = sorted((out / "test_64").glob("*.png"))
    assert len(files) == len(full[64]) > 0
    with np.load(out / "masks_test_64.npz") as masks:
        assert masks["box"].shape == (len(files), 64, 64)
        assert set(masks.files) == {"box", "outpaint"}

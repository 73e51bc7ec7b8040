"""Training data: random crops at several scales of the stored photos, `samples_per_epoch`
crops per epoch, the same crops for the same seed, a photo cache that stays under its bound."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import cv2
import hydra
import numpy as np
import pytest
import torch

from inpaintlab.data.datamodule import (
    InpaintDataModule,
    PhotoCache,
    ScaleCrop,
    default_crop,
    split_files,
)
from inpaintlab.data.masks import EVAL_FAMILIES
from inpaintlab.errors import UserError

SIZE = 32


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like RGB image whose every window differs: smooth colour ramps plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    noise = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)).astype(np.float32), (0, 0), 2)
    return np.clip(base + noise + 20, 0, 255).astype(np.uint8)


def coordinate_photo(side: int = 256) -> np.ndarray:
    """R = column, G = row: a crop's extent can be read back from its pixels."""
    y, x = np.mgrid[0:side, 0:side]
    return np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def write_prepared(root: Path, photos: list[np.ndarray], suffix: str = ".png") -> Path:
    """A minimal data/prepared: the given train photos, one val image and its mask."""
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    for i, photo in enumerate(photos):
        cv2.imwrite(str(root / "train" / f"{i:05d}_photo{i}{suffix}"), photo[..., ::-1])
    cv2.imwrite(str(root / "val" / "00000_val.png"), textured(SIZE, SIZE, 99))
    np.savez_compressed(
        root / "masks_val.npz",
        mask=np.zeros((1, SIZE, SIZE), np.uint8),
        family=np.array(["box"]),
    )
    return root


def datamodule(prepared: Path, **kwargs) -> InpaintDataModule:
    kwargs = {"batch_size": 8, "mask_generator": EVAL_FAMILIES["box"], "seed": 3} | kwargs
    dm = InpaintDataModule(str(prepared), SIZE, **kwargs)
    dm.setup("fit")
    return dm


def all_batches(dm: InpaintDataModule, epoch: int = 0) -> list[dict[str, torch.Tensor]]:
    dm.set_epoch(epoch)
    return list(dm.train_dataloader())


def digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


@pytest.fixture
def three_photos(tmp_path) -> Path:
    photos = [textured(300, 400, 0), textured(360, 280, 1), textured(256, 256, 2)]
    return write_prepared(tmp_path / "prepared", photos)


def test_few_photos_give_many_distinct_crops(three_photos):
    dm = datamodule(three_photos, samples_per_epoch=200)
    assert len(dm.train_set) == 200
    batches = all_batches(dm)
    assert len(batches) == 200 // 8  # drop_last: 25 full batches
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (200, 3, SIZE, SIZE)
    assert len({digest(image) for image in images}) >= 195
    # and a second epoch gives new ones
    again = torch.cat([b["image"] for b in all_batches(dm, epoch=1)])
    assert not {digest(i) for i in again} & {digest(i) for i in images}
    # every photo contributes (drawn with replacement by each item's rng)
    drawn = [dm.train_set.photo_index(i, np.random.default_rng([3, 0, i])) for i in range(200)]
    assert set(drawn) == {0, 1, 2} and min(np.bincount(drawn)) > 40


def test_null_samples_per_epoch_is_one_pass_over_the_photos(three_photos):
    dm = datamodule(three_photos, batch_size=2)
    assert len(dm.train_set) == 3
    assert [dm.train_set.photo_index(i, np.random.default_rng(0)) for i in range(3)] == [0, 1, 2]
    assert sum(len(b["image"]) for b in all_batches(dm)) == 2  # 3 items, drop_last


def test_same_seed_same_batches_whatever_the_cache(three_photos):
    runs = []
    for seed, cache_mb in [(3, 512), (3, 512), (3, 0), (4, 512)]:
        dm = datamodule(three_photos, samples_per_epoch=48, cache_mb=cache_mb, seed=seed)
        runs.append([all_batches(dm, epoch) for epoch in (0, 1)])

    def same(a, b) -> bool:
        return all(
            torch.equal(x[k], y[k])
            for ea, eb in zip(a, b, strict=True)
            for x, y in zip(ea, eb, strict=True)
            for k in ("image", "mask")
        )

    assert same(runs[0], runs[1])  # same config and seed: identical crops, masks, order
    assert same(runs[0], runs[2])  # decoding each time or caching: the same pixels
    assert not same(runs[0], runs[3])  # the seed matters
    assert not torch.equal(runs[0][0][0]["image"], runs[0][1][0]["image"])  # and the epoch


def crop_boxes(crop: ScaleCrop, height: int, width: int, n: int = 400) -> np.ndarray:
    """(n, 4) left, top, width, height of the crops the transform picks on an HxW photo."""
    boxes = []
    for seed in range(n):
        crop.set_random_seed(seed)
        x0, y0, x1, y1 = crop.get_params_dependent_on_data({"shape": (height, width, 3)}, {})[
            "crop_coords"
        ]
        boxes.append((x0, y0, x1 - x0, y1 - y0))
    return np.array(boxes)


def test_crop_area_range_and_log_uniform_draw():
    height, width = 600, 800
    crop = ScaleCrop(size=(SIZE, SIZE), scale=(0.01, 0.5), ratio=(3 / 4, 4 / 3))
    boxes = crop_boxes(crop, height, width)
    left, top, w, h = boxes.T
    assert (left >= 0).all() and (top >= 0).all()
    assert (left + w <= width).all() and (top + h <= height).all()
    area = w * h / (height * width)
    assert area.min() >= 0.01 * 0.97 and area.max() <= 0.5 * 1.03  # rounding of the sides
    assert ((w / h >= 3 / 4 * 0.97) & (w / h <= 4 / 3 * 1.03)).all()
    # log-uniform: as many crops below the geometric mean of the range as above it
    below = (area < math.sqrt(0.01 * 0.5)).mean()
    assert 0.4 < below < 0.6  # uniform in area would put ~12% there
    assert area.min() < 0.015 and area.max() > 0.4  # the whole range is used


def test_default_crop_goes_from_one_to_one_pixels_to_the_whole_photo():
    height, width = 768, 1024
    boxes = crop_boxes(default_crop(SIZE), height, width, n=1000)
    _, _, w, h = boxes.T
    assert (np.minimum(w, h) >= SIZE).all()  # never smaller than the output: never enlarged
    assert (np.maximum(w, h) < 1.5 * SIZE).sum() > 20  # near 1:1 pixels, often
    assert (h > 0.9 * height).sum() > 20  # about the whole photo, often
    # zoom (photo px per training px) spread evenly over octaves: 1-2, 2-4, ..., 16-24
    zoom = np.sqrt(w * h) / SIZE
    counts = np.histogram(np.log2(zoom), bins=[0, 1, 2, 3, 4])[0]
    assert counts.min() > 0.6 * counts.max()


def test_small_photo_and_upper_scale_below_one_to_one():
    """A photo smaller than the output is taken whole (enlarged: nothing else is possible)."""
    crop = ScaleCrop(size=(SIZE, SIZE), scale=(0.0, 0.001))
    boxes = crop_boxes(crop, 20, 24, n=20)
    assert (boxes[:, 2] <= 24).all() and (boxes[:, 3] <= 20).all()
    assert (np.minimum(boxes[:, 2], boxes[:, 3]) >= 20).all()
    out = crop(image=textured(20, 24, 0))["image"]
    assert out.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("scale", [(0.04, 0.06), (0.6, 1.0)])
def test_configured_scale_range_reaches_the_crops(tmp_path, compose_cfg, scale):
    """Through conf/: datamodule.crop.scale sets the area of the crops actually trained on,
    read back from a photo whose pixels hold their coordinates."""
    prepared = write_prepared(tmp_path / "prepared", [coordinate_photo(256)])
    cfg = compose_cfg(
        "experiment=ci",
        f"data.prepared_dir={prepared}",
        f"datamodule.crop.scale=[{scale[0]},{scale[1]}]",
        "datamodule.augment.train=[]",
        "datamodule.samples_per_epoch=64",
    )
    dm = hydra.utils.instantiate(cfg.datamodule, _partial_=True)(
        mask_generator=EVAL_FAMILIES["box"], seed=0
    )
    assert isinstance(dm.crop, ScaleCrop) and tuple(dm.crop.scale) == scale
    dm.setup("fit")
    images = torch.cat([b["image"] for b in all_batches(dm)]) * 255
    extent_x = images[:, 0].amax(dim=(1, 2)) - images[:, 0].amin(dim=(1, 2)) + 1
    extent_y = images[:, 1].amax(dim=(1, 2)) - images[:, 1].amin(dim=(1, 2)) + 1
    area = (extent_x * extent_y / 256**2).numpy()
    # INTER_AREA averages the border pixels, so the extents read back a few px short
    assert area.min() > scale[0] * 0.8 and area.max() <= scale[1] * 1.02


def test_config_crop_matches_the_code_default(compose_cfg):
    cfg = compose_cfg()
    crop = hydra.utils.instantiate(cfg.datamodule.crop)
    ref = default_crop(cfg.data.image_size)
    assert type(crop) is type(ref)
    for key in ("size", "scale", "ratio", "area_for_downscale"):
        assert tuple(np.atleast_1d(getattr(crop, key))) == tuple(np.atleast_1d(getattr(ref, key)))


def test_crop_size_must_match_image_size(three_photos):
    with pytest.raises(UserError, match="crop.size"):
        InpaintDataModule(str(three_photos), SIZE, crop=default_crop(SIZE * 2))
    with pytest.raises(UserError, match="samples_per_epoch"):
        InpaintDataModule(str(three_photos), SIZE, samples_per_epoch=0)


def test_photo_cache_stays_under_its_bound(tmp_path):
    paths = []
    for i in range(10):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), textured(50 + 10 * i, 60, i))
    sizes = [cv2.imread(str(p)).nbytes for p in paths]
    cache = PhotoCache(max_bytes=3 * max(sizes))
    rng = np.random.default_rng(0)
    for i in rng.integers(0, 10, 300):
        image = cache.get(paths[i])
        assert np.array_equal(image, cv2.imread(str(paths[i]))[..., ::-1])
        assert cache.nbytes == sum(a.nbytes for a in cache.items.values()) <= cache.max_bytes
    assert 3 <= len(cache.items) < 10 and cache.hits > 0
    cached = next(iter(cache.items.values()))
    with pytest.raises(ValueError):  # read-only: a transform cannot alter later samples
        cached[0, 0, 0] = 1
    # the most recently used photos are the ones kept
    for path in paths[:3]:
        cache.get(path)
    assert set(cache.items) >= set(paths[:3])
    # a photo over the whole budget is decoded every time, never kept
    small = PhotoCache(max_bytes=min(sizes) - 1)
    small.get(paths[0]), small.get(paths[0])
    assert small.items == {} and small.nbytes == 0 and small.misses == 2
    off = PhotoCache(0)
    off.get(paths[1])
    assert off.nbytes == 0


def test_datamodule_cache_bound_over_an_epoch(tmp_path):
    photos = [textured(200, 240, i) for i in range(12)]
    prepared = write_prepared(tmp_path / "prepared", photos, suffix=".jpg")
    budget_mb = 3.5 * photos[0].nbytes / 2**20
    dm = datamodule(prepared, samples_per_epoch=96, cache_mb=budget_mb)
    assert len(split_files(prepared, "train")) == 12  # JPEG train copies are found
    all_batches(dm)
    cache = dm.train_set.cache
    assert 0 < cache.nbytes <= budget_mb * 2**20 and len(cache.items) == 3
    assert cache.hits + cache.misses == 96


def test_balanced_folders_draw_a_small_folder_as_often_as_a_big_one(tmp_path):
    """balance_folders: 2 photos under photos/ against 18 at the top of data/raw are drawn
    about half the time each way; without it, about 2 in 20."""
    import cv2

    from inpaintlab.data.datamodule import TrainDataset, source_folder

    names = [f"landscape_{i:05d}_png.png" for i in range(18)]
    names += [f"photos__cat_{i}_jpg.png" for i in range(2)]
    for name in names:
        cv2.imwrite(str(tmp_path / name), np.zeros((40, 40, 3), np.uint8))
    files = sorted(tmp_path.glob("*.png"))
    assert {source_folder(f.name) for f in files} == {"", "photos"}

    def share(balance: bool) -> float:
        dataset = TrainDataset(files, 32, None, None, 0, 2000, balance_folders=balance)
        picks = [dataset.photo_index(i, np.random.default_rng([0, 0, i])) for i in range(2000)]
        return sum(files[p].name.startswith("photos__") for p in picks) / 2000

    assert 0.45 < share(True) < 0.55
    assert share(False) < 0.15

"""prepare stage on awkward input: odd formats are converted, bad files are skipped and listed,
nothing usable is a one-line error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintlab.data.io import load_rgb
from inpaintlab.data.masks import EVAL_FAMILIES, make_masks
from inpaintlab.errors import UserError
from inpaintlab.prepare import (
    assign_splits,
    cap_long_side,
    center_square,
    prepare,
    prepared_stem,
)


def write_odd_images(raw: Path, rng: np.random.Generator) -> None:
    """Ten good RGB images, plus grayscale, RGBA, 16-bit, a corrupt file and a non-image."""
    raw.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(
            raw / f"rgb_{i}.png"
        )
    Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(raw / "gray.png")
    Image.fromarray(rng.integers(0, 255, (48, 48, 4), dtype=np.uint8)).save(raw / "rgba.png")
    cv2.imwrite(str(raw / "deep16.png"), rng.integers(0, 65535, (48, 48, 3), dtype=np.uint16))
    (raw / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (raw / "notes.txt").write_text("not an image")
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(raw / "tiny.png")


def run_prepare(compose_cfg, raw: Path, out: Path, *extra: str) -> dict:
    cfg = compose_cfg("experiment=ci", f"data.raw_dir={raw}", f"data.prepared_dir={out}", *extra)
    return prepare(cfg.data)


def test_odd_formats_are_converted_and_bad_files_listed(tmp_path, compose_cfg):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    write_odd_images(raw, np.random.default_rng(0))
    manifest = run_prepare(compose_cfg, raw, out)

    assert sum(manifest["counts"].values()) == 13  # 10 RGB + gray + RGBA + 16-bit
    skipped = {entry["file"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(skipped) == {"broken.jpg", "tiny.png"}  # .txt is not an image file at all
    assert "min_side" in skipped["tiny.png"]
    assert {"L", "RGBA"} <= set(manifest["source_modes"])
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for split in ("val", "test"):
        for path in (out / split).glob("*.png"):
            assert Image.open(path).size == (32, 32) and Image.open(path).mode == "RGB"
    train = sorted((out / "train").iterdir())
    assert len(train) == manifest["counts"]["train"] == manifest["train_formats"]["png"]
    for path in train:  # small photos are kept as they are, lossless
        assert path.suffix == ".png" and Image.open(path).size in {(56, 40), (48, 48)}
    with np.load(out / "masks_test.npz") as masks:
        assert set(masks.files) == {"box", "irregular", "outpaint"}
        assert masks["box"].shape == (manifest["counts"]["test"], 32, 32)


# (width, height) of the photos of a small mixed folder: long sides above and below the train
# cap (128 here), short sides above and below the full test sizes (48 and 96 here)
PHOTO_SIZES = [(200, 150), (150, 200), (300, 100), (90, 60), (60, 60), (120, 100), (100, 50)]
PHOTO_SIZES += [(64, 40), (260, 120), (48, 48), (110, 97), (97, 110), (128, 96), (40, 200)]
MIXED = (
    "data.train_max_side=128",
    "data.train_png_max_side=64",
    "data.full_sizes=[48,96]",
    "data.val_fraction=0.15",
    "data.test_fraction=0.35",
)


def smooth_photo(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def write_mixed_folder(raw: Path) -> dict[str, tuple[int, int]]:
    """Photos of PHOTO_SIZES as PNG and JPEG, some in sub-folders; name -> (width, height)."""
    names = {}
    for i, (width, height) in enumerate(PHOTO_SIZES):
        name = f"{'trip/' if i % 3 == 0 else ''}p{i}.{'jpg' if i % 2 else 'png'}"
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_photo(width, height, i)).save(raw / name, quality=95)
        names[name] = (width, height)
    return names


def sources(folder: Path) -> dict[str, Path]:
    """Prepared file stem (prepare_jobs.prepared_stem of its source photo) -> the file (for
    val/, the photo's centre square; its crops are <stem>.<k>)."""
    return {p.stem: p for p in sorted(folder.iterdir()) if not re.search(r"\.\d+$", p.stem)}


def source_stem(name: str) -> str:
    return prepared_stem(name)


def test_train_copies_are_capped_and_never_enlarged(tmp_path, compose_cfg):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    names = write_mixed_folder(raw)
    manifest = run_prepare(compose_cfg, raw, out, *MIXED)
    assert manifest["train_max_side"] == 128
    train = sources(out / "train")
    assert len(train) == manifest["counts"]["train"] >= 5
    by_stem = {source_stem(n): n for n in names}
    formats = {"png": 0, "jpg": 0}
    for stem, path in train.items():
        width, height = names[by_stem[stem]]
        expected = cap_long_side(load_rgb(raw / by_stem[stem]), 128)
        stored = cv2.imread(str(path))[..., ::-1]
        scale = min(1.0, 128 / max(width, height))
        assert stored.shape == expected.shape == (round(height * scale), round(width * scale), 3)
        # PNG up to train_png_max_side (lossless), JPEG quality 95 above it
        assert path.suffix == (".png" if max(stored.shape[:2]) <= 64 else ".jpg")
        formats[path.suffix[1:]] += 1
        if path.suffix == ".png":
            assert np.array_equal(stored, expected)
        else:
            assert cv2.PSNR(stored, np.ascontiguousarray(expected)) > 35
    assert {k: v for k, v in formats.items() if v} == manifest["train_formats"]
    assert formats["png"] and formats["jpg"]  # the folder exercises both


def test_full_size_test_sets(tmp_path, compose_cfg, caplog):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    names = write_mixed_folder(raw)
    manifest = run_prepare(compose_cfg, raw, out, *MIXED)
    by_stem = {source_stem(n): n for n in names}
    test = sources(out / "test")
    assert manifest["full_sizes"] == [48, 96]
    for full in (48, 96):
        folder = sources(out / f"test_{full}")
        expected = {s for s in test if min(names[by_stem[s]]) >= full}
        assert set(folder) == expected and manifest["full_size_counts"][str(full)] == len(folder)
        skipped = {e["file"] for e in manifest["full_size_skipped"][str(full)]}
        assert skipped == {by_stem[s] for s in set(test) - expected}  # small ones are listed
        for stem, path in folder.items():
            assert path.name == test[stem].name  # same photo, same name as in test/
            image = cv2.imread(str(path))[..., ::-1]
            assert np.array_equal(image, center_square(load_rgb(raw / by_stem[stem]), full))
        with np.load(out / f"masks_test_{full}.npz") as masks:
            assert masks.files == manifest["eval_families"]
            for family in masks.files:
                assert masks[family].shape == (len(folder), full, full)
                assert masks[family].dtype == np.uint8
                reference = make_masks(EVAL_FAMILIES[family], len(folder), full, full, 1234)
                assert np.array_equal(masks[family], reference)
    # the mixed folder has test photos on both sides of 96
    assert 0 < manifest["full_size_counts"]["96"] < manifest["full_size_counts"]["48"]
    assert manifest["full_size_skipped"]["96"]

    # a full size larger than every photo: an empty set, not an error
    caplog.set_level("INFO", logger="inpaintlab.prepare")
    manifest = run_prepare(compose_cfg, raw, tmp_path / "big", *MIXED, "data.full_sizes=[512]")
    assert manifest["full_size_counts"] == {"512": 0}
    assert len(manifest["full_size_skipped"]["512"]) == manifest["counts"]["test"]
    assert list((tmp_path / "big" / "test_512").iterdir()) == []
    with np.load(tmp_path / "big" / "masks_test_512.npz") as masks:
        assert masks["box"].shape == (0, 512, 512)
    assert any("test_512 is empty" in r.getMessage() for r in caplog.records)


def test_no_val_or_test_photo_contributes_to_train(tmp_path, compose_cfg):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    names = write_mixed_folder(raw)
    # same-named photos in two folders stay two photos
    (raw / "other").mkdir()
    Image.fromarray(smooth_photo(90, 90, 50)).save(raw / "other" / "p1.jpg")
    names["other/p1.jpg"] = (90, 90)
    run_prepare(compose_cfg, raw, out, *MIXED)
    split = {name: set(sources(out / name)) for name in ("train", "val", "test")}
    assert not split["train"] & split["val"]
    assert not split["train"] & split["test"]
    assert not split["val"] & split["test"]
    assert split["train"] | split["val"] | split["test"] == {source_stem(n) for n in names}
    expected = assign_splits(list(names), 0.15, 0.35, split_seed=7)  # conf/data: split_seed 7
    for name, members in split.items():
        assert members == {source_stem(n) for n in expected[name]}
    for full in (48, 96):  # full-size test images come from test photos only
        assert set(sources(out / f"test_{full}")) <= split["test"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train_max_side=16", "train_max_side"),
        ("data.full_sizes=[50]", "full_sizes"),
        ("data.full_sizes=[64,64]", "full_sizes"),
        ("data.train_png_max_side=-1", "train_png_max_side"),
    ],
)
def test_bad_size_settings_are_user_errors(tmp_path, compose_cfg, override, message):
    raw = tmp_path / "raw"
    write_odd_images(raw, np.random.default_rng(3))
    with pytest.raises(UserError, match=message):
        run_prepare(compose_cfg, raw, tmp_path / "out", override)


def test_prepare_is_deterministic(tmp_path, compose_cfg):
    raw = tmp_path / "raw"
    write_odd_images(raw, np.random.default_rng(1))
    first = run_prepare(compose_cfg, raw, tmp_path / "a")
    second = run_prepare(compose_cfg, raw, tmp_path / "b")
    assert first == second
    for name in ("masks_val.npz", "masks_test.npz"):
        with np.load(tmp_path / "a" / name) as a, np.load(tmp_path / "b" / name) as b:
            assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_split_is_stable_when_photos_are_added():
    names = [f"photo_{i}.jpg" for i in range(200)]
    before = assign_splits(names, 0.1, 0.1, split_seed=0)
    after = assign_splits(names + [f"new_{i}.jpg" for i in range(20)], 0.1, 0.1, split_seed=0)
    moved = sum(name not in after[split] for split in before for name in before[split])
    assert moved == 0  # each photo's split is its own (more in test_prepare_scale.py)
    assert sum(len(v) for v in before.values()) == 200


def run_stage(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "inpaintlab.prepare",
            "experiment=ci",
            f"hydra.run.dir={tmp_path / 'hydra'}",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("setup", "override", "message"),
    [
        ("unusable", None, "no usable images"),
        ("missing", None, "does not exist"),
        ("good", "data.image_size=30", "multiple of 8"),
        ("good", "data.val_fraction=1.5", "val_fraction"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, setup, override, message):
    raw = tmp_path / "raw"
    if setup == "unusable":
        raw.mkdir()
        (raw / "a.png").write_bytes(b"garbage")
        (raw / "b.jpg").write_bytes(b"")
    elif setup == "good":
        write_odd_images(raw, np.random.default_rng(2))
    args = [f"data.raw_dir={raw}", f"data.prepared_dir={tmp_path / 'out'}"] + (
        [override] if override else []
    )
    result = run_stage(tmp_path, *args)
    assert result.returncode == 2  # a UserError: nothing done (errors.py)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_val_photos_give_fixed_crops_at_training_zoom_levels(tmp_path, compose_cfg):
    """Each val photo: its centre square and data.val_crops - 1 crops of its train-size copy,
    the same in every prepare (seeded by the photo's path alone), one mask each."""
    raw = tmp_path / "raw"
    write_mixed_folder(raw)
    manifests = [
        run_prepare(
            compose_cfg, raw, tmp_path / out, *MIXED, "data.val_crops=5", "data.cache=false"
        )
        for out in ("a", "b")
    ]
    val = sorted((tmp_path / "a" / "val").iterdir())
    photos = manifests[0]["counts"]["val"]
    assert photos >= 1 and len(val) == 5 * photos == manifests[0]["val_images"]
    for path in val:
        twin = tmp_path / "b" / "val" / path.name
        assert path.read_bytes() == twin.read_bytes()
        assert Image.open(path).size == (32, 32)
    for stem in sources(tmp_path / "a" / "val"):
        crops = [load_rgb(tmp_path / "a" / "val" / f"{stem}.{k:02d}.png") for k in range(1, 5)]
        assert len({c.tobytes() for c in crops}) == 4  # four different places or zooms
    with np.load(tmp_path / "a" / "masks_val.npz") as masks:
        assert masks["mask"].shape == (len(val), 32, 32)


def test_val_crops_must_be_positive(tmp_path, compose_cfg):
    raw = tmp_path / "raw"
    write_mixed_folder(raw)
    with pytest.raises(UserError, match="val_crops"):
        run_prepare(compose_cfg, raw, tmp_path / "out", "data.val_crops=0")


def test_val_photos_get_full_size_squares_with_their_own_masks(tmp_path, compose_cfg):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    names = write_mixed_folder(raw)
    manifest = run_prepare(compose_cfg, raw, out, *MIXED)
    val = set(sources(out / "val"))
    for full in (48, 96):
        squares = sources(out / f"val_{full}")
        big_enough = {source_stem(n) for n, (w, h) in names.items() if min(w, h) >= full}
        assert set(squares) == val & big_enough
        assert squares or full == 96  # the 48 px set has photos (the test means something)
        assert manifest["val_full_size_counts"][str(full)] == len(squares)
        for path in squares.values():
            assert Image.open(path).size == (full, full)
        with (
            np.load(out / f"masks_val_{full}.npz") as masks,
            np.load(out / f"masks_test_{full}.npz") as test,
        ):
            assert set(masks.files) == {"box", "irregular", "outpaint"}  # data.val_families
            assert masks["box"].shape == (len(squares), full, full)
            rows = min(len(squares), len(test["box"]))
            assert rows == 0 or not np.array_equal(masks["box"][:rows], test["box"][:rows])

"""prepare stage on awkward input: odd formats are converted, bad files are skipped and listed,
nothing usable is a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintlab.prepare import assign_splits, prepare


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
    manifest = run_prepare(compose_cfg, raw, out, "data.train_scale=1.25")

    assert sum(manifest["counts"].values()) == 13  # 10 RGB + gray + RGBA + 16-bit
    skipped = {entry["file"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(skipped) == {"broken.jpg", "tiny.png"}  # .txt is not an image file at all
    assert "min_side" in skipped["tiny.png"]
    assert {"L", "RGBA"} <= set(manifest["source_modes"])
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for split in ("val", "test"):
        for path in (out / split).glob("*.png"):
            assert Image.open(path).size == (32, 32) and Image.open(path).mode == "RGB"
    short_sides = {min(Image.open(p).size) for p in (out / "train").glob("*.png")}
    assert short_sides == {40}  # image_size 32 * train_scale 1.25 (the default is 1.0)
    with np.load(out / "masks_test.npz") as masks:
        assert set(masks.files) == {"box", "irregular", "outpaint"}
        assert masks["box"].shape == (manifest["counts"]["test"], 32, 32)


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
    assert moved <= 10  # a handful shift at the split boundaries, not a reshuffle
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
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr

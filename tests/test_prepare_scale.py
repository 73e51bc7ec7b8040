"""prepare at scale: the split is per photo, the output does not depend on the number of
workers, and a rerun after adding photos decodes only the new ones (the cache)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_prepare import MIXED, smooth_photo, write_mixed_folder, write_odd_images

from inpaintlab.prepare import assign_splits, prepare_run, split_number


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder by relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(compose_cfg, raw: Path, out: Path, *extra: str):
    cfg = compose_cfg(
        "experiment=ci", f"data.raw_dir={raw}", f"data.prepared_dir={out}", *MIXED, *extra
    )
    return prepare_run(cfg.data)


def split_of(out: Path) -> dict[str, str]:
    """Prepared file stem -> its split folder."""
    return {p.stem: s for s in ("train", "val", "test") for p in (out / s).iterdir()}


def add_photos(raw: Path, count: int, first: int) -> None:
    for i in range(first, first + count):
        Image.fromarray(smooth_photo(80, 60, i)).save(raw / f"new_{i}.png")


def test_output_is_the_same_for_any_number_of_workers(tmp_path, compose_cfg):
    raw = tmp_path / "raw"
    write_odd_images(raw, np.random.default_rng(5))  # also skipped files and odd modes
    write_mixed_folder(raw)  # full-size test sets, PNG and JPEG train copies
    one = run(compose_cfg, raw, tmp_path / "one", "data.workers=1", "data.cache=false")
    two = run(compose_cfg, raw, tmp_path / "two", "data.workers=2")
    assert two.workers == 2 and one.workers == 1
    assert one.manifest["skipped"] and one.manifest["full_size_counts"]["96"] > 0
    assert tree(tmp_path / "one") == tree(tmp_path / "two")  # byte for byte, .npz included
    # and from the cache, in a pool
    again = run(compose_cfg, raw, tmp_path / "two", "data.workers=2")
    assert (again.decoded, again.reused) == (0, one.decoded)
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_adding_photos_decodes_only_the_new_ones(tmp_path, compose_cfg):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    raw.mkdir()
    add_photos(raw, 30, 0)
    first = run(compose_cfg, raw, out)
    assert (first.decoded, first.reused) == (30, 0)
    before, splits = tree(out), split_of(out)

    add_photos(raw, 10, 30)
    second = run(compose_cfg, raw, out)
    assert (second.decoded, second.reused) == (10, 30)
    after = tree(out)
    for name, data in before.items():  # every photo keeps its split and its bytes
        if not name.endswith((".npz", ".json")):
            assert after[name] == data, name
    assert {k: v for k, v in split_of(out).items() if k in splits} == splits
    # exactly what a prepare without the cache writes
    fresh = run(compose_cfg, raw, tmp_path / "fresh", "data.cache=false")
    assert fresh.decoded == 40 and tree(tmp_path / "fresh") == after

    # a copy with a new mtime is recognised by its content; a changed photo is decoded again
    os.utime(raw / "new_0.png", ns=(1, 1))
    Image.fromarray(smooth_photo(80, 60, 99)).save(raw / "new_1.png")
    (raw / "new_2.png").unlink()
    third = run(compose_cfg, raw, out)
    assert (third.decoded, third.reused) == (1, 38)
    entries = [p for p in (out.parent / ".prepared-cache").rglob("*.json")]
    assert len(entries) == 39  # the removed photo's entry is gone


def test_adding_photos_never_moves_an_existing_one():
    rng = np.random.default_rng(0)
    for trial in range(20):
        names = [f"p{trial}_{i}.jpg" for i in range(int(rng.integers(20, 200)))]
        before = assign_splits(names, 0.1, 0.2, split_seed=trial)
        grown = names + [f"new{trial}_{i}.jpg" for i in range(int(rng.integers(1, 100)))]
        after = assign_splits(grown, 0.1, 0.2, split_seed=trial)
        for split, members in before.items():
            assert set(members) <= set(after[split])
        for split, low, high in (("test", 0, 0.2), ("val", 0.2, 0.3), ("train", 0.3, 1)):
            assert all(low <= split_number(n, trial) < high for n in after[split])


@pytest.mark.parametrize("count", range(3, 12))
def test_tiny_folders_get_a_photo_in_every_split(count):
    for seed in range(30):
        names = [f"photo_{i}.png" for i in range(count)]
        split = assign_splits(names, 0.1, 0.2, seed)
        assert all(split[s] for s in ("train", "val", "test")), (count, seed, split)
        assert sorted(sum(split.values(), [])) == sorted(names)


def test_masks_made_in_chunks_are_make_masks_and_reused_from_the_cache(tmp_path, monkeypatch):
    from inpaintlab.data import prepare_masks
    from inpaintlab.data.masks import EVAL_FAMILIES, make_masks

    monkeypatch.setattr(prepare_masks, "CHUNK_BYTES", 5 * 32 * 32)  # 5 masks a chunk
    cache = tmp_path / "cache"
    stamps: dict[str, int] = {}
    for count in (23, 30):  # 4 full chunks + 3 rows, then 6 full chunks
        writer = prepare_masks.MaskWriter(cache=cache)
        writer.test_masks(tmp_path, ["box", "irregular"], count, 32, 1234)
        writer.val_masks(tmp_path, ["box", "outpaint"], count, 32, 99)
        with np.load(tmp_path / "masks_test.npz") as stored:
            for family in ("box", "irregular"):
                expected = make_masks(EVAL_FAMILIES[family], count, 32, 32, 1234)
                assert np.array_equal(stored[family], expected.astype(np.uint8))
        with np.load(tmp_path / "masks_val.npz") as stored:
            assert list(stored["family"][:3]) == ["box", "outpaint", "box"]
            for i in (0, 1, count - 1):
                family = EVAL_FAMILIES[["box", "outpaint"][i % 2]]
                assert np.array_equal(stored["mask"][i], make_masks(family, 1, 32, 32, 99 + i)[0])
        if not stamps:
            assert len(writer.used) == 15  # 3 arrays x 5 chunks
            stamps = {p.name: p.stat().st_mtime_ns for p in (cache / "masks").iterdir()}
    files = {p.name: p.stat().st_mtime_ns for p in (cache / "masks").iterdir()}
    assert len(writer.used) == 18 and len(files) == 15 + 6  # 2 new chunks per array
    kept = [name for name in stamps if name.split(".")[0] in writer.used]
    assert len(kept) == 12 and all(files[name] == stamps[name] for name in kept)


def test_photos_that_would_share_a_name_and_bad_worker_counts_are_user_errors(
    tmp_path, compose_cfg
):
    from inpaintlab.errors import UserError

    raw = tmp_path / "raw"
    (raw / "trip").mkdir(parents=True)
    for name in ("trip/beach.png", "trip__beach.png", "a.png", "b.png"):
        Image.fromarray(smooth_photo(64, 64, len(name))).save(raw / name)
    with pytest.raises(UserError, match="share one prepared name"):
        run(compose_cfg, raw, tmp_path / "out")
    (raw / "trip__beach.png").unlink()
    for value in ("0", "two"):
        with pytest.raises(UserError, match="data.workers"):
            run(compose_cfg, raw, tmp_path / "out", f"data.workers={value}")

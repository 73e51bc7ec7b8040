"""prepare stage: data/raw (any photos) -> data/prepared (split, resized, fixed val/test masks).

    data/prepared/
      train/*.png|*.jpg  each photo, long side shrunk to at most train_max_side (INTER_AREA, never
                         enlarged, aspect kept): the datamodule takes random crops of it at
                         several scales. Long side <= train_png_max_side: PNG, else JPEG
                         quality 95 (decodes 3.6x faster than PNG at 1024x768)
      val/*.png          centre square, resized to image_size x image_size
      test/*.png         idem
      test_<F>/*.png     for F in full_sizes: centre square at F x F of each test photo whose
                         short side is >= F (never enlarged; the others are listed in the
                         manifest); same file names as in test/
      masks_val.npz      "mask": (N_val,S,S) uint8, "family": family name of each val mask
      masks_test.npz     one (N_test,S,S) uint8 array per evaluation family
      masks_test_<F>.npz one (N_F,F,F) uint8 array per evaluation family (same generators, seed)
      manifest.json      counts, sizes, converted modes, skipped files and why

The split hashes (split_seed, relative path) per photo, so it does not depend on file order,
adding photos leaves the existing assignment alone, and every file made from one photo lands
in that photo's split.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from inpaintlab.data.io import ImageLoadError, list_images, load_rgb
from inpaintlab.data.masks import EVAL_FAMILIES, make_masks
from inpaintlab.settings import check_data
from inpaintlab.utils import (
    Busy,
    FileLock,
    UserError,
    atomic_write_json,
    fresh_temp_dir,
    replace_dir,
    user_errors_as_one_line,
)

log = logging.getLogger(__name__)

# Train copies above data.train_png_max_side: JPEG quality 95 without chroma subsampling (4:4:4):
# 43-50 dB PSNR on 1024 px photos (4:2:0: 39-47 dB); a 1024x768 one decodes in 2.6 ms, as PNG 9.3 ms.
TRAIN_JPEG_QUALITY = 95


def split_key(relative_path: str, split_seed: int) -> str:
    return hashlib.sha256(f"{split_seed}:{relative_path}".encode()).hexdigest()


def assign_splits(
    paths: list[str], val_fraction: float, test_fraction: float, split_seed: int
) -> dict[str, list[str]]:
    """Order files by hash, then take test, val, train. Val and test get at least one image
    each when there are three or more images."""
    ordered = sorted(paths, key=lambda p: split_key(p, split_seed))
    n = len(ordered)
    n_test = max(1, round(n * test_fraction)) if n >= 3 else 0
    n_val = max(1, round(n * val_fraction)) if n >= 3 else 0
    return {
        "test": sorted(ordered[:n_test]),
        "val": sorted(ordered[n_test : n_test + n_val]),
        "train": sorted(ordered[n_test + n_val :]),
    }


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def cap_long_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink (INTER_AREA) so the long side is at most max_side; smaller images are returned
    as they are, never enlarged."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to size, then crop the centre square."""
    image = resize_short_side(image, size)
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def prepared_name(index: int, name: str, suffix: str = ".png") -> str:
    """<index:05d>_<name without suffix, "/" as "__"><suffix>: the file name of a source photo
    in every split folder (sorted by name = sorted by index)."""
    return f"{index:05d}_{Path(name).with_suffix('').as_posix().replace('/', '__')}{suffix}"


def write_prepared_image(
    split_dir: Path, index: int, name: str, image: np.ndarray, jpeg_quality: int | None = None
) -> Path:
    """An RGB uint8 image as split_dir/prepared_name(index, name): lossless PNG, or JPEG at
    jpeg_quality (4:4:4); the layout the datamodule and evaluate read. Returns the path written."""
    suffix = ".png" if jpeg_quality is None else ".jpg"
    path = split_dir / prepared_name(index, name, suffix)
    params = []
    if jpeg_quality is not None:
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            jpeg_quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), params):
        raise UserError(f"could not write {path}")
    return path


def write_test_masks(
    prepared_dir: Path,
    families: Sequence[str],
    count: int,
    size: int,
    seed: int,
    filename: str = "masks_test.npz",
) -> None:
    """prepared_dir/<filename>: per family, `count` fixed (size x size) uint8 masks, the same
    for every model and baseline evaluated on this test split (mask i: rng [seed, i])."""
    np.savez_compressed(
        prepared_dir / filename,
        **{
            family: make_masks(EVAL_FAMILIES[family], count, size, size, seed).astype(np.uint8)
            for family in families
        },
    )


def validate(cfg: DictConfig) -> None:
    size = cfg.image_size
    if not isinstance(size, int) or size < 16 or size % 8:
        raise UserError(f"data.image_size must be a multiple of 8 and >= 16, got {size!r}")
    if (
        not 0 <= cfg.val_fraction < 1
        or not 0 <= cfg.test_fraction < 1
        or cfg.val_fraction + cfg.test_fraction >= 1
    ):
        raise UserError("data.val_fraction and data.test_fraction must be in [0, 1) and sum to < 1")
    max_side = cfg.train_max_side
    if not isinstance(max_side, int) or max_side < size:
        raise UserError(
            f"data.train_max_side must be an integer >= data.image_size ({size}), got {max_side!r}"
        )
    if not isinstance(cfg.train_png_max_side, int) or cfg.train_png_max_side < 0:
        raise UserError(
            f"data.train_png_max_side must be an integer >= 0, got {cfg.train_png_max_side!r}"
        )
    full_sizes = list(cfg.full_sizes or [])
    bad = [f for f in full_sizes if not isinstance(f, int) or f < 16 or f % 8]
    if bad or len(set(full_sizes)) != len(full_sizes):
        raise UserError(
            f"data.full_sizes must be distinct multiples of 8, each >= 16, got {full_sizes}"
        )
    unknown = [
        f for f in list(cfg.eval_families) + list(cfg.val_families) if f not in EVAL_FAMILIES
    ]
    if unknown:
        raise UserError(f"unknown mask families {unknown}; known: {sorted(EVAL_FAMILIES)}")


def prepare(cfg: DictConfig) -> dict:
    """Build data/prepared from data/raw; returns the manifest. One prepare at a time per
    prepared folder (a lock beside it; a second one stops with a one-line error), each in its
    own temp folder (utils.fresh_temp_dir). Values of the wrong type are one-line errors."""
    check_data(cfg)
    out_dir = Path(cfg.prepared_dir)
    try:
        lock = FileLock(out_dir.with_name(f".{out_dir.name}.lock")).acquire()
    except Busy as err:
        raise UserError(
            f"another prepare is writing {out_dir} ({err.holder or 'pid unknown'}); "
            "wait for it to finish, then run again"
        ) from None
    with lock:
        return _prepare(cfg)


def _prepare(cfg: DictConfig) -> dict:
    validate(cfg)
    raw_dir, out_dir = Path(cfg.raw_dir), Path(cfg.prepared_dir)
    if not raw_dir.is_dir():
        raise UserError(
            f"{raw_dir} does not exist: run `inpaintlab data synth` or put photos there"
        )
    files = list_images(raw_dir)
    if not files:
        raise UserError(
            f"no image files in {raw_dir} (looked for png, jpg, jpeg, bmp, tif, webp, ...)"
        )

    size = int(cfg.image_size)
    full_sizes = [int(f) for f in cfg.full_sizes or []]
    relative = {f.relative_to(raw_dir).as_posix(): f for f in files}
    splits = assign_splits(list(relative), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)

    tmp = fresh_temp_dir(out_dir)
    skipped: list[dict[str, str]] = []
    full_skipped: dict[str, list[dict[str, str]]] = {str(f): [] for f in full_sizes}
    full_counts: dict[str, int] = {str(f): 0 for f in full_sizes}
    train_formats: Counter[str] = Counter()
    largest_test_side = 0
    modes: Counter[str] = Counter()
    counts: dict[str, int] = {}
    for full in full_sizes:
        (tmp / f"test_{full}").mkdir()
    for split, names in splits.items():
        (tmp / split).mkdir()
        written = 0
        for name in tqdm(names, desc=f"prepare {split}", unit="img", leave=False, disable=None):
            try:
                image = load_rgb(relative[name])
                with Image.open(relative[name]) as handle:
                    modes[handle.mode] += 1
            except ImageLoadError as err:
                skipped.append({"file": name, "reason": str(err)})
                log.warning("skipped %s", err)
                continue
            if min(image.shape[:2]) < cfg.min_side:
                skipped.append(
                    {
                        "file": name,
                        "reason": f"smaller than data.min_side={cfg.min_side}: {image.shape[1]}x{image.shape[0]}",
                    }
                )
                continue
            if split == "train":
                out = cap_long_side(image, cfg.train_max_side)
                lossless = max(out.shape[:2]) <= cfg.train_png_max_side
                path = write_prepared_image(
                    tmp / split, written, name, out, None if lossless else TRAIN_JPEG_QUALITY
                )
                train_formats[path.suffix[1:]] += 1
            else:
                write_prepared_image(tmp / split, written, name, center_square(image, size))
            if split == "test":
                short = min(image.shape[:2])
                largest_test_side = max(largest_test_side, short)
                for full in full_sizes:
                    if short >= full:  # the same name as in test/: same photo, same index
                        write_prepared_image(
                            tmp / f"test_{full}", written, name, center_square(image, full)
                        )
                        full_counts[str(full)] += 1
                    else:
                        full_skipped[str(full)].append(
                            {
                                "file": name,
                                "reason": f"short side {short} < {full} (not enlarged)",
                            }
                        )
            written += 1
        counts[split] = written

    usable = sum(counts.values())
    if usable == 0:
        raise UserError(
            f"no usable images in {raw_dir}: all {len(files)} files were skipped (first: {skipped[0]['reason']})"
        )
    if counts["train"] == 0 or counts["val"] == 0 or counts["test"] == 0:
        raise UserError(
            f"need at least one image in each split, got {counts} from {usable} usable images; add photos"
        )

    val_families = list(cfg.val_families)
    val_masks = np.stack(
        [
            make_masks(
                EVAL_FAMILIES[val_families[i % len(val_families)]],
                1,
                size,
                size,
                cfg.eval_mask_seed + i,
            )[0]
            for i in range(counts["val"])
        ]
    )
    np.savez_compressed(
        tmp / "masks_val.npz",
        mask=val_masks.astype(np.uint8),
        family=np.array([val_families[i % len(val_families)] for i in range(counts["val"])]),
    )
    write_test_masks(tmp, cfg.eval_families, counts["test"], size, cfg.eval_mask_seed)
    for full in full_sizes:
        n = full_counts[str(full)]
        write_test_masks(
            tmp, cfg.eval_families, n, full, cfg.eval_mask_seed, f"masks_test_{full}.npz"
        )
        if n == 0:
            log.info(
                "test_%d is empty: no test photo has a short side >= %d (largest: %d px); "
                "photos are not enlarged for the full-size test sets",
                full,
                full,
                largest_test_side,
            )
        elif full_skipped[str(full)]:
            log.info(
                "test_%d: %d test photos, %d smaller ones left out (listed in the manifest)",
                full,
                n,
                len(full_skipped[str(full)]),
            )
    manifest = {
        "image_size": size,
        "train_max_side": int(cfg.train_max_side),
        "train_formats": dict(sorted(train_formats.items())),
        "counts": counts,
        "full_sizes": full_sizes,
        "full_size_counts": full_counts,
        "full_size_skipped": full_skipped,
        "source_files": len(files),
        "source_modes": dict(sorted(modes.items())),
        "eval_families": list(cfg.eval_families),
        "val_families": val_families,
        "skipped": skipped,
    }
    atomic_write_json(tmp / "manifest.json", manifest)
    replace_dir(tmp, out_dir)
    log.info("prepared %s (skipped %d) into %s", counts, len(skipped), out_dir)
    return manifest


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    manifest = prepare(cfg.data)
    full = ", ".join(f"test_{f}: {n}" for f, n in manifest["full_size_counts"].items())
    print(
        f"prepared {manifest['counts']} at {manifest['image_size']}px"
        + (f" (full-size {full})" if full else "")
        + f"; skipped {len(manifest['skipped'])} files"
    )


if __name__ == "__main__":
    main()

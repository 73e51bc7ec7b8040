"""prepare stage: data/raw (any photos) -> data/prepared (split, resized, fixed val/test masks).

    data/prepared/
      train/*.png|*.jpg  each photo, long side shrunk to at most train_max_side (INTER_AREA, never
                         enlarged, aspect kept): the datamodule takes random crops of it at
                         several scales. Long side <= train_png_max_side: PNG, else JPEG
                         quality 95 (decodes 3.6x faster than PNG at 1024x768)
      val/*.png          per val photo: its centre square resized to image_size x image_size
                         (<stem>.png) and val_crops - 1 crops placed and zoomed like training
                         crops, seeded by the photo's path (<stem>.<k>.png; prepare_jobs.val_crops)
      test/*.png         idem
      test_<F>/*.png     for F in full_sizes: centre square at F x F of each test photo whose
                         short side is >= F (never enlarged; the others are listed in the
                         manifest); same file names as in test/
      val_<F>/*.png      idem for the val photos: where training chooses the share of the
                         network's correction the model keeps (calibration.py)
      masks_val.npz      "mask": (N_val,S,S) uint8, "family": family name of each val mask
      masks_test.npz     one (N_test,S,S) uint8 array per evaluation family
      masks_test_<F>.npz one (N_F,F,F) uint8 array per evaluation family (same generators, seed)
      masks_val_<F>.npz  one (N_F,F,F) uint8 array per val family (seed eval_mask_seed + 1)
      manifest.json      counts, sizes, converted modes, skipped files and why

Every file made from one photo is named after the photo alone (prepared_stem: its path under
data/raw), and mask i of an .npz belongs to the i-th file of its folder in sorted order.

The split is per photo (assign_splits): a number in [0, 1) hashed from (split_seed, relative
path) against the fractions, so it does not depend on file order or on the other photos, and
adding photos never moves the existing ones (except in folders so small that a split would be
empty; see assign_splits).

At scale: file names are streamed to `data.workers` processes in small chunks, each worker
decodes one photo at a time and writes its files itself (memory stays bounded whatever the
folder's size), the masks are generated in chunks and streamed into their .npz, and with
`data.cache` each photo's files are kept in data/.prepared-cache/ (prepare_jobs), so a rerun
after adding photos decodes only the new ones. The output is the same for any number of workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tqdm import tqdm

from inpaintlab.data.io import list_images
from inpaintlab.data.masks import EVAL_FAMILIES
from inpaintlab.data.prepare_jobs import (
    Done,
    Job,
    Shaping,
    cap_long_side,
    center_square,
    entry_path,
    prepared_stem,
    prune_cache,
    resize_short_side,
    run_jobs,
    write_prepared_image,
)
from inpaintlab.data.prepare_masks import MaskWriter, write_test_masks
from inpaintlab.data.streaming import bounded_map, make_pool
from inpaintlab.errors import UserError, stage
from inpaintlab.files import Busy, FileLock, atomic_write_json, fresh_temp_dir, replace_dir
from inpaintlab.processes import available_cpus
from inpaintlab.settings import check_data

__all__ = [  # with the image helpers of prepare_jobs, for callers of this stage's functions
    "PrepareRun",
    "assign_splits",
    "cap_long_side",
    "center_square",
    "main",
    "prepare",
    "prepare_run",
    "prepared_stem",
    "resize_short_side",
    "split_number",
    "write_prepared_image",
    "write_test_masks",
]

log = logging.getLogger(__name__)

SPLITS = ("test", "val", "train")
# data.workers: null runs one worker per this many photos (up to every CPU): below it, starting
# worker processes (~1 s) costs more than they save.
PHOTOS_PER_AUTO_WORKER = 200
PHOTOS_PER_CHUNK = 16  # per round trip to a worker


def split_number(relative_path: str, split_seed: int) -> float:
    """A photo's uniform number in [0, 1): the first 64 bits of sha256("<seed>:<path>")."""
    digest = hashlib.sha256(f"{split_seed}:{relative_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    paths: Sequence[str], val_fraction: float, test_fraction: float, split_seed: int
) -> dict[str, list[str]]:
    """Each photo by its own split_number u: test if u < test_fraction, val if u < test_fraction
    + val_fraction, else train, so a photo's split never depends on the other photos.

    Tiny folders (3 photos or more): a split that this rule leaves empty takes the one photo
    nearest its range (test and val then have at least one photo each, and train keeps at least
    one); that photo goes back to its own split once another photo falls in that range. Only
    then can adding photos move an existing one. Fewer than 3 photos: the plain rule.
    """
    ordered = sorted((split_number(p, split_seed), p) for p in paths)
    numbers = [u for u, _ in ordered]
    n = len(ordered)
    n_test = sum(u < test_fraction for u in numbers)
    n_val = sum(test_fraction <= u < test_fraction + val_fraction for u in numbers)
    if n >= 3:
        n_test, n_val = max(1, n_test), max(1, n_val)
        while n_test + n_val > n - 1:  # train keeps one: the largest numbers move to it
            if n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
    names = [p for _, p in ordered]
    return {
        "test": sorted(names[:n_test]),
        "val": sorted(names[n_test : n_test + n_val]),
        "train": sorted(names[n_test + n_val :]),
    }


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
    crops = cfg.val_crops
    if not isinstance(crops, int) or isinstance(crops, bool) or crops < 1:
        raise UserError(f"data.val_crops must be an integer >= 1, got {crops!r}")
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


@dataclass(frozen=True)
class PrepareRun:
    """A finished prepare: the manifest, and how the work went (kept out of the manifest, so
    data/prepared is the same whether its photos came from the cache or not)."""

    manifest: dict
    decoded: int  # photos read from data/raw
    reused: int  # photos whose files came from the cache
    seconds: float  # the whole stage
    photo_seconds: float  # of which the photos (the rest: listing, masks, manifest, cache)
    workers: int


def prepare(cfg: DictConfig) -> dict:
    """Build data/prepared from data/raw; returns the manifest (prepare_run: with timings)."""
    return prepare_run(cfg).manifest


def prepare_run(cfg: DictConfig) -> PrepareRun:
    """One prepare at a time per prepared folder (a lock beside it; a second one stops with a
    one-line error), each in its own temp folder (files.fresh_temp_dir). Values of the wrong
    type are one-line errors."""
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


def cache_root(prepared_dir: Path) -> Path:
    """data/prepared -> data/.prepared-cache (git- and dvc-ignored; under the same lock)."""
    return prepared_dir.with_name(f".{prepared_dir.name}-cache")


def worker_count(setting: int | None, photos: int) -> int:
    """data.workers, or for null one per PHOTOS_PER_AUTO_WORKER photos up to every CPU."""
    if setting is not None:
        return setting
    return max(1, min(available_cpus(), photos // PHOTOS_PER_AUTO_WORKER))


def photo_jobs(
    splits: dict[str, list[str]], relative: dict[str, Path], tmp: Path, cache: Path | None
) -> Iterator[list[Job]]:
    """The photos' jobs, PHOTOS_PER_CHUNK at a time (made as the pool takes them)."""
    chunk: list[Job] = []
    for split in SPLITS:
        for name in splits[split]:
            entry = str(entry_path(cache, name, split)) if cache else None
            chunk.append(Job(str(relative[name]), name, split, str(tmp), entry))
            if len(chunk) == PHOTOS_PER_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class Tally:
    """The manifest's counts, filled from the workers' records in any order."""

    def __init__(self, full_sizes: Sequence[int]) -> None:
        self.counts = dict.fromkeys(SPLITS, 0)  # photos
        self.val_images = 0  # each val photo's centre square and its crops
        self.skipped: list[dict[str, str]] = []
        self.full_counts = {str(f): 0 for f in full_sizes}
        self.full_skipped: dict[str, list[dict[str, str]]] = {str(f): [] for f in full_sizes}
        self.val_full_counts = {str(f): 0 for f in full_sizes}
        self.train_formats: Counter[str] = Counter()
        self.modes: Counter[str] = Counter()
        self.largest_test_side = 0
        self.decoded = self.reused = 0

    def add(self, done: Done) -> None:
        self.reused += done.reused
        self.decoded += not done.reused
        if done.mode is not None:
            self.modes[done.mode] += 1
        if done.skipped:
            self.skipped.append({"file": done.relative, "reason": done.skipped})
            return
        self.counts[done.split] += 1
        self.val_images += sum(output.split(".")[0] == "val" for output in done.files)
        for full in self.val_full_counts:
            self.val_full_counts[full] += f"val_{full}" in done.files
        if done.split == "train":
            self.train_formats[done.files["train"][1:]] += 1
        if done.split == "test":
            self.largest_test_side = max(self.largest_test_side, done.short_side)
            for full in self.full_counts:
                if f"test_{full}" in done.files:
                    self.full_counts[full] += 1
                else:
                    reason = f"short side {done.short_side} < {full} (not enlarged)"
                    self.full_skipped[full].append({"file": done.relative, "reason": reason})


def _prepare(cfg: DictConfig) -> PrepareRun:
    started = time.perf_counter()
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
    relative = {f.relative_to(raw_dir).as_posix(): f for f in files}
    stems: dict[str, str] = {}
    for name in relative:
        other = stems.setdefault(prepared_stem(name), name)
        if other != name:
            raise UserError(f"{other} and {name} in {raw_dir} would share one prepared name")
    splits = assign_splits(list(relative), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)

    size = int(cfg.image_size)
    full_sizes = [int(f) for f in cfg.full_sizes or []]
    shaping = Shaping(
        image_size=size,
        train_max_side=int(cfg.train_max_side),
        train_png_max_side=int(cfg.train_png_max_side),
        full_sizes=tuple(full_sizes),
        min_side=int(cfg.min_side),
        val_crops=int(cfg.val_crops) - 1,
    )
    cache = None
    if cfg.get("cache", True):
        cache = cache_root(out_dir) / shaping.digest()
        cache.mkdir(parents=True, exist_ok=True)
        os.utime(cache)  # the most recently used settings are the ones kept
    workers = worker_count(cfg.get("workers"), len(files))

    tmp = fresh_temp_dir(out_dir)
    for folder in [*SPLITS, *(f"{split}_{f}" for split in ("test", "val") for f in full_sizes)]:
        (tmp / folder).mkdir()
    tally = Tally(full_sizes)
    pool = make_pool(workers)
    try:
        chunks = photo_jobs(splits, relative, tmp, cache)
        work = partial(run_jobs, shaping=shaping)
        with tqdm(total=len(files), desc="prepare", unit="img", disable=None) as bar:
            for records in bounded_map(pool, work, chunks, window=4 * workers, ordered=False):
                for record in records:
                    tally.add(record)
                bar.update(len(records))
                bar.set_postfix(cached=tally.reused, refresh=False)
        photo_seconds = time.perf_counter() - started
        counts = tally.counts
        usable = sum(counts.values())
        if usable == 0:
            raise UserError(
                f"no usable images in {raw_dir}: all {len(files)} files were skipped "
                f"(first: {sorted(tally.skipped, key=lambda e: e['file'])[0]['reason']})"
            )
        if counts["train"] == 0 or counts["val"] == 0 or counts["test"] == 0:
            raise UserError(
                f"need at least one image in each split, got {counts} from {usable} usable "
                "images; add photos"
            )
        masks = MaskWriter(pool, workers, cache)
        seed, families = int(cfg.eval_mask_seed), list(cfg.eval_families)
        masks.val_masks(tmp, list(cfg.val_families), tally.val_images, size, seed)
        masks.test_masks(tmp, families, counts["test"], size, seed)
        for full, n in tally.full_counts.items():
            masks.test_masks(tmp, families, n, int(full), seed, f"masks_test_{full}.npz")
        val_families = list(cfg.val_families)
        for full, n in tally.val_full_counts.items():  # other masks than the test sets'
            masks.test_masks(tmp, val_families, n, int(full), seed + 1, f"masks_val_{full}.npz")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    for full in full_sizes:
        if tally.full_counts[str(full)] == 0:
            log.info(
                "test_%d is empty: no test photo has a short side >= %d (largest: %d px); "
                "photos are not enlarged for the full-size test sets",
                full,
                full,
                tally.largest_test_side,
            )
        elif tally.full_skipped[str(full)]:
            log.info(
                "test_%d: %d test photos, %d smaller ones left out (listed in the manifest)",
                full,
                tally.full_counts[str(full)],
                len(tally.full_skipped[str(full)]),
            )
    by_file = partial(sorted, key=lambda entry: entry["file"])
    manifest = {
        "image_size": size,
        "train_max_side": int(cfg.train_max_side),
        "train_formats": dict(sorted(tally.train_formats.items())),
        "counts": counts,
        "val_images": tally.val_images,
        "full_sizes": full_sizes,
        "full_size_counts": tally.full_counts,
        "full_size_skipped": {f: by_file(entries) for f, entries in tally.full_skipped.items()},
        "val_full_size_counts": tally.val_full_counts,
        "source_files": len(files),
        "source_modes": dict(sorted(tally.modes.items())),
        "eval_families": list(cfg.eval_families),
        "val_families": list(cfg.val_families),
        "skipped": by_file(tally.skipped),
    }
    atomic_write_json(tmp / "manifest.json", manifest)
    replace_dir(tmp, out_dir)
    if cache is not None:
        used = {entry_path(cache, n, s).name for s, names in splits.items() for n in names}
        prune_cache(cache, used | masks.used)
    seconds = time.perf_counter() - started
    log.info(
        "prepared %s (skipped %d) into %s: %d photos decoded, %d from the cache, %.1f s "
        "(photos %.1f s, %.0f img/s, %d workers)",
        counts,
        len(tally.skipped),
        out_dir,
        tally.decoded,
        tally.reused,
        seconds,
        photo_seconds,
        len(files) / max(seconds, 1e-9),
        workers,
    )
    return PrepareRun(manifest, tally.decoded, tally.reused, seconds, photo_seconds, workers)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@stage
def main(cfg: DictConfig) -> None:
    run = prepare_run(cfg.data)
    manifest = run.manifest
    full = ", ".join(
        f"{split}_{f}: {n}"
        for split, key in (("test", "full_size_counts"), ("val", "val_full_size_counts"))
        for f, n in manifest[key].items()
    )
    print(
        f"prepared {manifest['counts']} at {manifest['image_size']}px"
        + (f" (full-size {full})" if full else "")
        + f"; skipped {len(manifest['skipped'])} files"
        + f"; {run.decoded} photos decoded, {run.reused} from the cache"
        + f" ({run.seconds:.1f} s, {run.workers} workers)"
    )


if __name__ == "__main__":
    main()

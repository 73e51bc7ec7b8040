"""The work the prepare stage hands to its worker processes for one photo: the source file ->
its files in data/prepared (the masks: prepare_masks).

A job is plain data (paths, the split, the output names), so any worker process can run it and
write its results straight into the prepared folder being built: nothing but a small `Done`
record travels back. With a cache folder, each photo's files live there, keyed by the settings
that shape them (`Shaping.digest`), the photo's split and relative path, and checked against
the source's size and mtime (then its sha256, so a copy with a new mtime, e.g. after
`dvc checkout`, is not decoded again); data/prepared gets hard links to them. A rerun decodes
only new or changed photos.

Why a cache folder beside data/prepared rather than `persist: true` on the DVC out: DVC deletes
a stage's outs before it runs it, and with `persist` data/prepared would no longer be a pure
function of its deps (files of an earlier config or of removed photos would have to be found and
cleaned), the run-cache is not used for stages with persistent outs, and `dvc checkout` replaces
the folder anyway. The cache is an optimisation only: deleting it changes nothing but the time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

from inpaintlab.data.crops import scale_crop_box
from inpaintlab.data.io import ImageLoadError, load_rgb

# Bump when the processing below changes what a photo's files hold (cache entries of another
# version are never read).
CACHE_VERSION = 1

KEEP_CACHE_SETTINGS = 3  # cache folders of data settings kept (the most recently used)

# Train copies above train_png_max_side: JPEG quality 95 without chroma subsampling (4:4:4):
# 43-50 dB PSNR on 1024 px photos (4:2:0: 39-47 dB); a 1024x768 one decodes in 2.6 ms, as PNG 9.3 ms.
TRAIN_JPEG_QUALITY = 95


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


# The val crops' geometry: the training crops' (conf/datamodule/default.yaml `crop`), from 1:1
# pixels of the stored train copy to the whole of it.
VAL_CROP_SCALE = (0.0, 1.0)
VAL_CROP_RATIO = (3 / 4, 4 / 3)


def val_crops(image: np.ndarray, relative: str, count: int, size: int) -> list[np.ndarray]:
    """`count` size x size crops of a val photo (already capped like a train copy), placed and
    zoomed as training crops are (scale_crop_box), from an rng seeded by the photo's path alone.

    Why crops and not one thumbnail per photo: validation chooses the checkpoint and the share
    of the correction (models/generator.py), and a folder of 20 photos has 2 val photos; whole
    photos shrunk to the training size show neither the pixel scale users run the model at nor
    enough holes to choose by."""
    seed = int.from_bytes(hashlib.sha256(f"val-crops\0{relative}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    crops = []
    for _ in range(count):
        left, top, right, bottom = scale_crop_box(
            height,
            width,
            (size, size),
            VAL_CROP_SCALE,
            VAL_CROP_RATIO,
            lambda a, b: float(rng.uniform(a, b)),
            lambda a, b: int(rng.integers(a, b + 1)),
        )
        crop = image[top:bottom, left:right]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


def prepared_stem(relative_path: str) -> str:
    """The file name (without .png/.jpg) of a source photo in every prepared folder: its path
    under data/raw with "/" as "__" and its extension's dot as "_" (photo.jpg and photo.png
    stay two files). Fixed per photo, whatever else is in the folder."""
    path = Path(relative_path)
    return (path.with_suffix("").as_posix() + path.suffix.replace(".", "_")).replace("/", "__")


def encode(image: np.ndarray, jpeg_quality: int | None = None) -> tuple[bytes, str]:
    """An RGB uint8 image as (file bytes, suffix): lossless PNG, or JPEG at jpeg_quality (4:4:4)."""
    suffix, params = ".png", []
    if jpeg_quality is not None:
        suffix = ".jpg"
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            jpeg_quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {image.shape} image as {suffix}")
    return data.tobytes(), suffix


def write_file(path: Path, data: bytes) -> None:
    """Temp file, then rename: a killed worker never leaves half a file under the final name.
    No fsync: the prepared folder is renamed into place as a whole, and a cache entry counts
    only once its .json (written last) exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    with open(tmp, "xb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def link_or_copy(source: Path, dest: Path) -> None:
    """A hard link (no second copy on disk; deleting data/prepared, as DVC does before each run,
    then only drops links, which on a disk mounted with `discard` is 60x faster than freeing
    the blocks), a copy where links are not possible. Sharing the inode is safe: nothing writes
    into an existing file here, every write is a new file renamed into place (write_file)."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


@dataclass(frozen=True)
class Shaping:
    """The data settings a photo's prepared files depend on (besides the photo and its split)."""

    image_size: int
    train_max_side: int
    train_png_max_side: int
    full_sizes: tuple[int, ...]
    min_side: int
    val_crops: int = 0  # crops per val photo beside its centre square

    def digest(self) -> str:
        """Names the cache folder: these settings, the processing version and the libraries
        that decode, resize and encode."""
        key = {
            **asdict(self),
            "version": CACHE_VERSION,
            "jpeg_quality": TRAIN_JPEG_QUALITY,
            "opencv": cv2.__version__,
            "pillow": PIL.__version__,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    source: str  # the photo's file
    relative: str  # its path under data/raw
    split: str  # train, val or test
    out_dir: str  # the prepared folder being built: files go to <out_dir>/<folder>/<stem><suffix>
    entry: str | None  # cache entry path without suffix (None: no cache)


@dataclass(frozen=True)
class Done:
    """What the manifest needs to know about one prepared photo."""

    relative: str
    split: str
    mode: str | None  # the source's Pillow mode, None when it could not be read
    short_side: int
    # output (_out_path: train, val, val.<k>, val_<F>, test, test_<F>) -> its suffix
    files: dict[str, str]
    skipped: str | None  # why the photo was left out
    reused: bool  # taken from the cache, not decoded


def entry_path(cache_dir: Path, relative: str, split: str) -> Path:
    """A photo's cache entry (files `<entry>.<folder><suffix>` and `<entry>.json`)."""
    key = hashlib.sha256(f"{split}\0{relative}".encode()).hexdigest()[:32]
    return cache_dir / key[:2] / key


def run_job(job: Job, shaping: Shaping) -> Done:
    """Prepare one photo: from its cache entry when that is still valid, else from the source."""
    entry = Path(job.entry) if job.entry else None
    if entry is None:
        return _done(job, _process(job, shaping, None), reused=False)
    stat = os.stat(job.source)
    record = _read_record(entry)
    if record is not None and _describes(record, entry, job.source, stat):
        try:
            for folder, suffix in record["files"].items():
                link_or_copy(Path(f"{entry}.{folder}{suffix}"), _out_path(job, folder, suffix))
            return _done(job, record, reused=True, source=job.source)
        except FileNotFoundError:  # an entry's file was deleted: made again below
            pass
    if record is not None:  # a changed photo: its old files go, the record first
        entry.with_suffix(".json").unlink(missing_ok=True)
        for folder, suffix in record.get("files", {}).items():
            Path(f"{entry}.{folder}{suffix}").unlink(missing_ok=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    meta = _process(job, shaping, entry)
    record = dict(meta, size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=_sha256(job.source))
    if record["skipped"]:  # the reason names the source file, which may move: kept without it
        record["skipped"] = record["skipped"].replace(job.source, "{path}")
    write_file(entry.with_suffix(".json"), json.dumps(record).encode())
    return _done(job, meta, reused=False)


def _out_path(job: Job, output: str, suffix: str) -> Path:
    """output: a prepared folder (train, val, test, test_<F>), or "val.<k>" for a val crop
    (val/<stem>.<k><suffix>, beside the photo's centre square val/<stem><suffix>)."""
    folder, _, part = output.partition(".")
    name = prepared_stem(job.relative) + (f".{part}" if part else "")
    return Path(job.out_dir) / folder / f"{name}{suffix}"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_record(entry: Path) -> dict | None:
    try:
        return json.loads(entry.with_suffix(".json").read_bytes())
    except (OSError, ValueError):
        return None


def _describes(record: dict, entry: Path, source: str, stat: os.stat_result) -> bool:
    """Whether a cache record is of the source file's current content: same size and mtime,
    or same size and sha256 (a copy, a checkout: the record then takes the new mtime)."""
    if record.get("size") != stat.st_size:
        return False
    if record.get("mtime_ns") != stat.st_mtime_ns:
        if record.get("sha256") != _sha256(source):
            return False
        record["mtime_ns"] = stat.st_mtime_ns
        write_file(entry.with_suffix(".json"), json.dumps(record).encode())
    return True


def _done(job: Job, meta: dict, reused: bool, source: str = "") -> Done:
    """The record for the manifest; a cached skip reason gets the source's path back."""
    skipped = meta["skipped"]
    if skipped and source:
        skipped = skipped.replace("{path}", source)
    return Done(
        job.relative,
        job.split,
        meta["mode"],
        meta["short_side"],
        meta["files"],
        skipped,
        reused,
    )


def _process(job: Job, shaping: Shaping, entry: Path | None) -> dict:
    """Decode the source and write its files for its split; returns the entry's record."""
    meta: dict = {"mode": None, "short_side": 0, "files": {}, "skipped": None}
    try:
        image = load_rgb(job.source)
        with Image.open(job.source) as handle:
            meta["mode"] = handle.mode
    except ImageLoadError as err:
        meta["skipped"] = str(err)
        return meta
    height, width = image.shape[:2]
    meta["short_side"] = short = min(height, width)
    if short < shaping.min_side:
        meta["skipped"] = f"smaller than data.min_side={shaping.min_side}: {width}x{height}"
        return meta
    outputs: dict[str, tuple[bytes, str]] = {}
    if job.split == "train":
        out = cap_long_side(image, shaping.train_max_side)
        lossless = max(out.shape[:2]) <= shaping.train_png_max_side
        outputs["train"] = encode(out, None if lossless else TRAIN_JPEG_QUALITY)
    else:
        outputs[job.split] = encode(center_square(image, shaping.image_size))
    if job.split == "val":
        stored = cap_long_side(image, shaping.train_max_side)
        crops = val_crops(stored, job.relative, shaping.val_crops, shaping.image_size)
        for k, crop in enumerate(crops, start=1):
            outputs[f"val.{k:02d}"] = encode(crop)
    if job.split in ("test", "val"):
        for full in shaping.full_sizes:
            if short >= full:  # never enlarged; the manifest lists the smaller ones
                outputs[f"{job.split}_{full}"] = encode(center_square(image, full))
    for folder, (data, suffix) in outputs.items():
        if entry is not None:
            write_file(Path(f"{entry}.{folder}{suffix}"), data)
            link_or_copy(Path(f"{entry}.{folder}{suffix}"), _out_path(job, folder, suffix))
        else:
            write_file(_out_path(job, folder, suffix), data)
        meta["files"][folder] = suffix
    return meta


def run_jobs(jobs: list[Job], shaping: Shaping) -> list[Done]:
    """A chunk of photos (one round trip to a worker)."""
    return [run_job(job, shaping) for job in jobs]


def write_prepared_image(
    split_dir: Path, name: str, image: np.ndarray, jpeg_quality: int | None = None
) -> Path:
    """An RGB uint8 image as split_dir/<prepared_stem(name)>.png (lossless) or .jpg (at
    jpeg_quality, 4:4:4): the layout the datamodule and evaluate read. Returns the path."""
    data, suffix = encode(image, jpeg_quality)
    path = split_dir / f"{prepared_stem(name)}{suffix}"
    write_file(path, data)
    return path


def prune_cache(cache: Path, used: set[str]) -> None:
    """Drop the entries of photos this run did not have (removed, renamed, moved to another
    split) and mask chunks it did not use, temp files of killed workers, and the folders of other data settings beyond the
    KEEP_CACHE_SETTINGS most recently used. Runs under the prepare lock."""
    for folder in cache.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.endswith(".tmp") or path.name.split(".", 1)[0] not in used:
                path.unlink(missing_ok=True)
    others = [p for p in cache.parent.iterdir() if p.is_dir() and p != cache]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP_CACHE_SETTINGS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)

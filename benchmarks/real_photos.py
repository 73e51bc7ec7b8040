"""Real photos a model never saw: the trained model against every classical baseline (Telea,
Navier-Stokes, FSR, biharmonic, PatchMatch), at the training size and at full size through
`predict`'s inference code (256 and 512 px), per mask family.

    python benchmarks/real_photos.py --photos DIR [--photos DIR ...] --holdout N [--train-args ""]
    python benchmarks/real_photos.py --checkpoint models/model.ckpt [--photos DIR]   # measure only

Photos: the folders given with `--photos` (any common format; e.g. `../shared/photos`), else
the real photographs that ship inside installed wheels (the `bench` extra): scikit-image's
`skimage/data/` (astronaut, chelsea, coffee, rocket, motorcycle, and the grayscale camera, coins,
moon, grass), scikit-learn's `china.jpg` and `flower.jpg`, matplotlib's `grace_hopper.jpg`.
Nothing is downloaded.

`--holdout N` is the "own photos" path of the README end to end: all photos but N held-out ones
(chosen by a hash of the name) are copied as they are into `<work>/data/raw`, and the default
stage commands run in `<work>`: `python -m inpaintlab.prepare ARGS`, `python -m inpaintlab.train
ARGS`, `python -m inpaintlab.export ARGS` (ARGS = `--train-args`). Without it, `--checkpoint` and
its `models/export/model.onnx` beside `models/` are measured on all the photos.

Test set, from the held-out photos only (split by photo, never by crop), in the prepare stage's
layout so the stage's own `evaluate` measures it:
- at the training size S: `--crops-per-scale` square crops at each of `--scales` (side = that
  fraction of the short side), resized to S (`test/`, `masks_test.npz`);
- at each full size F (`data.full_sizes`): the photo resized to short side F and up to three
  F x F squares along its long side (`test_<F>/`, `masks_test_<F>.npz`); photos smaller than F
  are not upscaled.
Then `python -m inpaintlab.evaluate` runs on it with every baseline and all images
(`evaluate.full_size.max_images` lifted), and its table is printed (margins over the best
classical method). The work folder is kept with `--out`.

A measurement, not a test (tests/test_real_photos.py checks the photo discovery and the test set).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from inpaintlab.data.bundled import BUNDLED, Photo, find_photos, package_dir  # noqa: F401
from inpaintlab.data.io import list_images, load_rgb
from inpaintlab.files import atomic_dir, atomic_write_json
from inpaintlab.prepare import (
    center_square,
    resize_short_side,
    write_prepared_image,
    write_test_masks,
)

ROOT = Path(__file__).resolve().parents[1]

SCALES = (0.6, 0.3)
CROPS_PER_SCALE = 4  # 12 photos x 2 scales x 4 = 96 test images


@dataclass(frozen=True)
class Crop:
    photo: str
    scale: float
    top: int
    left: int
    side: int

    @property
    def name(self) -> str:
        """File-name-safe label, e.g. skimage_astronaut_s60_l123_t45."""
        stem = Path(self.photo).with_suffix("").as_posix().replace("/", "_")
        return f"{stem}_s{round(self.scale * 100)}_l{self.left}_t{self.top}"


def folder_photos(folders: Sequence[Path]) -> list[Photo]:
    """Every image file under the folders (recursive), named "<folder name>/<relative path>"."""
    photos = []
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"error: --photos {folder}: not a folder")
        for path in list_images(folder):
            photos.append(Photo(f"{folder.name}/{path.relative_to(folder).as_posix()}", path))
    return sorted(photos, key=lambda p: p.name)


def full_size_squares(image: np.ndarray, size: int) -> list[np.ndarray]:
    """The photo at short side `size`, and up to three size x size squares along its long side
    (start, middle, end; fewer when they would overlap by more than half). [] if it is smaller."""
    if min(image.shape[:2]) < size:
        return []
    resized = resize_short_side(image, size)
    h, w = resized.shape[:2]
    span = max(h, w) - size
    count = 1 if span < size // 2 else (2 if span < size else 3)
    offsets = sorted({round(k * span / max(1, count - 1)) for k in range(count)})
    if count == 1:
        offsets = [span // 2]
    out = []
    for offset in offsets:
        top, left = (offset, 0) if h > w else (0, offset)
        out.append(np.ascontiguousarray(resized[top : top + size, left : left + size]))
    return out


def _rng(*key: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def crop_boxes(
    name: str,
    height: int,
    width: int,
    size: int,
    scales: Sequence[float] = SCALES,
    per_scale: int = CROPS_PER_SCALE,
    seed: int = 0,
) -> list[Crop]:
    """Square crops of one photo: per scale, `per_scale` positions drawn from an rng seeded by
    (seed, name, scale), so they depend on nothing else (not on the other photos or their order)."""
    short = min(height, width)
    crops = []
    for scale in scales:
        side = min(short, max(size, round(scale * short)))
        rng = _rng(seed, name, scale)
        for _ in range(per_scale):
            top = int(rng.integers(0, height - side + 1))
            left = int(rng.integers(0, width - side + 1))
            crops.append(Crop(name, float(scale), top, left, side))
    return crops


def build_crops(
    photos: Sequence[Photo],
    size: int,
    scales: Sequence[float] = SCALES,
    per_scale: int = CROPS_PER_SCALE,
    seed: int = 0,
) -> list[tuple[Crop, np.ndarray]]:
    """(crop, size x size x 3 uint8 RGB) for every photo, in photo order. Grayscale photos come out
    as RGB (load_rgb, as the prepare stage reads them); resizing is prepare's center_square."""
    out = []
    for photo in photos:
        image = load_rgb(photo.path)
        for crop in crop_boxes(photo.name, *image.shape[:2], size, scales, per_scale, seed):
            window = image[crop.top : crop.top + crop.side, crop.left : crop.left + crop.side]
            out.append((crop, np.ascontiguousarray(center_square(window, size))))
    return out


def write_test_set(
    out_dir: Path,
    crops: Sequence[tuple[Crop, np.ndarray]],
    families: Sequence[str],
    mask_seed: int,
    full_size: dict[int, list[tuple[str, np.ndarray]]] | None = None,
) -> None:
    """out_dir/test/*.png + masks_test.npz, as the prepare stage writes its test split (the folder
    is replaced), the full-size sets test_<F>/ + masks_test_<F>.npz from `full_size`
    ({F: [(name, image)]}), + manifest.json listing each crop's source."""
    size = crops[0][1].shape[0]
    with atomic_dir(out_dir) as tmp:
        (tmp / "test").mkdir()
        for i, (crop, image) in enumerate(crops):
            write_prepared_image(tmp / "test", f"{i:05d}_{crop.name}", image)  # sorted = in order
        write_test_masks(tmp, list(families), len(crops), size, mask_seed)
        counts = {}
        for full, images in (full_size or {}).items():
            (tmp / f"test_{full}").mkdir()
            for i, (name, image) in enumerate(images):
                write_prepared_image(tmp / f"test_{full}", f"{i:05d}_{name}", image)
            if images:
                write_test_masks(
                    tmp, list(families), len(images), full, mask_seed, f"masks_test_{full}.npz"
                )
            counts[str(full)] = len(images)
        atomic_write_json(
            tmp / "manifest.json",
            {
                "image_size": size,
                "counts": {"test": len(crops)},
                "full_size_counts": counts,
                "eval_families": list(families),
                "eval_mask_seed": mask_seed,
                "crops": [
                    {
                        "photo": c.photo,
                        "scale": c.scale,
                        "top": c.top,
                        "left": c.left,
                        "side": c.side,
                    }
                    for c, _ in crops
                ],
            },
        )


def data_config(checkpoint: Path) -> dict:
    """The `data` config the checkpoint was trained with (conf/data/default.yaml if it has none)."""
    from inpaintlab.checkpoints import load_checkpoint  # weights_only=True: nothing in it runs

    raw = load_checkpoint(checkpoint)
    data = raw.get("inpaintlab", {}).get("config", {}).get("data")
    if data is None:
        print(f"note: {checkpoint} holds no config; using conf/data/default.yaml", file=sys.stderr)
        data = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/data/default.yaml"))
    return data


def holdout_split(photos: Sequence[Photo], n: int, seed: int = 0) -> tuple[list, list]:
    """(train photos, n held-out photos), chosen by a hash of (seed, name)."""
    ordered = sorted(photos, key=lambda p: hashlib.sha256(f"{seed}:{p.name}".encode()).digest())
    held = sorted(ordered[:n], key=lambda p: p.name)
    return [p for p in photos if p not in held], held


def write_training_crops(
    photo: Photo, raw: Path, count: int, seed: int = 0
) -> list[tuple[int, int, int]]:
    """`count` square crops of one photo into raw/ as PNG, sides uniform in 20-100% of its short
    side, positions from an rng seeded by (seed, name): many views of few photos, standing in
    for a folder of many photos. Returns the (top, left, side) of each crop."""
    from PIL import Image

    image = load_rgb(photo.path)
    height, width = image.shape[:2]
    short = min(height, width)
    rng = _rng(seed, photo.name, "train")
    stem = photo.name.replace("/", "_").rsplit(".", 1)[0]
    boxes = []
    for i in range(count):
        side = int(rng.integers(max(8, short // 5), short + 1))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = image[top : top + side, left : left + side]
        Image.fromarray(np.ascontiguousarray(crop)).save(raw / f"{stem}_{i:04d}.png")
        boxes.append((top, left, side))
    return boxes


def train_on_photos(
    photos: Sequence[Photo], work: Path, args: Sequence[str], crops: int = 0, seed: int = 0
) -> Path:
    """The README's "own photos" commands on these photos in `work` (prepare, train, export);
    returns the checkpoint.
    With `crops`, data/raw gets that many random crops of each photo instead of the photos."""
    raw = work / "data" / "raw"
    raw.mkdir(parents=True)
    for photo in photos:
        if crops:
            write_training_crops(photo, raw, crops, seed)
        else:  # copied as they are: mixed formats, sizes and modes
            shutil.copy2(photo.path, raw / photo.name.replace("/", "_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.setdefault("OMP_NUM_THREADS", "2")
    env["PYTHONHASHSEED"] = "0"
    for stage in ("prepare", "train", "export"):
        cmd = [sys.executable, "-m", f"inpaintlab.{stage}", *args]
        print(f"$ cd {work} && {shlex.join(['python', *cmd[1:]])}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()
            print("\n".join(output[-40:]), file=sys.stderr)
            raise SystemExit(f"error: {stage} failed (exit {result.returncode}); work dir {work}")
        # the stage's own summary line (its logging goes to stderr)
        lines = result.stdout.splitlines() or result.stderr.splitlines()
        last = next((line for line in reversed(lines) if line.strip()), "")
        print(f"  {last.strip()}  [{time.perf_counter() - started:.0f}s]", flush=True)
    return work / "models" / "model.ckpt"


def full_size_images(photos: Sequence[Photo], sizes: Sequence[int]) -> dict[int, list]:
    """{F: [(name, F x F image)]} over the photos, in photo order."""
    out: dict[int, list] = {int(f): [] for f in sizes}
    for photo in photos:
        image = load_rgb(photo.path)
        stem = photo.name.replace("/", "_").rsplit(".", 1)[0]
        for full in out:
            for k, square in enumerate(full_size_squares(image, full)):
                out[full].append((f"{stem}_{k}", square))
    return out


def measure(work: Path, test_dir: Path, args: Sequence[str], max_images: int) -> None:
    """The evaluate stage on the benchmark's test set, every baseline, `max_images` per size."""
    cmd = [
        sys.executable,
        "-m",
        "inpaintlab.evaluate",
        *args,
        f"data.prepared_dir={test_dir}",
        f"evaluate.metrics_path={test_dir / 'eval.json'}",
        f"evaluate.samples_path={test_dir / 'samples.png'}",
        f"evaluate.full_size.max_images={max_images}",
        # its own store: benchmark numbers must not land on the training run
        f"logger.tracking_uri=sqlite:///{test_dir / 'mlflow.db'}",
        "hydra.run.dir=" + str(test_dir / "hydra"),
    ]
    print(f"$ cd {work} && {shlex.join(['python', *cmd[1:]])}", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.setdefault("OMP_NUM_THREADS", "2")
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"error: evaluate failed (exit {result.returncode}); work dir {work}")
    print(result.stdout)
    print(
        f"[evaluate {time.perf_counter() - started:.0f}s] metrics: {test_dir / 'eval.json'}, "
        f"samples: {test_dir / 'samples.png'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, action="append", help="a folder of photos")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/model.ckpt"))
    parser.add_argument("--out", type=Path, help="work folder to keep (default: a temp folder)")
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    parser.add_argument("--crops-per-scale", type=int, default=CROPS_PER_SCALE)
    parser.add_argument("--seed", type=int, default=0, help="crop positions (and the holdout)")
    parser.add_argument(
        "--holdout",
        "--train-holdout",
        type=int,
        metavar="N",
        help="train on all photos but N (prepare + train + export in the work folder), test on N",
    )
    parser.add_argument(
        "--train-crops",
        type=int,
        default=0,
        metavar="K",
        help="with --holdout: train on K random crops of each photo instead of the photos",
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=100000,
        help="full-size images per size (FSR takes seconds per 512 px image; default: all)",
    )
    parser.add_argument(
        "--train-args",
        default="",
        help="Hydra overrides for every stage (default: none, the default config)",
    )
    args = parser.parse_args()

    if args.photos:
        photos = folder_photos(args.photos)
    else:
        photos, missing = find_photos()
        for line in missing:
            print(f"missing: {line}", file=sys.stderr)
    if not photos:
        raise SystemExit("error: no photos found (--photos DIR, or pip install -e '.[bench]')")
    stage_args = shlex.split(args.train_args)

    with tempfile.TemporaryDirectory(prefix="inpaintlab-real-") as tmp:
        work = args.out or Path(tmp) / "project"
        checkpoint, test_photos = args.checkpoint, photos
        if args.holdout is not None:
            if not 0 < args.holdout < len(photos) - 2:
                raise SystemExit(f"error: --holdout must be in 1..{len(photos) - 3}")
            if work.exists():
                shutil.rmtree(work)
            train_photos, test_photos = holdout_split(photos, args.holdout, args.seed)
            print(f"train on {len(train_photos)} photos: {', '.join(p.name for p in train_photos)}")
            print(f"held out {len(test_photos)}: {', '.join(p.name for p in test_photos)}")
            started = time.perf_counter()
            checkpoint = train_on_photos(
                train_photos, work, stage_args, args.train_crops, args.seed
            )
            print(f"prepare + train + export: {time.perf_counter() - started:.0f}s", flush=True)
        else:
            work = checkpoint.resolve().parents[1]  # the project the checkpoint belongs to
        if not checkpoint.exists():
            raise SystemExit(f"error: {checkpoint} does not exist: train a model first")

        data = data_config(checkpoint)
        size, families = int(data["image_size"]), list(data["eval_families"])
        crops = build_crops(test_photos, size, args.scales, args.crops_per_scale, args.seed)
        full = full_size_images(test_photos, data.get("full_sizes") or [256, 512])
        test_dir = (args.out or Path(tmp)) / "real_photos"
        write_test_set(test_dir, crops, families, int(data["eval_mask_seed"]), full)
        counts = ", ".join(f"{len(v)} at {k}px" for k, v in full.items())
        print(
            f"test set from {len(test_photos)} held-out photos: {len(crops)} crops at {size}px, "
            f"{counts}, in {test_dir}\n",
            flush=True,
        )
        measure(work, test_dir.resolve(), stage_args, args.max_images)


if __name__ == "__main__":
    main()

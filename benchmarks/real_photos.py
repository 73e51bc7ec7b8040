"""Generalisation to real photos: the trained model vs OpenCV Telea and Navier-Stokes on crops of
real photographs that no training set here contains, per mask family and per masked-area bin.

    python benchmarks/real_photos.py [--checkpoint models/model.ckpt] [--out DIR]
    python benchmarks/real_photos.py --train-holdout 4 [--train-args "experiment=ci"] [--out DIR]

The photos ship inside installed wheels (the `bench` extra, which `make install` installs):
scikit-image's `skimage/data/` (astronaut, chelsea, coffee, rocket, motorcycle, and the grayscale
camera, coins, moon, grass), scikit-learn's `china.jpg` and `flower.jpg`, matplotlib's
`grace_hopper.jpg`. Nothing is downloaded (`skimage.data` functions are not called).

Test set: from every photo, `--crops-per-scale` square crops at each of `--scales` (side = that
fraction of the photo's short side, at least the training size), at positions fixed by `--seed`
and the photo's name, resized to the model's training size (`data.image_size` in the checkpoint's
config). They are written as the prepare stage writes its test split (`<out>/test/*.png`,
`<out>/masks_test.npz` with the checkpoint's `data.eval_families` and `data.eval_mask_seed`, using
prepare's own functions), plus `<out>/manifest.json` (which crop came from where), and measured by
the same evaluate() as `benchmarks/quality.py`.

`--train-holdout N` runs the "own photos" path end to end: all photos but N held-out ones are
copied as they are (JPEG and PNG, RGB and grayscale, 300 to 740 px) into `<work>/data/raw`, the
standard stage commands run in `<work>` (`python -m inpaintlab.prepare ARGS`, then
`python -m inpaintlab.train ARGS`, ARGS = `--train-args`), and the checkpoint they produce is
measured on crops of the N held-out photos only. `--train-crops K` writes K random square crops
(20-100% of the short side) of each training photo instead, standing in for a folder of many
photos: the way to measure generalisation to unseen photos with the photos at hand.

A measurement, not a test (tests/test_real_photos.py checks that the photos are found and the
crops are deterministic). Exits 0 after printing the table.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
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

from inpaintlab.data.io import load_rgb
from inpaintlab.prepare import center_square, write_prepared_image, write_test_masks
from inpaintlab.utils import atomic_write_json, fresh_temp_dir, replace_dir

ROOT = Path(__file__).resolve().parents[1]

# package -> (folder inside the installed package, photos in it). Real photographs only: the
# wheels' synthetic, microscopy and astronomy images are left out.
BUNDLED: dict[str, tuple[str, tuple[str, ...]]] = {
    "skimage": (
        "data",
        (
            "astronaut.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "moon.png",
            "motorcycle_left.png",
            "rocket.jpg",
        ),
    ),
    "sklearn": ("datasets/images", ("china.jpg", "flower.jpg")),
    "matplotlib": ("mpl-data/sample_data", ("grace_hopper.jpg",)),
}
SCALES = (0.6, 0.3)
CROPS_PER_SCALE = 4  # 12 photos x 2 scales x 4 = 96 test images


@dataclass(frozen=True)
class Photo:
    name: str  # "<package>/<file>", e.g. "skimage/astronaut.png"
    path: Path


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


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_photos() -> tuple[list[Photo], list[str]]:
    """(photos found, sorted by name; names of the ones missing and why)."""
    found, missing = [], []
    for package, (folder, files) in BUNDLED.items():
        base = package_dir(package)
        for file in files:
            name = f"{package}/{file}"
            if base is None:
                missing.append(f"{name} ({package} not installed: pip install -e '.[bench]')")
            elif not (base / folder / file).is_file():
                missing.append(f"{name} (not in {base / folder})")
            else:
                found.append(Photo(name, base / folder / file))
    return sorted(found, key=lambda p: p.name), missing


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
) -> None:
    """out_dir/test/*.png + masks_test.npz, as the prepare stage writes its test split (the folder
    is replaced), + manifest.json listing each crop's source."""
    size = crops[0][1].shape[0]
    tmp = fresh_temp_dir(out_dir)
    (tmp / "test").mkdir()
    for i, (crop, image) in enumerate(crops):
        write_prepared_image(tmp / "test", i, crop.name, image)
    write_test_masks(tmp, list(families), len(crops), size, mask_seed)
    atomic_write_json(
        tmp / "manifest.json",
        {
            "image_size": size,
            "counts": {"test": len(crops)},
            "eval_families": list(families),
            "eval_mask_seed": mask_seed,
            "crops": [
                {"photo": c.photo, "scale": c.scale, "top": c.top, "left": c.left, "side": c.side}
                for c, _ in crops
            ],
        },
    )
    replace_dir(tmp, out_dir)


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
    """The README's "own photos" commands on these photos in `work`; returns the checkpoint.
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
    for stage in ("prepare", "train"):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="models/model.ckpt")
    parser.add_argument(
        "--out", help="where to write the test set (replaced); default: a temp folder, removed"
    )
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    parser.add_argument("--crops-per-scale", type=int, default=CROPS_PER_SCALE)
    parser.add_argument("--seed", type=int, default=0, help="crop positions (and the holdout)")
    parser.add_argument(
        "--radius", type=int, default=3, help="cv2.inpaint radius for the baselines"
    )
    parser.add_argument(
        "--train-holdout",
        type=int,
        metavar="N",
        help="train on all photos but N (prepare + train in a temp folder), test on those N",
    )
    parser.add_argument(
        "--train-crops",
        type=int,
        default=0,
        metavar="K",
        help="with --train-holdout: train on K random crops of each photo instead of the photos",
    )
    parser.add_argument(
        "--train-args",
        default="experiment=ci",
        help='Hydra overrides for prepare and train with --train-holdout (default: "experiment=ci")',
    )
    args = parser.parse_args()

    photos, missing = find_photos()
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    if not photos:
        raise SystemExit("error: no bundled photos found: pip install -e '.[bench]'")

    with tempfile.TemporaryDirectory(prefix="inpaintlab-real-") as tmp:
        checkpoint, test_photos = Path(args.checkpoint), photos
        if args.train_holdout is not None:
            if not 0 < args.train_holdout < len(photos) - 2:
                raise SystemExit(f"error: --train-holdout must be in 1..{len(photos) - 3}")
            train_photos, test_photos = holdout_split(photos, args.train_holdout, args.seed)
            print(f"train on {len(train_photos)} photos: {', '.join(p.name for p in train_photos)}")
            print(f"held out {len(test_photos)}: {', '.join(p.name for p in test_photos)}")
            checkpoint = train_on_photos(
                train_photos,
                Path(tmp) / "project",
                shlex.split(args.train_args),
                args.train_crops,
                args.seed,
            )
        if not checkpoint.exists():
            raise SystemExit(f"error: {checkpoint} does not exist: train a model first")

        data = data_config(checkpoint)
        size, families = int(data["image_size"]), list(data["eval_families"])
        crops = build_crops(test_photos, size, args.scales, args.crops_per_scale, args.seed)
        out = Path(args.out) if args.out else Path(tmp) / "real_photos"
        write_test_set(out, crops, families, int(data["eval_mask_seed"]))
        print(
            f"{len(crops)} crops of {len(test_photos)} photos at {size}px "
            f"(scales {', '.join(f'{s:g}' for s in args.scales)}) in {out}; "
            f"checkpoint {checkpoint}\n",
            flush=True,
        )
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from quality import run  # benchmarks/quality.py: evaluate(), the table, the margins

        run(str(checkpoint), out, args.radius)


if __name__ == "__main__":
    main()

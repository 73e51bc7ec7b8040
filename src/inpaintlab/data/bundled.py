"""The real photographs that ship inside installed wheels (scikit-image, scikit-learn,
matplotlib): part of the built-in dataset (`inpaintlab data photos`) and the default photos of
benchmarks/real_photos.py. Found on disk, never downloaded (`skimage.data` functions are not
called); their licences are those of the packages that ship them.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Photo:
    name: str  # "<package>/<file>", e.g. "skimage/astronaut.png"
    path: Path


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
                missing.append(f"{name} ({package} not installed)")
            elif not (base / folder / file).is_file():
                missing.append(f"{name} (not in {base / folder})")
            else:
                found.append(Photo(name, base / folder / file))
    return sorted(found, key=lambda p: p.name), missing


# The grayscale ones among them (`inpaintlab data photos --colour-only` leaves them out; the demo
# model trained on the 8 colour photos alone did worse on unseen colour photos: docs/results.md).
GRAYSCALE = frozenset(
    {"skimage/camera.png", "skimage/coins.png", "skimage/grass.png", "skimage/moon.png"}
)


def copy_photos(out: Path, grayscale: bool = True) -> list[Path]:
    """Copy the bundled photos (without the grayscale ones unless `grayscale`) into `out` as
    <package>_<file>, bytes unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    photos, _ = find_photos()
    photos = [p for p in photos if grayscale or p.name not in GRAYSCALE]
    written = []
    for photo in photos:
        target = out / photo.name.replace("/", "_")
        shutil.copyfile(photo.path, target)
        written.append(target)
    return written

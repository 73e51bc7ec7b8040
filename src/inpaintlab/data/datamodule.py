"""Lightning datamodule over data/prepared.

Training: each sample is a random crop of a stored train photo (`ScaleCrop`: a random area of
the photo, from 1:1 pixels up to the whole photo, resized to image_size), then the configured
augmentations (flip, colour jitter), and a freshly sampled mask. Everything random in a sample
comes from an rng seeded by (seed, epoch, index), so runs are reproducible whatever the loader
does. `samples_per_epoch` sets how many crops an epoch has (photos drawn with replacement), so a
few photos give thousands of distinct crops. Photos are read from disk per sample; a small
byte-bounded cache (`cache_mb`) keeps recently decoded ones.
Validation: the fixed images and masks written by the prepare stage, identical every epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintlab.data.crops import scale_crop_box
from inpaintlab.errors import UserError

MaskGenerator = Callable[[np.random.Generator, int, int], np.ndarray]

IMAGE_SUFFIXES = (".png", ".jpg")  # what prepare writes: PNG, JPEG for large train photos


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> [3,H,W] float in [0, 1] (copies a read-only view, e.g. of a cached photo)."""
    image = np.require(image, requirements=["C", "W"])
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)


def read_rgb(path: Path) -> np.ndarray:
    """Prepared images are PNG or JPEG files written by prepare, so plain OpenCV is enough here.
    Returns a contiguous HxWx3 uint8 RGB array."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read {path}: re-run the prepare stage")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def split_files(prepared_dir: Path, split: str) -> list[Path]:
    files = sorted(
        p for p in (prepared_dir / split).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise UserError(f"no {split} images in {prepared_dir}/{split}: run the prepare stage first")
    return files


class PhotoCache:
    """Decoded photos by path, least recently used dropped first, holding at most max_bytes of
    pixels (0: nothing is kept). A photo larger than the whole budget is decoded every time.
    Cached arrays are read-only, so a transform cannot change what later samples see."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def get(self, path: Path) -> np.ndarray:
        image = self.items.get(path)
        if image is not None:
            self.items.move_to_end(path)
            self.hits += 1
            return image
        self.misses += 1
        image = read_rgb(path)
        if image.nbytes <= self.max_bytes:
            image.flags.writeable = False
            while self.nbytes + image.nbytes > self.max_bytes:
                _, dropped = self.items.popitem(last=False)
                self.nbytes -= dropped.nbytes
            self.items[path] = image
            self.nbytes += image.nbytes
        return image


class ScaleCrop(A.RandomResizedCrop):
    """A.RandomResizedCrop (same arguments) that draws the crop's area log-uniformly in
    [scale[0], scale[1]] x photo area, so each zoom octave (1:1, 2:1, 4:1, ... photo pixels per
    training pixel) is equally frequent; the uniform draw of A.RandomResizedCrop puts most crops
    near the largest area (on a 1024x768 photo at 64 px, 95% of them would be at more than 3:1).
    Each side is also at least `size` where the photo allows it, so a crop is never enlarged:
    scale[0] below 1:1 means "from 1:1". The crop is clipped to the photo instead of retried."""

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, tuple[int, int, int, int]]:
        height, width = params["shape"][:2]
        box = scale_crop_box(
            height,
            width,
            self.size,
            self.scale,
            self.ratio,
            self.py_random.uniform,
            self.py_random.randint,
        )
        return {"crop_coords": box}


def default_crop(image_size: int) -> ScaleCrop:
    """What conf/datamodule/default.yaml configures: from 1:1 pixels to the whole photo."""
    return ScaleCrop(
        size=(image_size, image_size),
        scale=(0.0, 1.0),
        ratio=(3 / 4, 4 / 3),
        area_for_downscale="image",
    )


def source_folder(prepared_name: str) -> str:
    """The top-level folder under data/raw a prepared train file came from ("" for files at the
    top): prepare names it after the photo's relative path with "/" as "__"."""
    return prepared_name.split("__", 1)[0] if "__" in prepared_name else ""


class TrainDataset(Dataset):
    """`samples_per_epoch` items (None: one per photo, item i = photo i). With samples_per_epoch
    set, item i's photo is drawn (with replacement) by the item's own rng, so a photo drawn twice
    in an epoch gets two different crops and masks."""

    def __init__(
        self,
        files: Sequence[Path],
        image_size: int,
        mask_generator: MaskGenerator,
        augment: A.Compose,
        seed: int,
        samples_per_epoch: int | None = None,
        cache: PhotoCache | None = None,
        balance_folders: bool = False,
    ) -> None:
        self.files, self.image_size = list(files), image_size
        self.mask_generator, self.augment, self.seed = mask_generator, augment, seed
        self.samples_per_epoch = samples_per_epoch
        # photo indices per source folder (the top-level folder of data/raw), to draw folders
        # equally often: a small folder of real photos is not drowned by a big synthetic one
        groups: dict[str, list[int]] = {}
        for i, path in enumerate(self.files):
            groups.setdefault(source_folder(path.name) if balance_folders else "", []).append(i)
        self.groups = [groups[k] for k in sorted(groups)]
        self.cache = cache if cache is not None else PhotoCache(0)
        self.epoch = 0  # set by InpaintDataModule.set_epoch so each epoch sees new masks and crops

    def __len__(self) -> int:
        return self.samples_per_epoch or len(self.files)

    def photo_index(self, index: int, rng: np.random.Generator) -> int:
        if not self.samples_per_epoch:
            return index
        group = self.groups[int(rng.integers(len(self.groups)))] if len(self.groups) > 1 else None
        return group[int(rng.integers(len(group)))] if group else int(rng.integers(len(self.files)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        photo = self.cache.get(self.files[self.photo_index(index, rng)])
        self.augment.set_random_seed(int(rng.integers(2**31)))
        image = self.augment(image=photo)["image"]
        mask = self.mask_generator(rng, self.image_size, self.image_size)
        return {"image": to_tensor(image), "mask": torch.from_numpy(mask.astype(np.float32))[None]}


class FixedMaskDataset(Dataset):
    """Images with the masks prepare fixed for them (validation)."""

    def __init__(self, files: Sequence[Path], masks: np.ndarray) -> None:
        if len(files) != len(masks):
            raise UserError(
                f"{len(files)} images but {len(masks)} masks in data/prepared: re-run prepare"
            )
        self.files, self.masks = list(files), masks

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "image": to_tensor(read_rgb(self.files[index])),
            "mask": torch.from_numpy(self.masks[index].astype(np.float32))[None],
        }


class InpaintDataModule(L.LightningDataModule):
    def __init__(
        self,
        prepared_dir: str,
        image_size: int,
        batch_size: int = 16,
        num_workers: int = 0,
        samples_per_epoch: int | None = None,
        balance_folders: bool = True,
        cache_mb: float = 512,
        crop: A.BasicTransform | None = None,
        augment: dict | None = None,
        mask_generator: MaskGenerator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"datamodule.batch_size must be >= 1, got {batch_size}")
        if samples_per_epoch is not None and (
            not isinstance(samples_per_epoch, int) or samples_per_epoch < 1
        ):
            raise UserError(
                f"datamodule.samples_per_epoch must be null or an integer >= 1, got {samples_per_epoch!r}"
            )
        if cache_mb is None or cache_mb < 0:
            raise UserError(f"datamodule.cache_mb must be >= 0 (0: no cache), got {cache_mb!r}")
        self.prepared_dir, self.image_size = Path(prepared_dir), image_size
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.samples_per_epoch, self.cache_mb = samples_per_epoch, cache_mb
        self.balance_folders = balance_folders
        self.crop = crop if crop is not None else default_crop(image_size)
        crop_size = tuple(getattr(self.crop, "size", (image_size, image_size)))
        if crop_size != (image_size, image_size):
            raise UserError(
                f"datamodule.crop.size is {list(crop_size)} but data.image_size is {image_size}"
            )
        self.augment = augment or {}
        self.mask_generator = mask_generator
        self.train_set: TrainDataset | None = None
        self.val_set: FixedMaskDataset | None = None

    def train_transform(self) -> A.Compose:
        """The random crop to the training size, then the configured augmentations (on the
        small crop: cheaper than on the photo, and the same distribution)."""
        return A.Compose([self.crop, *self.augment.get("train", [])], seed=self.seed)

    def setup(self, stage: str | None = None) -> None:
        if self.mask_generator is None:
            raise UserError("InpaintDataModule needs a mask_generator (the `mask` config group)")
        self.train_set = TrainDataset(
            split_files(self.prepared_dir, "train"),
            self.image_size,
            self.mask_generator,
            self.train_transform(),
            self.seed,
            self.samples_per_epoch,
            PhotoCache(int(self.cache_mb * 2**20)),
            self.balance_folders,
        )
        masks_file = self.prepared_dir / "masks_val.npz"
        if not masks_file.exists():
            raise UserError(f"{masks_file} is missing: re-run the prepare stage")
        with np.load(masks_file) as masks:
            val_masks = masks["mask"]
        if val_masks.shape[-1] != self.image_size:
            raise UserError(
                f"data/prepared is at {val_masks.shape[-1]}px but image_size is {self.image_size}: re-run prepare"
            )
        self.val_set = FixedMaskDataset(split_files(self.prepared_dir, "val"), val_masks)

    def set_epoch(self, epoch: int) -> None:
        if self.train_set is not None:
            self.train_set.epoch = epoch

    def train_dataloader(self) -> DataLoader:
        # Shuffled by a generator seeded once: the order only changes which items share a
        # batch; every item's content is fixed by (seed, epoch, index).
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=self.num_workers,
            drop_last=len(self.train_set) > self.batch_size,
            # Not persistent: workers are forked each epoch with the dataset's current epoch
            # (so each worker's photo cache also lasts one epoch).
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers
        )

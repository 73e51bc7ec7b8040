"""Lightning datamodule over data/prepared.

Training: each step takes an augmented random crop and a freshly sampled mask; the mask comes
from an rng seeded by (seed, epoch, index), so runs are reproducible whatever the loader does.
Validation: the fixed images and masks written by the prepare stage, identical every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import albumentations as A
import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintlab.utils import UserError

MaskGenerator = Callable[[np.random.Generator, int, int], np.ndarray]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> [3,H,W] float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def read_rgb(path: Path) -> np.ndarray:
    """Prepared images are PNGs written by prepare, so plain OpenCV is enough here."""
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def split_files(prepared_dir: Path, split: str) -> list[Path]:
    files = sorted((prepared_dir / split).glob("*.png"))
    if not files:
        raise UserError(f"no {split} images in {prepared_dir}/{split}: run the prepare stage first")
    return files


class TrainDataset(Dataset):
    def __init__(
        self,
        files: Sequence[Path],
        image_size: int,
        mask_generator: MaskGenerator,
        augment: A.Compose,
        seed: int,
    ) -> None:
        self.files, self.image_size = list(files), image_size
        self.mask_generator, self.augment, self.seed = mask_generator, augment, seed
        self.epoch = 0  # set by InpaintDataModule.set_epoch so each epoch sees new masks and crops

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        self.augment.set_random_seed(int(rng.integers(2**31)))
        image = self.augment(image=read_rgb(self.files[index]))["image"]
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
        augment: dict | None = None,
        mask_generator: MaskGenerator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"datamodule.batch_size must be >= 1, got {batch_size}")
        self.prepared_dir, self.image_size = Path(prepared_dir), image_size
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.samples_per_epoch = samples_per_epoch
        self.augment = augment or {}
        self.mask_generator = mask_generator
        self.train_set: TrainDataset | None = None
        self.val_set: FixedMaskDataset | None = None

    def train_transform(self) -> A.Compose:
        """Configured augmentations, then a random crop to the training size."""
        size = self.image_size
        steps = list(self.augment.get("train", []))
        steps += [
            A.PadIfNeeded(size, size, border_mode=cv2.BORDER_REFLECT),
            A.RandomCrop(size, size),
        ]
        return A.Compose(steps, seed=self.seed)

    def setup(self, stage: str | None = None) -> None:
        if self.mask_generator is None:
            raise UserError("InpaintDataModule needs a mask_generator (the `mask` config group)")
        self.train_set = TrainDataset(
            split_files(self.prepared_dir, "train"),
            self.image_size,
            self.mask_generator,
            self.train_transform(),
            self.seed,
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
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if self.samples_per_epoch:
            sampler = torch.utils.data.RandomSampler(
                self.train_set,
                replacement=True,
                num_samples=self.samples_per_epoch,
                generator=generator,
            )
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator if sampler is None else None,
            num_workers=self.num_workers,
            drop_last=len(self.train_set) > self.batch_size,
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers
        )

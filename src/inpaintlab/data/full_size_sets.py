"""The prepared folder's full-size sets (data/prepared/<split>_<F>/ and masks_<split>_<F>.npz,
written by prepare): read by evaluate's full-size measurement (test) and by the calibration of
the trained model (val). Apart from full_size.py so training does not import the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inpaintlab.data.datamodule import read_rgb, to_tensor


def has_full_size_set(prepared_dir: Path, size: int) -> bool:
    return (prepared_dir / f"masks_test_{size}.npz").exists() and any(
        (prepared_dir / f"test_{size}").glob("*.png")
    )


def load_full_size_set(
    prepared_dir: Path, size: int, families: Sequence[str], max_images: int, split: str = "test"
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """(images [N,F,F,3] uint8, {family: masks [N,F,F] bool}) of <split>_<F>/, or None when
    prepare wrote none."""
    files = sorted((prepared_dir / f"{split}_{size}").glob("*.png"))[:max_images]
    masks_file = prepared_dir / f"masks_{split}_{size}.npz"
    if not files or not masks_file.exists():
        return None
    images = np.stack([read_rgb(f) for f in files])
    with np.load(masks_file) as data:
        masks = {f: data[f][: len(files)].astype(bool) for f in families if f in data.files}
    return images, masks


def as_tensor(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """HxWx3 uint8 images -> [N,3,H,W] float in [0, 1]."""
    return torch.stack([to_tensor(np.asarray(i)) for i in images])

"""The share of the network's correction a trained model keeps (`correction_scale`,
models/generator.py), chosen after training where users look: the val photos at full size
(data/prepared/val_<F>, one call of predict's own inference code per image and share) and at
the training size (val/).

Why after training, at full size: each validation already keeps the share best on the val
crops at the training size (inpaint_module.py), but a correction that helps there can hurt at
512 px, where the holes are far larger than any a 64 px crop holds: on a user's folder the
checkpoint's share chosen at 64 px lost 1.1-1.5 dB at 512 px against the fill alone
(docs/results.md). Each set (val/, val_256/, val_512/, ...) weighs the same, so the choice
serves the training size and every full size alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inpaintlab.data.datamodule import read_rgb, split_files
from inpaintlab.data.full_size_sets import as_tensor, load_full_size_set
from inpaintlab.inference import inpaint
from inpaintlab.inference.runtime import Runner
from inpaintlab.metrics import psnr_masked
from inpaintlab.models.generator import corrected
from inpaintlab.models.layers import composite

log = logging.getLogger(__name__)

SCALES = tuple(i / 10 for i in range(11))  # coarser than validation's: each is a predict call
FULL_SIZE_IMAGES = 8  # val photos per full size: the cost is images x families x SCALES calls


def generator_runner(generator: torch.nn.Module, scale: float | None) -> Runner:
    """inference's Runner for a torch generator at `scale` (the share of its correction; None:
    its calibrated one), as the exported model would run it."""

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x, m = torch.from_numpy(image), torch.from_numpy(mask)
            return composite(generator.generate(x, m, scale), x, m).numpy()

    return run


def _scores_full_size(
    generator: torch.nn.Module, images: np.ndarray, masks: dict[str, np.ndarray], image_size: int
) -> list[float]:
    """Mean masked PSNR at each of SCALES, through inference.inpaint (predict's strategy)."""
    totals = np.zeros(len(SCALES))
    count = 0
    target = as_tensor(images)
    for family_masks in masks.values():
        hole = torch.from_numpy(family_masks[:, None].astype(np.float32))
        for i, scale in enumerate(SCALES):
            run = generator_runner(generator, scale)
            outputs = [
                inpaint(im, m, run, image_size) for im, m in zip(images, family_masks, strict=True)
            ]
            totals[i] += psnr_masked(as_tensor(outputs), target, hole).sum().item()
        count += len(images)
    return list(totals / max(count, 1))


def _scores_training_size(generator: torch.nn.Module, prepared_dir: Path) -> list[float]:
    """Mean masked PSNR at each of SCALES on val/ with its fixed masks (as validation does)."""
    files = split_files(prepared_dir, "val")
    with np.load(prepared_dir / "masks_val.npz") as stored:
        masks = torch.from_numpy(stored["mask"][:, None].astype(np.float32))
    image = as_tensor([read_rgb(f) for f in files])
    with torch.no_grad():
        fill, correction = generator.fill_and_correction(image, masks)
    return [
        psnr_masked(composite(corrected(fill, correction, s), image, masks), image, masks)
        .mean()
        .item()
        for s in SCALES
    ]


def choose_scale(
    generator: torch.nn.Module,
    prepared_dir: Path,
    image_size: int,
    full_sizes: Sequence[int],
    families: Sequence[str],
) -> tuple[float, dict[str, dict[str, float]]]:
    """The share with the best mean over the val sets of their mean PSNR (the smaller share on
    a tie), and per set {"fill": PSNR at share 0, "model": at the chosen share}."""
    generator = generator.eval()
    sets = {str(image_size): _scores_training_size(generator, prepared_dir)}
    for size in full_sizes:
        data = load_full_size_set(prepared_dir, size, families, FULL_SIZE_IMAGES, split="val")
        if data is not None:
            sets[str(size)] = _scores_full_size(generator, *data, image_size)
    mean = np.mean(np.array(list(sets.values())), axis=0)
    best = int(np.argmax(mean))  # the first of equals: the smaller share
    scale = SCALES[best]
    report = {
        size: {"fill": round(scores[0], 4), "model": round(scores[best], 4)}
        for size, scores in sets.items()
    }
    log.info(
        "correction share %.1f (val PSNR, fill alone -> model: %s)",
        scale,
        ", ".join(f"{k} px {v['fill']:.2f} -> {v['model']:.2f}" for k, v in report.items()),
    )
    return scale, report

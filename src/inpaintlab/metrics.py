"""Inpainting metrics, defined once and used by training, evaluation and the baselines.

All images are float tensors in [0, 1], shape [N,3,H,W]; masks [N,1,H,W] with 1 = generated.
Per-image values are returned ([N]) so callers can average over images, families or area bins.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from inpaintlab.metric_names import METRIC_NAMES as METRIC_NAMES  # the keys of image_metrics

ACCURACY_THRESHOLD = 0.1  # a masked pixel is "right" when its largest channel error is <= 0.1


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values [N,C,H,W] over the masked pixels of each image -> [N]."""
    weight = mask.expand_as(values) if values.shape[1] != mask.shape[1] else mask
    total = (values * weight).flatten(1).sum(1)
    return total / weight.flatten(1).sum(1).clamp_min(1.0)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _masked_mean((pred - target) ** 2, mask)


def psnr_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR in dB over the masked pixels only (all channels); capped at 100 dB for exact matches."""
    mse = masked_mse(pred, target, mask).clamp_min(1e-10)
    return (10.0 * torch.log10(1.0 / mse)).clamp_max(100.0)


def l1_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _masked_mean((pred - target).abs(), mask)


def accuracy_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of masked pixels whose largest channel error is <= ACCURACY_THRESHOLD."""
    correct = ((pred - target).abs().amax(dim=1, keepdim=True) <= ACCURACY_THRESHOLD).float()
    return _masked_mean(correct, mask)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of the whole (composited) image, per image."""
    side = min(pred.shape[-2:])
    kernel = min(11, side if side % 2 else side - 1)  # odd and no larger than the image
    return structural_similarity_index_measure(
        pred, target, data_range=1.0, reduction="none", kernel_size=kernel
    )


def image_metrics(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Every metric of the contract, per image ([N] each)."""
    pred = pred.clamp(0.0, 1.0)
    return {
        "psnr_masked": psnr_masked(pred, target, mask),
        "ssim": ssim(pred, target),
        "l1_masked": l1_masked(pred, target, mask),
        "accuracy": accuracy_masked(pred, target, mask),
    }


def summarize(per_image: dict[str, list[float]]) -> dict[str, float]:
    """Average per-image metrics into the contract's M = {psnr_masked, ssim, l1_masked, accuracy, n}."""
    n = len(next(iter(per_image.values()), []))
    summary = {key: round(float(sum(vals) / max(n, 1)), 6) for key, vals in per_image.items()}
    summary["n"] = n
    return summary

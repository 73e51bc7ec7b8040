"""The metrics of metrics/eval.json and metrics/train.json by name, and which way is better.

`inpaintlab check-metrics` gates a metric by this table only (the leaf of its dotted key, e.g.
`psnr_masked` in `model.box.psnr_masked`): a name that is not here is shown when it moves,
never gated. Torch-free, so the CI gate starts without torch; metrics.py computes the image
metrics under these names.
"""

from __future__ import annotations

HIGHER, LOWER = 1, -1

METRIC_NAMES = ("psnr_masked", "ssim", "l1_masked", "accuracy")  # metrics.image_metrics' keys

DIRECTIONS: dict[str, int] = {
    # M of metrics/eval.json (DESIGN.md), per family, area bin and full size
    "psnr_masked": HIGHER,
    "ssim": HIGHER,
    "l1_masked": LOWER,
    "accuracy": HIGHER,
    # metrics/train.json (gated only with --all: it has no `model` section)
    "best_val_psnr": HIGHER,
    "train_loss": LOWER,
    "val_loss": LOWER,
    "train_accuracy": HIGHER,
    "val_accuracy": HIGHER,
    "val_psnr": HIGHER,
}

# counts, times and positions: shown when they change, never gated (a changed `n` is a warning:
# a different test set); `ms` varies with the machine
INFORMATIONAL = frozenset({"n", "ms", "epochs", "epoch", "best_epoch"})

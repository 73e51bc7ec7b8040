"""Does the network's correction help its fill? A trained checkpoint's generator with and
without its correction, on fresh training crops (what it was fitted to) and on the val images.

    python benchmarks/correction_gain.py --project DIR [--checkpoint models/model.ckpt]
        [--batches 16] [any Hydra override of that project's training ...]

Run in a prepared project (DIR holds data/prepared; the default checkpoint is
DIR/models/model.ckpt). Prints, per set, the mean masked PSNR of the fill alone and of the fill
plus the whole correction (share 1), their difference, and the squared error pooled over all
hole pixels: a pooled error that falls while the mean PSNR falls is a loss that does not match
the metric (docs/results.md, 2026-12-01). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from inpaintlab.checkpoints import load_checkpoint
from inpaintlab.metrics import psnr_masked
from inpaintlab.models.layers import composite
from inpaintlab.train import build

CONF = Path(__file__).resolve().parents[1] / "conf"


def gain(generator: torch.nn.Module, loader, batches: int) -> dict[str, float]:
    fill_db = model_db = fill_se = model_se = pixels = 0.0
    images = 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i >= batches:
                break
            image, mask = batch["image"], batch["mask"]
            fill, correction = generator.fill_and_correction(image, mask)
            alone = composite(fill.clamp(0, 1), image, mask)
            full = composite((fill + correction).clamp(0, 1), image, mask)
            fill_db += psnr_masked(alone, image, mask).sum().item()
            model_db += psnr_masked(full, image, mask).sum().item()
            fill_se += ((alone - image) ** 2 * mask).sum().item()
            model_se += ((full - image) ** 2 * mask).sum().item()
            pixels += 3 * mask.sum().item()
            images += len(image)
    n = max(images, 1)
    return {
        "images": images,
        "fill": fill_db / n,
        "model": model_db / n,
        "fill_mse": fill_se / max(pixels, 1),
        "model_mse": model_se / max(pixels, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=16)
    args, overrides = parser.parse_known_args()
    project = args.project.resolve()
    checkpoint = (args.checkpoint or project / "models/model.ckpt").resolve()
    os.chdir(project)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    module, datamodule, _, _ = build(cfg)
    module.load_state_dict(load_checkpoint(checkpoint)["state_dict"], strict=False)
    generator = module.inference_generator.eval()
    torch.manual_seed(0)
    print(f"{checkpoint}: the share it keeps {float(generator.correction_scale):.2f}")
    print("| set | images | fill PSNR | + whole correction | gain (dB) | pooled hole MSE |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, loader in [
        ("train crops", datamodule.train_dataloader()),
        ("val", datamodule.val_dataloader()),
    ]:
        r = gain(generator, loader, args.batches)
        print(
            f"| {name} | {r['images']} | {r['fill']:.2f} | {r['model']:.2f} | "
            f"{r['model'] - r['fill']:+.2f} | {r['fill_mse']:.5f} -> {r['model_mse']:.5f} |"
        )


if __name__ == "__main__":
    main()

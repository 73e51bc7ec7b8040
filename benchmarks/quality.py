"""Quality benchmark: the trained model vs OpenCV Telea and Navier-Stokes, in one run, on the same
test images and masks, per mask family and per masked-area bin.

    python benchmarks/quality.py [--checkpoint models/model.ckpt] [--prepared data/prepared]

Prints the table (masked PSNR, margin over the better classical method) and exits 0; it is a
measurement, not a test. The README's table comes from this script (or from `make run`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omegaconf import OmegaConf

from inpaintlab.evaluate import evaluate
from inpaintlab.report import format_table


def run(checkpoint: str, prepared: Path, radius: int = 3) -> dict:
    """Evaluate on prepared/test, print the table and the smallest margin; returns eval.json's dict."""
    cfg = OmegaConf.create(
        {
            "checkpoint": checkpoint,
            "batch_size": 32,
            "baselines": ["telea", "ns"],
            "baseline_radius": radius,
            "samples_per_family": 1,
        }
    )
    started = time.perf_counter()
    result = evaluate(cfg, prepared)
    print(format_table(result["metrics"]))
    model, baselines = result["metrics"]["model"], result["metrics"]["baselines"]
    families = [k for k in model if k not in ("all", "area_bins")]
    worst = min(
        families,
        key=lambda f: (
            model[f]["psnr_masked"] - max(b[f]["psnr_masked"] for b in baselines.values())
        ),
    )
    margin = model[worst]["psnr_masked"] - max(b[worst]["psnr_masked"] for b in baselines.values())
    print(
        f"\nsmallest margin over the better classical method: {margin:+.2f} dB ({worst}); "
        f"{time.perf_counter() - started:.1f}s"
    )
    return result["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="models/model.ckpt")
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument(
        "--radius", type=int, default=3, help="cv2.inpaint radius for the baselines"
    )
    args = parser.parse_args()
    run(args.checkpoint, Path(args.prepared), args.radius)


if __name__ == "__main__":
    main()

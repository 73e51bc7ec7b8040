"""Predict's strategy, the correction share and the fill, varied, on a full-size test set.

    python benchmarks/strategy_variants.py --test-dir DIR [--checkpoint models/model.ckpt]
        [--size 512] --variant default --variant share=0 --variant reach=0.5,band=0.125 ...

Each variant runs the checkpoint's generator (torch, calibration.generator_runner) through predict's
own `inference.inpaint` on DIR/test_<size>/ with DIR/masks_test_<size>.npz (prepare's layout;
`benchmarks/real_photos.py --out W` leaves one in W/real_photos, with its eval.json, whose best
classical method per family is printed for reference). A variant is `default` or a comma list:

    share=S   the share of the network's correction (default: the checkpoint's calibrated one)
    reach=R   inference/strategy.py's TRAINING_REACH: the hole reach, of S, the working scale keeps
    band=B    REFINE_FRACTION: the full-resolution edge band, of S (0: no band pass)
    fill=F    another fill of models/fills.py under the same network (it was trained on its own)

Prints the mean masked PSNR per family (box / irregular / outpaint). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from inpaintlab.calibration import generator_runner
from inpaintlab.checkpoints import load_generator
from inpaintlab.data.full_size_sets import as_tensor, load_full_size_set
from inpaintlab.inference import strategy
from inpaintlab.metrics import psnr_masked

FAMILIES = ("box", "irregular", "outpaint")
KEYS = ("share", "reach", "band", "fill")


def parse_variant(text: str) -> dict[str, str]:
    if text == "default":
        return {}
    options = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
    unknown = set(options) - set(KEYS)
    if unknown or not options:
        raise SystemExit(f"error: variant {text!r}: use default or {', '.join(KEYS)}=VALUE")
    return options


def best_classical(test_dir: Path, size: int) -> str:
    try:
        section = json.loads((test_dir / "eval.json").read_text())["full_size"][str(size)]
    except (OSError, KeyError, ValueError):
        return "(no eval.json)"
    best = [
        max(v[f]["psnr_masked"] for v in section["baselines"].values() if f in v) for f in FAMILIES
    ]
    return " / ".join(f"{b:.2f}" for b in best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-dir", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=Path("models/model.ckpt"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--max-images", type=int, default=100000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", action="append", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    generator, info = load_generator(str(args.checkpoint))
    image_size = int(info["config"]["data"]["image_size"])
    test_set = load_full_size_set(args.test_dir, args.size, FAMILIES, args.max_images)
    if test_set is None:
        raise SystemExit(f"error: no test_{args.size}/ with masks in {args.test_dir}")
    images, masks = test_set
    target = as_tensor(images)
    trained_fill = generator.fill
    print(
        f"{len(images)} images at {args.size} px; calibrated share "
        f"{float(generator.correction_scale):.2f}; best classical "
        f"{best_classical(args.test_dir, args.size)} (box / irregular / outpaint)"
    )
    for text in args.variant or ["default"]:
        options = parse_variant(text)
        share = float(options["share"]) if "share" in options else None
        generator.fill = options.get("fill", trained_fill)
        reach = float(options.get("reach", strategy.TRAINING_REACH))
        band = float(options.get("band", strategy.REFINE_FRACTION))

        run = generator_runner(generator, share)
        started, row = time.perf_counter(), []
        for family in FAMILIES:
            outputs = [
                strategy.inpaint(im, mk, run, image_size, reach=reach, band=band)
                for im, mk in zip(images, masks[family], strict=True)
            ]
            hole = torch.from_numpy(masks[family][:, None].astype(np.float32))
            row.append(psnr_masked(as_tensor(outputs), target, hole).mean().item())
        scores = " / ".join(f"{r:.2f}" for r in row)
        print(f"{text:40s} {scores}  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

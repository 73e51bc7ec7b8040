"""Inference speed: the exported ONNX model vs cv2.inpaint (Telea) in the same run.

    python benchmarks/inference.py [--model models/export/model.onnx] [--size 256 512] [--batch 16]

Reports, at each size (default 256 and 512 px): latency of the model alone (batch 1, median of
repeated runs) and of `predict`'s whole inference path (inpaintlab.inference.inpaint), throughput
in batch, and the ratios to OpenCV's Telea on the same image and mask in the same run. A
measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np
import onnxruntime as ort

from inpaintlab.inference import inpaint, load_model


def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in seconds, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/export/model.onnx")
    parser.add_argument("--size", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    model = load_model(args.model, threads=args.threads)
    for size in args.size:
        measure(session, model, size, args)


def measure(session: ort.InferenceSession, model, s: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, s, s), dtype=np.float32)
    mask = np.zeros((1, 1, s, s), np.float32)
    mask[..., s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1  # a 25%-area centre box
    model_latency = timed(
        lambda: session.run(["output"], {"image": image, "mask": mask}), args.repeats
    )
    batch_image, batch_mask = np.repeat(image, args.batch, 0), np.repeat(mask, args.batch, 0)
    batch_time = timed(
        lambda: session.run(["output"], {"image": batch_image, "mask": batch_mask}),
        max(3, args.repeats // 4),
    )
    bgr = (image[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    mask_u8 = mask[0, 0].astype(np.uint8)
    telea_latency = timed(lambda: cv2.inpaint(bgr, mask_u8, 3, cv2.INPAINT_TELEA), args.repeats)
    # what `inpaintlab predict` does with such an image: windows, scale, tiles, padding
    predict_latency = timed(
        lambda: inpaint(bgr, mask_u8, model.run, model.image_size), args.repeats
    )

    print(f"{s}x{s}, 25% centre box, {args.threads} threads")
    print(f"model (onnxruntime) latency, batch 1 : {model_latency * 1e3:8.2f} ms")
    print(f"predict pipeline latency, S={model.image_size:<9}: {predict_latency * 1e3:8.2f} ms")
    print(f"cv2.inpaint Telea latency            : {telea_latency * 1e3:8.2f} ms")
    print(f"model / Telea latency ratio          : {model_latency / telea_latency:8.2f}")
    print(f"predict / Telea latency ratio        : {predict_latency / telea_latency:8.2f}")
    print(
        f"model throughput, batch {args.batch:<3}         : {args.batch / batch_time:8.1f} images/s"
    )
    print(f"Telea throughput (one at a time)     : {1 / telea_latency:8.1f} images/s\n")


if __name__ == "__main__":
    main()

"""What users get: the exported model through `predict`'s own inference code (inpaintlab.inference:
its scale choice, tiling and padding) on full-size held-out images, against the classical methods
at the same resolution, per mask family.

The prepare stage writes the images (`data/prepared/test_<F>/`, centre squares of the test-split
photos whose short side is at least F, never upscaled) and fixed masks (`masks_test_<F>.npz`).
Every method sees the same first `max_images` images and masks of each size, so their numbers
compare; the slow classical methods (FSR, biharmonic at 512 px) are what `max_images` budgets.
The section of metrics/eval.json, per size F (a string key, e.g. "512"):

    {"n": images, "model": {family: M, ..., "all": M}, "baselines": {name: {family: M, ...}},
     "best_baseline": {family: name}, "margin": {family: dB over the best baseline}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inpaintlab.baselines import classical_inpaint_many
from inpaintlab.data.full_size_sets import as_tensor, load_full_size_set
from inpaintlab.inference import Model, inpaint
from inpaintlab.metrics import METRIC_NAMES, image_metrics, summarize
from inpaintlab.processes import available_cpus

log = logging.getLogger(__name__)


def _timed(fn, images: np.ndarray, masks: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Outputs of fn(image, mask) for every pair, and the mean milliseconds per image."""
    start = time.perf_counter()
    outputs = [fn(image, mask) for image, mask in zip(images, masks, strict=True)]
    return outputs, 1000 * (time.perf_counter() - start) / max(1, len(images))


def _summary(values: dict[str, list[float]], ms: float) -> dict:
    summary = summarize(values)
    summary["ms"] = round(ms, 2)
    return summary


def measure_size(
    model: Model,
    images: np.ndarray,
    masks: dict[str, np.ndarray],
    baselines: Sequence[str],
    radius: int,
) -> tuple[dict, dict[str, dict[str, list[np.ndarray]]]]:
    """One size's section, and the outputs {method: {family: [HxWx3 uint8]}} for the samples."""
    methods = ["model", *baselines]
    values = {m: {g: {k: [] for k in METRIC_NAMES} for g in [*masks, "all"]} for m in methods}
    times: dict[str, dict[str, float]] = {m: {} for m in methods}
    outputs: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in methods}
    truth = as_tensor(images)
    for family, family_masks in masks.items():
        mask_tensor = torch.from_numpy(family_masks.astype(np.float32))[:, None]
        for method in methods:
            if method == "model":
                result, ms = _timed(
                    lambda image, mask: inpaint(image, mask, model.run, model.image_size),
                    images,
                    family_masks,
                )
            else:
                result, ms = classical_inpaint_many(
                    list(images), list(family_masks), method, radius, available_cpus()
                )
            outputs[method][family], times[method][family] = result, ms
            per_image = image_metrics(as_tensor(result), truth, mask_tensor)
            for name in METRIC_NAMES:
                scores = per_image[name].tolist()
                values[method][family][name] += scores
                values[method]["all"][name] += scores
        log.info("full size %dpx %s: done", images.shape[1], family)

    def section(method: str) -> dict:
        per_family = {f: _summary(values[method][f], times[method][f]) for f in masks}
        mean_ms = float(np.mean(list(times[method].values())))
        return per_family | {"all": _summary(values[method]["all"], mean_ms)}

    result = {
        "n": len(images),
        "model": section("model"),
        "baselines": {b: section(b) for b in baselines},
    }
    best = {
        group: max(baselines, key=lambda b: result["baselines"][b][group]["psnr_masked"])
        for group in [*masks, "all"]
    }
    result["best_baseline"] = best
    result["margin"] = {
        group: round(
            result["model"][group]["psnr_masked"]
            - result["baselines"][best[group]][group]["psnr_masked"],
            4,
        )
        for group in best
    }
    return result, outputs


def evaluate_full_size(
    model: Model,
    prepared_dir: Path,
    sizes: Sequence[int],
    families: Sequence[str],
    baselines: Sequence[str],
    max_images: int,
    radius: int = 3,
) -> tuple[dict, tuple[np.ndarray, dict[str, np.ndarray], dict, dict] | None]:
    """{str(size): section} for every size prepare wrote images for, and the material for the
    sample grid of the largest such size: (images, masks, outputs, its section)."""
    sections: dict[str, dict] = {}
    largest = None
    for size in sorted(sizes):
        data = load_full_size_set(prepared_dir, size, families, max_images)
        if data is None:
            log.warning("no %dpx test images in %s: full-size section skipped", size, prepared_dir)
            continue
        images, masks = data
        section, outputs = measure_size(model, images, masks, baselines, radius)
        sections[str(size)] = section
        largest = (images, masks, outputs, section)
    return sections, largest


def sample_columns(
    images: np.ndarray,
    masks: dict[str, np.ndarray],
    outputs: dict[str, dict[str, list[np.ndarray]]],
    best: dict[str, str],
    per_family: int = 1,
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Columns input-with-hole | model | best classical | ground truth, a row per family example
    (the best classical method is the family's best on average, named in the row label)."""
    rows: list[list[np.ndarray]] = []
    row_labels = []
    for family, family_masks in masks.items():
        for i in range(min(per_family, len(images))):
            hole = family_masks[i][..., None]
            shown = np.where(hole, np.uint8(255), images[i])
            method = best[family]
            rows.append([shown, outputs["model"][family][i], outputs[method][family][i], images[i]])
            row_labels.append(f"{family} (best classical: {method})")
    columns = [np.stack(col) for col in zip(*rows, strict=True)]
    labels = ["input, hole in white", "model (predict)", "best classical", "ground truth"]
    return columns, labels, row_labels
